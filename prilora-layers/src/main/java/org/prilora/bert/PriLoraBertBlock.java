package org.prilora.bert;

import org.deeplearning4j.nn.conf.InputPreProcessor;
import org.deeplearning4j.nn.conf.RNNFormat;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.InputTypeUtil;
import org.deeplearning4j.nn.conf.layers.samediff.SDLayerParams;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.ops.MultiHeadAttention;
import org.prilora.bert.BertNaming.Norm;
import org.prilora.bert.BertNaming.Projection;
import org.prilora.layers.AbstractPriLoraSameDiffLayer;
import org.prilora.layers.AdapterModule;
import org.prilora.config.PruningMode;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One BERT encoder block (post-LayerNorm transformer) with PRILoRA adapters on all six projections:
 * <pre>
 *   h1 = LN(x + Attn(x)·Wao + bao)           Attn: multi-head softmax(Q·Kᵀ/√d + mask)·V, Q/K/V = x·W + b
 *   y  = LN(h1 + GELU(h1·Wi + bi)·Wo + bo)    GELU: exact erf form
 * </pre>
 * every projection {@code x·W + b} being {@code x·W + b + s·(x·(A⊙M)ᵀ)·Bᵀ} with W, b frozen.
 *
 * <p><b>Input</b>: NCW {@code [mb, hidden, T]} with DL4J's mask {@code [mb, T]} (1 = real token; masked keys get
 * no attention, masked rows do not count in the input statistics). The mask passes through to the next layer.
 * <b>Output</b>: NCW {@code [mb, hidden, T]}.
 *
 * <p>Adapter sites are named by their Hugging Face sub-module ({@link Projection#siteName()}, e.g.
 * {@code attention.self.query}); with the DL4J layer name {@code encoder.layer.N} they give the PEFT module name.
 * Parameters (keys from {@link AdapterModule#standard}): per site {@code <p>W [in,out]}, {@code <p>b [1,out]} (frozen),
 * {@code <p>loraA [r,in]}, {@code <p>loraB [out,r]} (trained), {@code <p>xnorm} (statistics), {@code <p>loraM}
 * (PERSISTENT_MASK mode), with {@code <p>} in {@code q k v ao i o}; plus the frozen LayerNorms
 * {@code ln1g, ln1b, ln2g, ln2b [1,hidden]}.
 */
public class PriLoraBertBlock extends AbstractPriLoraSameDiffLayer {
    private static final long serialVersionUID = 1L;

    private int hidden;
    private int numHeads;
    private int intermediate;
    private double layerNormEps = BertConfig.BERT_LAYER_NORM_EPS;
    /** Run the SameDiff graph of {@link #defineLayer} instead of the native {@link PriLoraBertBlockRuntime}. */
    private boolean graphRuntime;

    /** For JSON deserialization. */
    protected PriLoraBertBlock() {
    }

    protected PriLoraBertBlock(Builder b) {
        super(b);
        this.hidden = b.hidden;
        this.numHeads = b.numHeads;
        this.intermediate = b.intermediate;
        this.layerNormEps = b.layerNormEps;
        this.graphRuntime = b.graphRuntime;
    }

    @Override
    protected org.deeplearning4j.nn.layers.samediff.SameDiffLayer createRuntime(
            org.deeplearning4j.nn.conf.NeuralNetConfiguration conf, org.nd4j.linalg.api.buffer.DataType networkDataType) {
        return graphRuntime ? super.createRuntime(conf, networkDataType) : new PriLoraBertBlockRuntime(conf, networkDataType);
    }

    @Override
    public List<AdapterModule> adapterModules() {
        boolean mask = pruningMode == PruningMode.PERSISTENT_MASK;
        List<AdapterModule> sites = new ArrayList<>();
        for (Projection p : Projection.values()) {
            long in = p == Projection.OUTPUT ? intermediate : hidden;
            long out = p == Projection.INTERMEDIATE ? intermediate : hidden;
            sites.add(AdapterModule.standard(p.siteName(), p.paramPrefix(), true, mask, in, out, rank));
        }
        return sites;
    }

    @Override
    protected void defineExtraParameters(SDLayerParams params) {
        for (Norm n : Norm.values()) {
            params.addWeightParam(n.gainKey(), 1, hidden);
            params.addWeightParam(n.biasKey(), 1, hidden);
        }
    }

    @Override
    protected void initializeExtraParameters(Map<String, INDArray> params) {
        for (Norm n : Norm.values()) {
            params.get(n.gainKey()).assign(1);
            params.get(n.biasKey()).assign(0);
        }
    }

    @Override
    public SDVariable defineLayer(SameDiff sd, SDVariable input, Map<String, SDVariable> params, SDVariable mask) {
        List<AdapterModule> s = adapterModules();
        SDVariable mbT = MultiHeadAttention.batchAndTime(sd, input, true);
        // Rows b·T + t: the DL4J mask [mb, T] flattened in 'c' order marks the real rows (the runtime's statistics use that).
        SDVariable x = input.permute(0, 2, 1).reshape(-1, hidden);       // [mb·T, H]
        SDVariable q = adaptedLinear(sd, s.get(Projection.QUERY.ordinal()), x, params);
        SDVariable k = adaptedLinear(sd, s.get(Projection.KEY.ordinal()), x, params);
        SDVariable v = adaptedLinear(sd, s.get(Projection.VALUE.ordinal()), x, params);
        SDVariable ctx = MultiHeadAttention.attend(sd, q, k, v, mask, mbT, numHeads, hidden / numHeads);
        SDVariable attnOut = adaptedLinear(sd, s.get(Projection.ATTENTION_OUTPUT.ordinal()), ctx, params);
        SDVariable h1 = norm(sd, attnOut.add(x), Norm.ATTENTION_OUTPUT, params);
        SDVariable inter = adaptedLinear(sd, s.get(Projection.INTERMEDIATE.ordinal()), h1, params);
        SDVariable ffn = adaptedLinear(sd, s.get(Projection.OUTPUT.ordinal()), BertOps.geluErf(sd, inter), params);
        SDVariable y = norm(sd, ffn.add(h1), Norm.OUTPUT, params);       // [mb·T, H]
        SDVariable shape3 = sd.concat(0, mbT, sd.constant(Nd4j.createFromArray((long) hidden)));
        return y.reshape(shape3).permute(0, 2, 1);
    }

    private SDVariable norm(SameDiff sd, SDVariable x, Norm n, Map<String, SDVariable> params) {
        return BertOps.layerNorm(sd, x, params.get(n.gainKey()), params.get(n.biasKey()), layerNormEps, 1);
    }

    @Override
    public void validateInput(INDArray input) {
        if (input.rank() != 3 || input.size(1) != hidden) {
            throw new IllegalArgumentException("PriLoraBertBlock '" + getLayerName() + "': expected NCW input [mb, " + hidden
                    + ", T], got shape " + Arrays.toString(input.shape()));
        }
    }

    @Override
    public InputType getOutputType(int layerIndex, InputType inputType) {
        InputType.InputTypeRecurrent r = requireRecurrent(inputType);
        return InputType.recurrent(hidden, r.getTimeSeriesLength(), RNNFormat.NCW);
    }

    @Override
    public void setNIn(InputType inputType, boolean override) {
        InputType.InputTypeRecurrent r = requireRecurrent(inputType);
        if (hidden <= 0) {
            hidden = (int) r.getSize();
        } else if (r.getSize() != hidden) {
            throw new IllegalStateException("PriLoraBertBlock '" + getLayerName() + "': expected input size hidden = " + hidden
                    + ", got " + r.getSize() + " from the previous layer");
        }
    }

    private InputType.InputTypeRecurrent requireRecurrent(InputType inputType) {
        if (inputType == null || inputType.getType() != InputType.Type.RNN) {
            throw new IllegalStateException("PriLoraBertBlock '" + getLayerName() + "': expected recurrent input"
                    + " (InputType.recurrent(hidden)), got " + inputType);
        }
        return (InputType.InputTypeRecurrent) inputType;
    }

    @Override
    public InputPreProcessor getPreProcessorForInputType(InputType inputType) {
        return InputTypeUtil.getPreprocessorForInputTypeRnnLayers(inputType, RNNFormat.NCW, getLayerName());
    }

    public int getHidden() {
        return hidden;
    }

    public void setHidden(int hidden) {
        this.hidden = hidden;
    }

    public int getNumHeads() {
        return numHeads;
    }

    public void setNumHeads(int numHeads) {
        this.numHeads = numHeads;
    }

    public int getIntermediate() {
        return intermediate;
    }

    public void setIntermediate(int intermediate) {
        this.intermediate = intermediate;
    }

    public double getLayerNormEps() {
        return layerNormEps;
    }

    public void setLayerNormEps(double layerNormEps) {
        this.layerNormEps = layerNormEps;
    }

    /** Whether the block runs as a SameDiff graph (the reference) instead of the native runtime (the default). */
    public boolean isGraphRuntime() {
        return graphRuntime;
    }

    public void setGraphRuntime(boolean graphRuntime) {
        this.graphRuntime = graphRuntime;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof PriLoraBertBlock)) {
            return false;
        }
        PriLoraBertBlock b = (PriLoraBertBlock) o;
        return hidden == b.hidden && numHeads == b.numHeads && intermediate == b.intermediate
                && Double.compare(layerNormEps, b.layerNormEps) == 0 && graphRuntime == b.graphRuntime && rank == b.rank && Double.compare(alpha, b.alpha) == 0
                && scalingMode == b.scalingMode && pruningMode == b.pruningMode && adapterInit == b.adapterInit
                && Objects.equals(getLayerName(), b.getLayerName());
    }

    @Override
    public int hashCode() {
        return Objects.hash(hidden, numHeads, intermediate, layerNormEps, graphRuntime, rank, alpha, scalingMode, pruningMode, adapterInit,
                getLayerName());
    }

    /** Builder: the block sizes plus the adapter fields of {@link AbstractPriLoraSameDiffLayer.AdapterBuilder}. */
    public static class Builder extends AdapterBuilder<Builder> {
        private int hidden;
        private int numHeads = 1;
        private int intermediate;
        private double layerNormEps = BertConfig.BERT_LAYER_NORM_EPS;
        private boolean graphRuntime;

        /**
         * Run the block as the SameDiff graph of {@link PriLoraBertBlock#defineLayer} (the reference the native
         * runtime is tested against; several times slower to train) instead of {@link PriLoraBertBlockRuntime}.
         */
        public Builder graphRuntime(boolean graph) {
            this.graphRuntime = graph;
            return this;
        }

        /** Sizes and epsilon from a config. */
        public Builder config(BertConfig c) {
            this.hidden = c.hidden();
            this.numHeads = c.numHeads();
            this.intermediate = c.intermediate();
            this.layerNormEps = c.layerNormEps();
            return this;
        }

        /** Model width (the input and output size). */
        public Builder hidden(int hidden) {
            this.hidden = hidden;
            return this;
        }

        /** Attention heads; must divide hidden. */
        public Builder numHeads(int numHeads) {
            this.numHeads = numHeads;
            return this;
        }

        /** FFN width. */
        public Builder intermediate(int intermediate) {
            this.intermediate = intermediate;
            return this;
        }

        public Builder layerNormEps(double eps) {
            this.layerNormEps = eps;
            return this;
        }

        @Override
        @SuppressWarnings("unchecked")
        public PriLoraBertBlock build() {
            validateAdapterFields();
            // BertConfig carries the messages for sizes, head divisibility and epsilon.
            new BertConfig(1, hidden, 1, numHeads, intermediate, 1, 1, layerNormEps);
            if (rank > Math.min(hidden, intermediate)) {
                throw new IllegalArgumentException("rank: expected a value in [1, min(hidden, intermediate) = "
                        + Math.min(hidden, intermediate) + "], got " + rank);
            }
            return new PriLoraBertBlock(this);
        }
    }
}
