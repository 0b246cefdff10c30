package org.prilora.bert;

import org.deeplearning4j.nn.conf.InputPreProcessor;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.RNNFormat;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.samediff.SDLayerParams;
import org.deeplearning4j.nn.conf.layers.samediff.SameDiffLayer;
import org.nd4j.shade.jackson.annotation.JsonProperty;
import org.prilora.layers.GraphLayer;
import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * BERT's embedding layer as a DL4J layer: {@code LayerNorm(word[id] + position[t] + tokenType[type])}, with every
 * parameter frozen (pretrained, never updated: no updater state, no regularization, zero gradients).
 *
 * <p><b>Input</b>: NCW {@code [mb, C, T]} of token ids stored as floats (exact up to 2^24), network input type
 * {@code InputType.recurrent(C)}: {@code C = 2} carries the token ids in channel 0 and the token type ids in
 * channel 1; {@code C = 1} carries the ids only and every token type is 0 (single-sentence tasks). A 3-D input
 * keeps DL4J's usual recurrent mask {@code [mb, T]} (1 = real token) flowing to the blocks and to mask-aware
 * pooling. Position ids are {@code 0..T-1}, so padding must be on the right (as BERT tokenizers do).
 * <b>Output</b>: NCW {@code [mb, hidden, T]}.
 *
 * <p>Hidden dropout is left out: the base model is frozen and evaluated as in inference; regularization of the
 * fine-tuning lives in the adapters. Ids are checked on every batch (range and sequence length) so that a bad id
 * fails with a message instead of reading outside the table.
 */
public class BertEmbeddings extends GraphLayer {
    private static final long serialVersionUID = 1L;
    private static final String RECURRENT = "NCW recurrent input (InputType.recurrent(1 or 2))";

    /** Parameter keys (no underscores: DL4J's updater splits gradient keys {@code <layer>_<param>} at the last one). */
    public static final String WORD = "wordEmb";
    public static final String POSITION = "posEmb";
    public static final String TOKEN_TYPE = "typeEmb";
    public static final String LN_GAIN = "lnGain";
    public static final String LN_BIAS = "lnBias";

    // Sizes are read back from JSON through the fields; only inputChannels is asked for from outside.
    @JsonProperty
    private int vocabSize;
    @JsonProperty
    private int hidden;
    @JsonProperty
    private int maxPositions;
    @JsonProperty
    private int typeVocabSize = 2;
    @JsonProperty
    private double layerNormEps = BertConfig.BERT_LAYER_NORM_EPS;
    private int inputChannels = 2;

    /** For JSON deserialization. */
    protected BertEmbeddings() {
    }

    protected BertEmbeddings(Builder b) {
        super(b);
        this.vocabSize = b.vocabSize;
        this.hidden = b.hidden;
        this.maxPositions = b.maxPositions;
        this.typeVocabSize = b.typeVocabSize;
        this.layerNormEps = b.layerNormEps;
        this.inputChannels = b.inputChannels;
    }

    @Override
    public void defineParameters(SDLayerParams params) {
        params.addWeightParam(WORD, vocabSize, hidden);
        params.addWeightParam(POSITION, maxPositions, hidden);
        params.addWeightParam(TOKEN_TYPE, typeVocabSize, hidden);
        params.addWeightParam(LN_GAIN, 1, hidden);
        params.addWeightParam(LN_BIAS, 1, hidden);
    }

    @Override
    public void initializeParameters(Map<String, INDArray> params) {
        // BERT's initializer (normal, std 0.02); pretrained models overwrite everything.
        for (String k : List.of(WORD, POSITION, TOKEN_TYPE)) {
            INDArray p = params.get(k);
            p.assign(Nd4j.randn(p.dataType(), p.shape()).muli(0.02));
        }
        params.get(LN_GAIN).assign(1);
        params.get(LN_BIAS).assign(0);
    }

    @Override
    public SDVariable defineLayer(SameDiff sd, SDVariable input, Map<String, SDVariable> params, SDVariable mask) {
        SDVariable ids = input.get(SDIndex.all(), SDIndex.point(0), SDIndex.all()).castTo(DataType.INT);   // [mb, T]
        SDVariable words = sd.gather(params.get(WORD), ids, 0);                                             // [mb, T, H]
        SDVariable t = input.shape().get(SDIndex.point(2)).castTo(DataType.INT);
        SDVariable positionIds = sd.range(sd.constant(Nd4j.scalar(0)), t, sd.constant(Nd4j.scalar(1)), DataType.INT);
        SDVariable positions = sd.gather(params.get(POSITION), positionIds, 0);                             // [T, H]
        SDVariable types;
        if (inputChannels == 2) {
            SDVariable typeIds = input.get(SDIndex.all(), SDIndex.point(1), SDIndex.all()).castTo(DataType.INT);
            types = sd.gather(params.get(TOKEN_TYPE), typeIds, 0);                                          // [mb, T, H]
        } else {
            types = params.get(TOKEN_TYPE).get(SDIndex.interval(0, 1));                                     // [1, H]
        }
        SDVariable sum = words.add(positions).add(types);
        SDVariable out = BertOps.layerNorm(sd, sum, params.get(LN_GAIN), params.get(LN_BIAS), layerNormEps, 2);
        return out.permute(0, 2, 1);
    }

