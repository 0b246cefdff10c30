package org.prilora.layers;

import org.deeplearning4j.nn.conf.InputPreProcessor;
import org.deeplearning4j.nn.conf.RNNFormat;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.InputTypeUtil;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.ops.MultiHeadAttention;

import java.util.List;
import java.util.Map;

/**
 * A drop-in for DL4J's {@code SelfAttentionLayer} (with {@code projectInput}) whose four projections are
 * frozen and carry PRILoRA adapters of one rank: query, key, value ({@code [nIn, nHeads·headSize]}) and
 * output ({@code [nHeads·headSize, nOut]}). Input is NCW {@code [mb, nIn, T]} with an optional DL4J mask
 * {@code [mb, T]} (other layouts get DL4J's usual preprocessor); output is NCW {@code [mb, nOut, T]}.
 *
 * <p>DL4J stores {@code Wq/Wk/Wv} as {@code [nHeads, headSize, nIn]}; here they are the equivalent 2-D
 * {@code [nIn, nHeads·headSize]} with column {@code h·headSize + d} (see {@link #fromDl4jProjection}).
 */
public class PriLoraSelfAttention extends AbstractPriLoraSameDiffLayer {
    private static final long serialVersionUID = 1L;

    /** Module names (PEFT-style). */
    public static final String QUERY = "query";
    public static final String KEY = "key";
    public static final String VALUE = "value";
    public static final String OUTPUT = "output";

    private long nIn;
    private long nOut;
    private int nHeads;
    private long headSize;

    protected PriLoraSelfAttention() {
    }

    protected PriLoraSelfAttention(Builder b) {
        super(b);
        this.nIn = b.nIn;
        this.nOut = b.nOut;
        this.nHeads = b.nHeads;
        this.headSize = b.headSize == 0 ? b.nOut / b.nHeads : b.headSize;
    }

    /** Converts DL4J's {@code [nHeads, headSize, nIn]} projection into this layer's {@code [nIn, nHeads·headSize]}. */
    public static INDArray fromDl4jProjection(INDArray w3) {
        return w3.reshape('c', w3.size(0) * w3.size(1), w3.size(2)).transpose().dup('c');
    }

    /** Converts this layer's {@code [nIn, nHeads·headSize]} projection back to DL4J's {@code [nHeads, headSize, nIn]}. */
    public static INDArray toDl4jProjection(INDArray w2, int nHeads) {
        long hd = w2.size(1);
        return w2.transpose().dup('c').reshape('c', nHeads, hd / nHeads, w2.size(0));
    }

    @Override
    public List<AdapterModule> adapterModules() {
        boolean mask = adapter.hasMask();
        long hd = nHeads * headSize;
        return List.of(
                AdapterKeys.module(QUERY, "q", false, mask, nIn, hd, rank),
                AdapterKeys.module(KEY, "k", false, mask, nIn, hd, rank),
                AdapterKeys.module(VALUE, "v", false, mask, nIn, hd, rank),
                AdapterKeys.module(OUTPUT, "o", false, mask, hd, nOut, rank));
    }

    @Override
    public SDVariable defineLayer(SameDiff sd, SDVariable input, Map<String, SDVariable> params, SDVariable mask) {
        List<AdapterModule> modules = adapterModules();
        SDVariable x2d = input.permute(0, 2, 1).reshape(-1, nIn);            // rows b·T + t
        SDVariable mbT = MultiHeadAttention.batchAndTime(sd, input, true);
        SDVariable q = adaptedLinear(sd, modules.get(0), x2d, params);
        SDVariable k = adaptedLinear(sd, modules.get(1), x2d, params);
        SDVariable v = adaptedLinear(sd, modules.get(2), x2d, params);
        SDVariable ctx = MultiHeadAttention.attend(sd, q, k, v, mask, mbT, nHeads, (int) headSize);
        SDVariable o = adaptedLinear(sd, modules.get(3), ctx, params);  // [mb·T, nOut]
        SDVariable shape3 = sd.concat(0, mbT, sd.constant(org.nd4j.linalg.factory.Nd4j.createFromArray(nOut)));
        return o.reshape(shape3).permute(0, 2, 1);
    }

    @Override
    public void validateInput(INDArray input) {
        if (input.rank() != 3 || input.size(1) != nIn) {
            throw new IllegalArgumentException("PriLoraSelfAttention '" + getLayerName() + "': expected NCW input [mb, "
                    + nIn + ", T], got shape " + java.util.Arrays.toString(input.shape()));
        }
    }

    @Override
    public InputType getOutputType(int layerIndex, InputType inputType) {
        return InputType.recurrent(nOut, requireRecurrent(inputType, "recurrent input", false).getTimeSeriesLength());
    }

    @Override
    public void setNIn(InputType inputType, boolean override) {
        long size = requireRecurrent(inputType, "recurrent input", false).getSize();
        if (nIn <= 0 || override) {
            nIn = size;
        }
    }

    @Override
    public InputPreProcessor getPreProcessorForInputType(InputType inputType) {
        return InputTypeUtil.getPreprocessorForInputTypeRnnLayers(inputType, RNNFormat.NCW, getLayerName());
    }

    public long getNIn() {
        return nIn;
    }

    // Setters for the three sizes whose getter names (getNIn → "nin") do not match the field names: without them
    // DL4J's JSON would not read the sizes back.
    public void setNIn(long nIn) {
        this.nIn = nIn;
    }

    public long getNOut() {
        return nOut;
    }

    public void setNOut(long nOut) {
        this.nOut = nOut;
    }

    public int getNHeads() {
        return nHeads;
    }

    public void setNHeads(int nHeads) {
        this.nHeads = nHeads;
    }

    public long getHeadSize() {
        return headSize;
    }

    /** Builder with {@code SelfAttentionLayer.Builder}'s fields plus the adapter fields. */
    public static class Builder extends AdapterBuilder<Builder> {
        private long nIn;
        private long nOut;
        private int nHeads = 1;
        private long headSize;
        private boolean projectInput = true;

        public Builder nIn(long nIn) {
            this.nIn = nIn;
            return this;
        }

        public Builder nOut(long nOut) {
            this.nOut = nOut;
            return this;
        }

        public Builder nHeads(int nHeads) {
            this.nHeads = nHeads;
            return this;
        }

        /** Size of each head; defaults to nOut / nHeads. */
        public Builder headSize(long headSize) {
            this.headSize = headSize;
            return this;
        }

        /** Must be true: without input projections there is nothing to adapt. */
        public Builder projectInput(boolean projectInput) {
            this.projectInput = projectInput;
            return this;
        }

        @Override
        @SuppressWarnings("unchecked")
        public PriLoraSelfAttention build() {
            validateAdapterFields();
            if (!projectInput) {
                throw new IllegalArgumentException("projectInput: expected true (PRILoRA adapts the projections), got false");
            }
            if (nHeads < 1) {
                throw new IllegalArgumentException("nHeads: expected >= 1, got " + nHeads);
            }
            if (nOut < 1) {
                throw new IllegalArgumentException("nOut: expected >= 1, got " + nOut);
            }
            if (headSize < 0) {
                throw new IllegalArgumentException("headSize: expected >= 1 (or 0 for nOut / nHeads), got " + headSize);
            }
            if (headSize == 0 && nOut % nHeads != 0) {
                throw new IllegalArgumentException("nOut: expected a multiple of nHeads = " + nHeads
                        + " when headSize is not given, got " + nOut);
            }
            return new PriLoraSelfAttention(this);
        }
    }
}
