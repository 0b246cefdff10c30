package org.prilora.samples.data;

import java.util.Objects;

/**
 * One labelled sentence of a grammatical-acceptability data set (the kind of GLUE CoLA).
 *
 * @param sentence the sentence, whitespace-normalised, never blank
 * @param label    {@link #ACCEPTABLE} (1) or {@link #UNACCEPTABLE} (0)
 * @param groupId  id shared by a wrong sentence and its corrected twin (and by any correct sentence with the
 *                 same text as that twin); the train/dev/test split is decided per group, so a group never
 *                 straddles two splits
 * @param ruleId   id of the LanguageTool rule the sentence came from, for tracing; {@code RULEGROUP[n]} for
 *                 the n-th rule (1-based) of a rule group whose rules carry no id of their own
 */
public record AcceptabilityExample(String sentence, int label, String groupId, String ruleId) {

    /** Label of a grammatically acceptable sentence. */
    public static final int ACCEPTABLE = 1;
    /** Label of a grammatically unacceptable sentence. */
    public static final int UNACCEPTABLE = 0;

    /**
     * Validates the fields.
     *
     * @throws IllegalArgumentException if the sentence is blank or the label is neither 0 nor 1
     * @throws NullPointerException     if any string field is null
     */
    public AcceptabilityExample {
        Objects.requireNonNull(sentence, "sentence");
        Objects.requireNonNull(groupId, "groupId");
        Objects.requireNonNull(ruleId, "ruleId");
        if (sentence.isBlank()) {
            throw new IllegalArgumentException("sentence must not be blank (rule " + ruleId + ")");
        }
        if (label != ACCEPTABLE && label != UNACCEPTABLE) {
            throw new IllegalArgumentException("label must be 0 (unacceptable) or 1 (acceptable), got " + label
                    + " for sentence: " + sentence);
        }
    }

    /** @return true when {@link #label()} is {@link #ACCEPTABLE} */
    public boolean acceptable() {
        return label == ACCEPTABLE;
    }
}