    @Override
    public void validateInput(INDArray input) {
        if (input.rank() != 3 || input.size(1) != inputChannels) {
            throw new IllegalArgumentException("BertEmbeddings '" + getLayerName() + "': expected NCW input [mb, " + inputChannels
                    + ", T] (" + (inputChannels == 2 ? "token ids, token type ids" : "token ids") + "), got shape "
                    + Arrays.toString(input.shape()));
        }
        if (input.size(2) > maxPositions) {
            throw new IllegalArgumentException("BertEmbeddings '" + getLayerName() + "': expected at most maxPositions = "
                    + maxPositions + " tokens, got T = " + input.size(2));
        }
        checkRange(input.get(NDArrayIndex.all(), NDArrayIndex.point(0), NDArrayIndex.all()), "token id", vocabSize);
        if (inputChannels == 2) {
            checkRange(input.get(NDArrayIndex.all(), NDArrayIndex.point(1), NDArrayIndex.all()), "token type id", typeVocabSize);
        }
    }

    private void checkRange(INDArray ids, String what, int size) {
        double min = ids.minNumber().doubleValue();
        double max = ids.maxNumber().doubleValue();
        if (!(min >= 0) || !(max < size)) {
            throw new IllegalArgumentException("BertEmbeddings '" + getLayerName() + "': expected every " + what + " in [0, "
                    + (size - 1) + "], got values in [" + min + ", " + max + "]");
        }
    }

    @Override
    public InputType getOutputType(int layerIndex, InputType inputType) {
        InputType.InputTypeRecurrent r = requireRecurrent(inputType, RECURRENT, true);
        return InputType.recurrent(hidden, r.getTimeSeriesLength(), RNNFormat.NCW);
    }

    @Override
    public void setNIn(InputType inputType, boolean override) {
        long c = requireRecurrent(inputType, RECURRENT, true).getSize();
        if (c != 1 && c != 2) {
            throw new IllegalStateException("BertEmbeddings '" + getLayerName() + "': expected InputType.recurrent(1) (token ids)"
                    + " or InputType.recurrent(2) (token ids, token type ids), got size " + c);
        }
        inputChannels = (int) c;
    }

    @Override
    public InputPreProcessor getPreProcessorForInputType(InputType inputType) {
        return null; // token ids are consumed as they come; no reshaping preprocessor applies to ids
    }

    @Override
    protected org.deeplearning4j.nn.layers.AbstractLayer<?> createRuntime(NeuralNetConfiguration conf, DataType networkDataType) {
        return new BertEmbeddingsRuntime(conf, networkDataType);
    }

    /** Everything here is pretrained and frozen. */
    @Override
    public boolean isTrainableParam(String paramName) {
        return false;
    }

    /** 2: ids and token type ids; 1: ids only (token type 0). */
    public int getInputChannels() {
        return inputChannels;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof BertEmbeddings) || !super.equals(o)) {
            return false;
        }
        BertEmbeddings e = (BertEmbeddings) o;
        return vocabSize == e.vocabSize && hidden == e.hidden && maxPositions == e.maxPositions
                && typeVocabSize == e.typeVocabSize && Double.compare(layerNormEps, e.layerNormEps) == 0
                && inputChannels == e.inputChannels;
    }

    @Override
    public int hashCode() {
        return Objects.hash(super.hashCode(), vocabSize, hidden, maxPositions, typeVocabSize, layerNormEps, inputChannels);
    }

    /** Builder; {@link #config(BertConfig)} fills every size from a {@link BertConfig}. */
    public static class Builder extends SameDiffLayer.Builder<Builder> {
        private int vocabSize;
        private int hidden;
        private int maxPositions;
        private int typeVocabSize = 2;
        private double layerNormEps = BertConfig.BERT_LAYER_NORM_EPS;
        private int inputChannels = 2;

        /** Sizes and epsilon from a config. */
        public Builder config(BertConfig c) {
            this.vocabSize = c.vocabSize();
            this.hidden = c.hidden();
            this.maxPositions = c.maxPositions();
            this.typeVocabSize = c.typeVocabSize();
            this.layerNormEps = c.layerNormEps();
            return this;
        }

        /** 2 (ids + token types, default) or 1 (ids only); set from the input type when the network has one. */
        public Builder inputChannels(int c) {
            this.inputChannels = c;
            return this;
        }

        @Override
        @SuppressWarnings("unchecked")
        public BertEmbeddings build() {
            // Validates the sizes with BertConfig's messages (layers/heads are irrelevant here).
            new BertConfig(vocabSize, hidden, 1, 1, 1, maxPositions, typeVocabSize, layerNormEps);
            if (inputChannels != 1 && inputChannels != 2) {
                throw new IllegalArgumentException("inputChannels: expected 1 (ids) or 2 (ids, token types), got " + inputChannels);
            }
            return new BertEmbeddings(this);
        }
    }
}
