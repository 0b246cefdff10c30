package org.prilora.heads;

/** Which word pieces of a word carry its label (and count in the loss) in token classification. */
public enum SubWordLabels {
    /** Only the first piece of each word, the others masked out (Hugging Face's token-classification recipe). */
    FIRST_PIECE,
    /** Every piece of a word gets the word's label. */
    EVERY_PIECE
}
