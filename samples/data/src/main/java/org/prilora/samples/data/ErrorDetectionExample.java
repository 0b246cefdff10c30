package org.prilora.samples.data;

import java.util.Objects;

/**
 * One sentence of the grammatical error detection data set: either a wrong sentence with the span LanguageTool's
 * {@code <marker>} marks as the error, or its corrected partner, which has no error.
 *
 * @param sentence   the sentence, whitespace-normalised, never blank
 * @param errorStart start (UTF-16 index into {@code sentence}) of the marked error, or -1 for a correct sentence
 * @param errorEnd   end (exclusive) of the marked error, or -1
 * @param groupId    shared by a wrong sentence and its corrected partner; the split is decided per group, exactly as in
 *                   {@link LanguageToolAcceptability}
 * @param ruleId     the LanguageTool rule the sentence came from
 */
public record ErrorDetectionExample(String sentence, int errorStart, int errorEnd, String groupId, String ruleId) {

    /**
     * Validates the fields.
     *
     * @throws IllegalArgumentException if the sentence is blank or the span is not inside it (or only half given)
     */
    public ErrorDetectionExample {
        Objects.requireNonNull(sentence, "sentence");
        Objects.requireNonNull(groupId, "groupId");
        Objects.requireNonNull(ruleId, "ruleId");
        if (sentence.isBlank()) {
            throw new IllegalArgumentException("sentence must not be blank (rule " + ruleId + ")");
        }
        boolean none = errorStart == -1 && errorEnd == -1;
        if (!none && !(0 <= errorStart && errorStart < errorEnd && errorEnd <= sentence.length())) {
            throw new IllegalArgumentException("error span: expected 0 <= start < end <= " + sentence.length()
                    + " or both -1, got [" + errorStart + ", " + errorEnd + ") in: " + sentence);
        }
    }

    /** Whether the sentence has a marked error. */
    public boolean hasError() {
        return errorStart >= 0;
    }

    /** The marked text, or "" for a correct sentence. */
    public String errorText() {
        return hasError() ? sentence.substring(errorStart, errorEnd) : "";
    }
}
