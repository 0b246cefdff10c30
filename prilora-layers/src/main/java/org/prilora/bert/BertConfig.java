package org.prilora.bert;

import java.io.Serializable;

/**
 * Hyperparameters of a BERT-family encoder (the fields of a Hugging Face {@code BertConfig} that shape the
 * weights and the forward pass). Immutable; every value is validated on construction with a message that
 * names the field, the value and what was expected.
 *
 * <p>{@link OnnxBertReader} derives all of them from an exported model: sizes from the initializer shapes,
 * the number of heads and the LayerNorm epsilon from the graph.
 *
 * @param vocabSize     rows of the word embedding table
 * @param hidden        model width ({@code hidden_size})
 * @param numLayers     encoder blocks
 * @param numHeads      attention heads; must divide {@code hidden}
 * @param intermediate  FFN width ({@code intermediate_size})
 * @param maxPositions  rows of the position embedding table ({@code max_position_embeddings})
 * @param typeVocabSize rows of the token type table ({@code type_vocab_size})
 * @param layerNormEps  epsilon added to the variance in every LayerNorm
 */
public record BertConfig(int vocabSize, int hidden, int numLayers, int numHeads, int intermediate, int maxPositions,
                         int typeVocabSize, double layerNormEps) implements Serializable {

    /** BERT's LayerNorm epsilon ({@code layer_norm_eps} in Hugging Face's config). */
    public static final double BERT_LAYER_NORM_EPS = 1e-12;

    public BertConfig {
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
    }

    private static void requirePositive(String field, int v) {
        if (v < 1) {
            throw new IllegalArgumentException(field + ": expected >= 1, got " + v);
        }
    }

    /** {@code hidden / numHeads}. */
    public int headSize() {
        return hidden / numHeads;
    }

    /** A copy with another number of layers (for example to build only the bottom blocks). */
    public BertConfig withNumLayers(int n) {
        return new BertConfig(vocabSize, hidden, n, numHeads, intermediate, maxPositions, typeVocabSize, layerNormEps);
    }
}
