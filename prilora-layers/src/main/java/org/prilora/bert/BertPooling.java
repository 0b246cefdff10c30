package org.prilora.bert;

/**
 * How a sentence-level head reads the encoder's {@code last_hidden_state} {@code [mb, hidden, T]}.
 */
public enum BertPooling {
    /** Mean over the real tokens (the attention mask), as sentence-transformers pools MiniLM; the default. */
    MEAN,
    /** The {@code [CLS]} token's vector (position 0), as bge models are pooled. */
    CLS,
    /**
     * The {@code [CLS]} vector through the checkpoint's pooler, {@code tanh(cls · W + b)} (Hugging Face's
     * {@code BertPooler}, what {@code BertForSequenceClassification} classifies). Needs a checkpoint with
     * {@code pooler.dense} ({@link BertWeights#hasPooler()}).
     */
    CLS_POOLER;

    /** The pooling a {@link BertEncoderFactory} uses unless told otherwise. */
    public static final BertPooling DEFAULT = MEAN;
}
