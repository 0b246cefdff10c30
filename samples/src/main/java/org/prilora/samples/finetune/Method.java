package org.prilora.samples.finetune;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * What a fine-tuning run trains. The three arms of the {@code --compare} experiment.
 */
public enum Method {
    /** PRILoRA: linearly increasing ranks by depth and importance-based pruning of A during training. */
    PRILORA("prilora"),
    /** Plain LoRA: one uniform rank (default 8, the same parameter budget as ranks 4:12), no pruning. */
    LORA("lora"),
    /** Frozen encoder: a softmax classifier on cached mean-pooled MiniLM sentence embeddings. */
    HEAD_ONLY("head-only");

    private final String cliName;

    Method(String cliName) {
        this.cliName = cliName;
    }

    /** @return the name used on the command line and in output files ({@code prilora}, {@code lora}, {@code head-only}) */
    public String cliName() {
        return cliName;
    }

    /** @return whether this method trains adapters inside the encoder (false for {@link #HEAD_ONLY}) */
    public boolean usesAdapters() {
        return this != HEAD_ONLY;
    }

    /**
     * Parses a command-line name, case-insensitively; {@code head_only} and {@code headonly} are accepted too.
     *
     * @param text the name
     * @return the method
     * @throws IllegalArgumentException naming the value and the allowed names
     */
    public static Method parse(String text) {
        String t = text == null ? "" : text.trim().toLowerCase(Locale.ROOT).replace('_', '-');
        if (t.equals("headonly")) {
            t = "head-only";
        }
        for (Method m : values()) {
            if (m.cliName.equals(t)) {
                return m;
            }
        }
        throw new IllegalArgumentException("expected one of " + allowed() + ", got '" + text + "'");
    }

    /** @return the allowed command-line names, e.g. {@code prilora|lora|head-only} */
    public static String allowed() {
        return Arrays.stream(values()).map(Method::cliName).collect(Collectors.joining("|"));
    }

    @Override
    public String toString() {
        return cliName;
    }
}
