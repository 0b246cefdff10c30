package org.prilora.bert;

import org.deeplearning4j.nn.conf.InputPreProcessor;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.RNNFormat;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.InputTypeUtil;
import org.deeplearning4j.nn.conf.layers.samediff.SDLayerParams;
import org.deeplearning4j.nn.conf.layers.samediff.SameDiffLayer;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.bert.BertNaming.Norm;
import org.prilora.bert.BertNaming.Projection;
import org.prilora.layers.AdapterKeys;
import org.prilora.layers.GraphLayer;
import org.prilora.ops.MultiHeadAttention;

import java.util.Arrays;
import java.util.Map;
import java.util.Objects;

/**
 * One plain BERT encoder block (post-LayerNorm transformer), every weight trainable: the pretrained base that
 * {@code PriLora.adapt} turns into a {@link PriLoraBertBlock} and {@code PriLora.merge} turns back into, and the model
 * of full fine-tuning.
 * <pre>
 *   h1 = LN(x + Attn(x)·Wao + bao)           Attn: multi-head softmax(Q·Kᵀ/√d + mask)·V, Q/K/V = x·W + b
 *   y  = LN(h1 + GELU(h1·Wi + bi)·Wo + bo)    GELU: exact erf form
 * </pre>
 *
 * <p><b>Input</b>: NCW {@code [mb, hidden, T]} with DL4J's mask {@code [mb, T]} (1 = real token; masked keys get no
 * attention). The mask passes through to the next layer. <b>Output</b>: NCW {@code [mb, hidden, T]}.
 * Parameters: per projection {@code <p>W [in,out]} and {@code <p>b [1,out]} with {@code <p>} in
 * {@code q k v ao i o} ({@link Projection#paramPrefix()}), plus the LayerNorms {@code ln1g, ln1b, ln2g, ln2b
 * [1,hidden]}. Runs on {@link PriLoraBertBlockRuntime} (hand-written forward and backward), or as the SameDiff graph of
 * {@link #defineLayer} with {@link Builder#graphRuntime(boolean)} (the reference the native runtime is tested against).
 */
public class BertBlock extends GraphLayer {
    private static final long serialVersionUID = 1L;
    private static final String RECURRENT = "recurrent input (InputType.recurrent(hidden))";

    private int hidden;
    private int numHeads;
    private int intermediate;
    private double layerNormEps = BertConfig.BERT_LAYER_NORM_EPS;
    private boolean graphRuntime;

    /** For JSON deserialization. */
    protected BertBlock() {
    }

    protected BertBlock(AbstractBuilder<?> b) {
        super(b);
        this.hidden = b.hidden;
        this.numHeads = b.numHeads;
        this.intermediate = b.intermediate;
        this.layerNormEps = b.layerNormEps;
        this.graphRuntime = b.graphRuntime;
    }

    /** Parameter key of a projection's weight ({@code qW} …). */
    public static String weightKey(Projection p) {
        return p.paramPrefix() + AdapterKeys.WEIGHT;
    }

    /** Parameter key of a projection's bias ({@code qb} …). */
    public static String biasKey(Projection p) {
        return p.paramPrefix() + AdapterKeys.BIAS;
    }

    /** Input width of a projection. */
    public long nIn(Projection p) {
        return p == Projection.OUTPUT ? intermediate : hidden;
    }

    /** Output width of a projection. */
    public long nOut(Projection p) {
        return p == Projection.INTERMEDIATE ? intermediate : hidden;
    }

    @Override
    protected org.deeplearning4j.nn.layers.AbstractLayer<?> createRuntime(NeuralNetConfiguration conf, DataType networkDataType) {
        return graphRuntime ? super.createRuntime(conf, networkDataType) : new PriLoraBertBlockRuntime(conf, networkDataType);
    }

    @Override
    public void defineParameters(SDLayerParams params) {
        for (Projection p : Projection.values()) {
            declareProjection(params, p);
        }
        for (Norm n : Norm.values()) {
            params.addWeightParam(n.gainKey(), 1, hidden);
            params.addWeightParam(n.biasKey(), 1, hidden);
        }
    }

