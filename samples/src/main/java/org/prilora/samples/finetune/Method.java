package org.prilora.samples.finetune;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * What a fine-tuning run trains: the arms of the {@code --compare} experiment. Besides PRILoRA, LoRA and the two
 * baselines (a frozen encoder, full fine-tuning) there are the paper's two ablations, each PRILoRA with one of its
 * two ingredients removed, and PRILoRA with persistent masks instead of regrowth.
 */
public enum Method {
    /** PRILoRA: linearly increasing ranks by depth and importance-based pruning of A ({@code --prune-mode}). */
    PRILORA("prilora", true, true, true),
    /** Plain LoRA: one uniform rank (default 8, the same parameter budget as ranks 4:12), no pruning. */
    LORA("lora", true, false, false),
    /** Ablation: PRILoRA's linear ranks without pruning. */
    LINEAR_UNPRUNED("linear-unpruned", true, true, false),
    /** Ablation: LoRA's uniform rank with PRILoRA's pruning. */
    UNIFORM_PRUNED("uniform-pruned", true, false, true),
    /** PRILoRA with {@code PERSISTENT_MASK}: a pruned entry of A stays 0 until the end of training. */
    PRILORA_PERSISTENT("prilora-persistent", true, true, true),
    /**
     * Full fine-tuning: every weight of the six blocks (projections, biases, LayerNorms) and the classifier trains
     * ({@code --full-lr}); the embedding tables stay frozen, as the encoder's embedding layer always is.
     */
    FULL("full", false, false, false),
    /** Frozen encoder: a softmax classifier on cached mean-pooled MiniLM sentence embeddings. */
    HEAD_ONLY("head-only", false, false, false);

    private final String cliName;
    private final boolean adapters;
    private final boolean linearRanks;
    private final boolean pruned;

    Method(String cliName, boolean adapters, boolean linearRanks, boolean pruned) {
        this.cliName = cliName;
        this.adapters = adapters;
        this.linearRanks = linearRanks;
        this.pruned = pruned;
    }

    /** @return whether the adapters' ranks follow {@code --ranks} (else uniform {@code --lora-rank}) */
    public boolean linearRanks() {
        return linearRanks;
    }

    /** @return whether A is pruned during training */
    public boolean pruned() {
        return pruned;
    }

    /** @return whether the encoder's weights change (every method but {@link #HEAD_ONLY}) */
    public boolean trainsEncoder() {
        return this != HEAD_ONLY;
    }

    /** @return the name used on the command line and in output files, e.g. {@code prilora}, {@code head-only} */
    public String cliName() {
        return cliName;
    }

    /** @return whether this method trains adapters inside the encoder (false for {@link #FULL} and {@link #HEAD_ONLY}) */
    public boolean usesAdapters() {
        return adapters;
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
