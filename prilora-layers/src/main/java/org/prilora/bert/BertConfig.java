package org.prilora.bert;

import java.io.Serializable;
import java.util.Objects;

/**
 * Hyperparameters of a BERT-family encoder (the fields of a Hugging Face {@code BertConfig} that shape the
 * weights and the forward pass). Immutable; every value is validated on construction with a message that
 * names the field, the value and what was expected.
 *
 * <p>{@link OnnxBertReader} derives all of them from an exported model: sizes from the initializer shapes,
 * the number of heads and the LayerNorm epsilon from the graph.
 */
public final class BertConfig implements Serializable {
    private static final long serialVersionUID = 1L;

    /** BERT's LayerNorm epsilon ({@code layer_norm_eps} in Hugging Face's config). */
    public static final double BERT_LAYER_NORM_EPS = 1e-12;

    private final int vocabSize;
    private final int hidden;
    private final int numLayers;
    private final int numHeads;
    private final int intermediate;
    private final int maxPositions;
    private final int typeVocabSize;
    private final double layerNormEps;

    /**
     * @param vocabSize     rows of the word embedding table
     * @param hidden        model width ({@code hidden_size})
     * @param numLayers     encoder blocks
     * @param numHeads      attention heads; must divide {@code hidden}
     * @param intermediate  FFN width ({@code intermediate_size})
     * @param maxPositions  rows of the position embedding table ({@code max_position_embeddings})
     * @param typeVocabSize rows of the token type table ({@code type_vocab_size})
     * @param layerNormEps  epsilon added to the variance in every LayerNorm
     */
    public BertConfig(int vocabSize, int hidden, int numLayers, int numHeads, int intermediate, int maxPositions,
                      int typeVocabSize, double layerNormEps) {
        requirePositive("vocabSize", vocabSize);
        requirePositive("hidden", hidden);
        requirePositive("numLayers", numLayers);
        requirePositive("numHeads", numHeads);
        requirePositive("intermediate", intermediate);
        requirePositive("maxPositions", maxPositions);
        requirePositive("typeVocabSize", typeVocabSize);
        if (hidden % numHeads != 0) {
            throw new IllegalArgumentException("hidden: expected a multiple of numHeads = " + numHeads + ", got " + hidden);
        }
        if (!(layerNormEps > 0) || Double.isInfinite(layerNormEps)) {
            throw new IllegalArgumentException("layerNormEps: expected a finite value > 0, got " + layerNormEps);
        }
        this.vocabSize = vocabSize;
        this.hidden = hidden;
        this.numLayers = numLayers;
        this.numHeads = numHeads;
        this.intermediate = intermediate;
        this.maxPositions = maxPositions;
        this.typeVocabSize = typeVocabSize;
        this.layerNormEps = layerNormEps;
    }

    private static void requirePositive(String field, int v) {
        if (v < 1) {
            throw new IllegalArgumentException(field + ": expected >= 1, got " + v);
        }
    }

    public int vocabSize() {
        return vocabSize;
    }

    public int hidden() {
        return hidden;
    }

    public int numLayers() {
        return numLayers;
    }

    public int numHeads() {
        return numHeads;
    }

    /** {@code hidden / numHeads}. */
    public int headSize() {
        return hidden / numHeads;
    }

    public int intermediate() {
        return intermediate;
    }

    public int maxPositions() {
        return maxPositions;
    }

    public int typeVocabSize() {
        return typeVocabSize;
    }

    public double layerNormEps() {
        return layerNormEps;
    }

    /** A copy with another number of layers (for example to build only the bottom blocks). */
    public BertConfig withNumLayers(int n) {
        return new BertConfig(vocabSize, hidden, n, numHeads, intermediate, maxPositions, typeVocabSize, layerNormEps);
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof BertConfig)) {
            return false;
        }
        BertConfig c = (BertConfig) o;
        return vocabSize == c.vocabSize && hidden == c.hidden && numLayers == c.numLayers && numHeads == c.numHeads
                && intermediate == c.intermediate && maxPositions == c.maxPositions && typeVocabSize == c.typeVocabSize
                && Double.compare(layerNormEps, c.layerNormEps) == 0;
    }

    @Override
    public int hashCode() {
        return Objects.hash(vocabSize, hidden, numLayers, numHeads, intermediate, maxPositions, typeVocabSize, layerNormEps);
    }

    @Override
    public String toString() {
        return "BertConfig{vocabSize=" + vocabSize + ", hidden=" + hidden + ", numLayers=" + numLayers + ", numHeads="
                + numHeads + ", intermediate=" + intermediate + ", maxPositions=" + maxPositions + ", typeVocabSize="
                + typeVocabSize + ", layerNormEps=" + layerNormEps + "}";
    }
}