    /** Declares a projection's parameters: its weight and bias here, plus the adapter's in a subclass. */
    protected void declareProjection(SDLayerParams params, Projection p) {
        params.addWeightParam(weightKey(p), nIn(p), nOut(p));
        params.addBiasParam(biasKey(p), 1, nOut(p));
    }

    @Override
    public void initializeParameters(Map<String, INDArray> params) {
        for (Projection p : Projection.values()) {
            INDArray w = params.get(weightKey(p));
            // Xavier-style default for a from-scratch block; pretrained weights overwrite it.
            w.assign(Nd4j.randn(w.dataType(), w.shape()).muli(Math.sqrt(2.0 / (nIn(p) + nOut(p)))));
            params.get(biasKey(p)).assign(0);
        }
        for (Norm n : Norm.values()) {
            params.get(n.gainKey()).assign(1);
            params.get(n.biasKey()).assign(0);
        }
    }

    @Override
    public SDVariable defineLayer(SameDiff sd, SDVariable input, Map<String, SDVariable> params, SDVariable mask) {
        SDVariable mbT = MultiHeadAttention.batchAndTime(sd, input, true);
        // Rows b·T + t: the DL4J mask [mb, T] flattened in 'c' order marks the real rows (the runtime's statistics use that).
        SDVariable x = input.permute(0, 2, 1).reshape(-1, hidden);       // [mb·T, H]
        SDVariable q = linear(sd, Projection.QUERY, x, params);
        SDVariable k = linear(sd, Projection.KEY, x, params);
        SDVariable v = linear(sd, Projection.VALUE, x, params);
        SDVariable ctx = MultiHeadAttention.attend(sd, q, k, v, mask, mbT, numHeads, hidden / numHeads);
        SDVariable attnOut = linear(sd, Projection.ATTENTION_OUTPUT, ctx, params);
        SDVariable h1 = norm(sd, attnOut.add(x), Norm.ATTENTION_OUTPUT, params);
        SDVariable inter = linear(sd, Projection.INTERMEDIATE, h1, params);
        SDVariable ffn = linear(sd, Projection.OUTPUT, BertOps.geluErf(sd, inter), params);
        SDVariable y = norm(sd, ffn.add(h1), Norm.OUTPUT, params);       // [mb·T, H]
        SDVariable shape3 = sd.concat(0, mbT, sd.constant(Nd4j.createFromArray((long) hidden)));
        return y.reshape(shape3).permute(0, 2, 1);
    }

    /** One projection {@code x·W + b} of a 2-D input (adapted in a subclass). */
    protected SDVariable linear(SameDiff sd, Projection p, SDVariable x2d, Map<String, SDVariable> params) {
        return sd.nn.linear(x2d, params.get(weightKey(p)), params.get(biasKey(p)).reshape(-1));
    }

    private SDVariable norm(SameDiff sd, SDVariable x, Norm n, Map<String, SDVariable> params) {
        return BertOps.layerNorm(sd, x, params.get(n.gainKey()), params.get(n.biasKey()), layerNormEps, 1);
    }

    @Override
    public void validateInput(INDArray input) {
        if (input.rank() != 3 || input.size(1) != hidden) {
            throw new IllegalArgumentException(getClass().getSimpleName() + " '" + getLayerName() + "': expected NCW input [mb, "
                    + hidden + ", T], got shape " + Arrays.toString(input.shape()));
        }
    }

    @Override
    public InputType getOutputType(int layerIndex, InputType inputType) {
        InputType.InputTypeRecurrent r = requireRecurrent(inputType, RECURRENT, false);
        return InputType.recurrent(hidden, r.getTimeSeriesLength(), RNNFormat.NCW);
    }

    @Override
    public void setNIn(InputType inputType, boolean override) {
        InputType.InputTypeRecurrent r = requireRecurrent(inputType, RECURRENT, false);
        if (hidden <= 0) {
            hidden = (int) r.getSize();
        } else if (r.getSize() != hidden) {
            throw new IllegalStateException(getClass().getSimpleName() + " '" + getLayerName() + "': expected input size hidden = "
                    + hidden + ", got " + r.getSize() + " from the previous layer");
        }
    }

