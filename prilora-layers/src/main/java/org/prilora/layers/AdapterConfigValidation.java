package org.prilora.layers;

import org.prilora.config.AdapterInit;
import org.prilora.config.ScalingMode;
import org.prilora.config.PruningMode;

/** Shared validation of the adapter fields of PRILoRA layer builders. */
final class AdapterConfigValidation {
    private AdapterConfigValidation() {
    }

    static void validate(int rank, double alpha, double loraDropout, ScalingMode scalingMode, PruningMode pruningMode,
                         AdapterInit init) {
        if (rank < 1) {
            throw new IllegalArgumentException("rank: expected >= 1, got " + rank);
        }
        if (!(alpha > 0) || Double.isInfinite(alpha)) {
            throw new IllegalArgumentException("alpha: expected a finite value > 0, got " + alpha);
        }
        if (!(loraDropout >= 0 && loraDropout < 1)) {
            throw new IllegalArgumentException("loraDropout: expected a value in [0, 1), got " + loraDropout);
        }
        if (scalingMode == null) {
            throw new IllegalArgumentException("scalingMode: expected ALPHA_OVER_R or ALPHA_OVER_SQRT_R, got null");
        }
        if (pruningMode == null) {
            throw new IllegalArgumentException("pruningMode: expected REGROW or PERSISTENT_MASK, got null");
        }
        if (init == null) {
            throw new IllegalArgumentException("adapterInit: expected KAIMING_UNIFORM or GAUSSIAN, got null");
        }
    }
}
