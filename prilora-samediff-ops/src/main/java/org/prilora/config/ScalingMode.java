package org.prilora.config;

/** How the LoRA scale {@code s} follows from alpha and the rank. */
public enum ScalingMode {
    /** {@code s = alpha / r} (LoRA, PEFT's default). */
    ALPHA_OVER_R,
    /** {@code s = alpha / sqrt(r)} (rsLoRA, PEFT's {@code use_rslora}). */
    ALPHA_OVER_SQRT_R;

    /** The scale for one adapter of rank {@code r}. */
    public double scale(double alpha, int r) {
        if (r < 1) {
            throw new IllegalArgumentException("r: expected a rank >= 1, got " + r);
        }
        return this == ALPHA_OVER_R ? alpha / r : alpha / Math.sqrt(r);
    }
}