    @Override
    public InputPreProcessor getPreProcessorForInputType(InputType inputType) {
        return InputTypeUtil.getPreprocessorForInputTypeRnnLayers(inputType, RNNFormat.NCW, getLayerName());
    }

    public int getHidden() {
        return hidden;
    }

    public int getNumHeads() {
        return numHeads;
    }

    public int getIntermediate() {
        return intermediate;
    }

    public double getLayerNormEps() {
        return layerNormEps;
    }

    /** Whether the block runs as a SameDiff graph (the reference) instead of the native runtime (the default). */
    public boolean isGraphRuntime() {
        return graphRuntime;
    }

    @Override
    public boolean equals(Object o) {
        if (o == null || o.getClass() != getClass() || !super.equals(o)) {
            return false;
        }
        BertBlock b = (BertBlock) o;
        return hidden == b.hidden && numHeads == b.numHeads && intermediate == b.intermediate
                && Double.compare(layerNormEps, b.layerNormEps) == 0 && graphRuntime == b.graphRuntime;
    }

    @Override
    public int hashCode() {
        return Objects.hash(super.hashCode(), hidden, numHeads, intermediate, layerNormEps, graphRuntime);
    }

    /** Builder of a plain block. */
    public static class Builder extends AbstractBuilder<Builder> {
        @Override
        @SuppressWarnings("unchecked")
        public BertBlock build() {
            validateSizes(Integer.MAX_VALUE);
            return new BertBlock(this);
        }
    }

    /** The block sizes, shared by the plain and the adapted block's builders. */
    @SuppressWarnings("unchecked")
    public abstract static class AbstractBuilder<T extends AbstractBuilder<T>> extends SameDiffLayer.Builder<T> {
        private int hidden;
        private int numHeads = 1;
        private int intermediate;
        private double layerNormEps = BertConfig.BERT_LAYER_NORM_EPS;
        private boolean graphRuntime;

        /** Sizes and epsilon from a config. */
        public T config(BertConfig c) {
            this.hidden = c.hidden();
            this.numHeads = c.numHeads();
            this.intermediate = c.intermediate();
            this.layerNormEps = c.layerNormEps();
            return (T) this;
        }

        /** Sizes, epsilon, runtime, name and training settings (updater, regularization) of an existing block. */
        public T like(BertBlock b) {
            this.hidden = b.getHidden();
            this.numHeads = b.getNumHeads();
            this.intermediate = b.getIntermediate();
            this.layerNormEps = b.getLayerNormEps();
            this.graphRuntime = b.isGraphRuntime();
            this.layerName = b.getLayerName();
            this.updater = b.getUpdater();
            this.regularization = b.getRegularization();
            return (T) this;
        }

        /** Model width (the input and output size). */
        public T hidden(int hidden) {
            this.hidden = hidden;
            return (T) this;
        }

        /** Attention heads; must divide hidden. */
        public T numHeads(int numHeads) {
            this.numHeads = numHeads;
            return (T) this;
        }

        /** FFN width. */
        public T intermediate(int intermediate) {
            this.intermediate = intermediate;
            return (T) this;
        }

        public T layerNormEps(double eps) {
            this.layerNormEps = eps;
            return (T) this;
        }

        /**
         * Run the block as the SameDiff graph of {@link BertBlock#defineLayer} (the reference the native runtime is
         * tested against; several times slower to train) instead of {@link PriLoraBertBlockRuntime}.
         */
        public T graphRuntime(boolean graph) {
            this.graphRuntime = graph;
            return (T) this;
        }

        /** Validates the sizes; {@code maxRank} bounds the adapter rank of a subclass (min(hidden, intermediate)). */
        protected void validateSizes(int rank) {
            // BertConfig carries the messages for sizes, head divisibility and epsilon.
            new BertConfig(1, hidden, 1, numHeads, intermediate, 1, 1, layerNormEps);
            if (rank != Integer.MAX_VALUE && rank > Math.min(hidden, intermediate)) {
                throw new IllegalArgumentException("rank: expected a value in [1, min(hidden, intermediate) = "
                        + Math.min(hidden, intermediate) + "], got " + rank);
            }
        }
    }
}
