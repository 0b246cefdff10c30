package org.prilora.config;

import org.nd4j.shade.jackson.annotation.JsonCreator;
import org.nd4j.shade.jackson.annotation.JsonProperty;

import java.io.Serializable;

/**
 * The knobs every adapted module shares, whatever its layer type (PEFT's {@code LoraConfig} without the targeting):
 * {@code alpha} and the scaling mode (so the scale is {@code alpha/r} or {@code alpha/√r}), whether pruned entries
 * may grow back ({@link PruningMode}), how A is initialised, and dropout on the adapter path. The rank is not here:
 * it follows depth ({@link RankSchedule}). Immutable; {@link #builder()} validates every field. This is the one
 * place the defaults are written: layer builders, the BERT factory and {@link PriLoraConfig} all take an instance.
 *
 * @param alpha       LoRA alpha (PEFT's {@code lora_alpha}), finite and &gt; 0
 * @param scalingMode alpha/r or alpha/√r (rsLoRA)
 * @param pruningMode REGROW modules have no mask; PERSISTENT_MASK modules carry one that keeps pruned entries of A at zero
 * @param init        initialisation of A (B always starts at zero)
 * @param loraDropout dropout on the adapter path's input (PEFT's {@code lora_dropout}), in [0, 1)
 */
public record AdapterSettings(@JsonProperty("alpha") double alpha, @JsonProperty("scalingMode") ScalingMode scalingMode,
                              @JsonProperty("pruningMode") PruningMode pruningMode, @JsonProperty("init") AdapterInit init,
                              @JsonProperty("loraDropout") double loraDropout) implements Serializable {

    private static final AdapterSettings DEFAULTS = builder().build();

    @JsonCreator
    public AdapterSettings {
        if (!(alpha > 0) || Double.isInfinite(alpha)) {
            throw new IllegalArgumentException("alpha: expected a finite value > 0, got " + alpha);
        }
        if (scalingMode == null) {
            throw new IllegalArgumentException("scalingMode: expected ALPHA_OVER_R or ALPHA_OVER_SQRT_R, got null");
        }
        if (pruningMode == null) {
            throw new IllegalArgumentException("pruningMode: expected REGROW or PERSISTENT_MASK, got null");
        }
        if (init == null) {
            throw new IllegalArgumentException("init: expected KAIMING_UNIFORM or GAUSSIAN, got null");
        }
        if (!(loraDropout >= 0 && loraDropout < 1)) {
            throw new IllegalArgumentException("loraDropout: expected a value in [0, 1), got " + loraDropout);
        }
    }

    /** alpha 16, alpha/r, REGROW, Kaiming-uniform A, no adapter dropout. */
    public static AdapterSettings defaults() {
        return DEFAULTS;
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        return new Builder().alpha(alpha).scalingMode(scalingMode).pruningMode(pruningMode).init(init).loraDropout(loraDropout);
    }

    /** Whether modules carry a persistent mask parameter. */
    public boolean hasMask() {
        return pruningMode == PruningMode.PERSISTENT_MASK;
    }

    /** The LoRA scale {@code s} of a module of rank {@code r}. */
    public double scale(int r) {
        return scalingMode.scale(alpha, r);
    }

    @Override
    public String toString() {
        return "alpha=" + alpha + ", scaling=" + scalingMode + ", pruningMode=" + pruningMode + ", init=" + init
                + ", loraDropout=" + loraDropout;
    }

    /** Builder for {@link AdapterSettings}; {@link #build()} validates every field and names the bad one. */
    public static final class Builder {
        private double alpha = 16;
        private ScalingMode scalingMode = ScalingMode.ALPHA_OVER_R;
        private PruningMode pruningMode = PruningMode.REGROW;
        private AdapterInit init = AdapterInit.KAIMING_UNIFORM;
        private double loraDropout = 0.0;

        private Builder() {
        }

        /** LoRA alpha, finite and &gt; 0 (default 16). */
        public Builder alpha(double alpha) {
            this.alpha = alpha;
            return this;
        }

        /** alpha/r (default) or alpha/√r (rsLoRA). */
        public Builder scalingMode(ScalingMode m) {
            this.scalingMode = m;
            return this;
        }

        /** REGROW (default: the paper's temporary magnitude) or PERSISTENT_MASK. */
        public Builder pruningMode(PruningMode m) {
            this.pruningMode = m;
            return this;
        }

        /** Initialisation of A (default Kaiming-uniform, PEFT's); B always starts at zero. */
        public Builder init(AdapterInit init) {
            this.init = init;
            return this;
        }

        /** Dropout on the adapter path's input, in [0, 1) (default 0; dense layers only). */
        public Builder loraDropout(double p) {
            this.loraDropout = p;
            return this;
        }

        public AdapterSettings build() {
            return new AdapterSettings(alpha, scalingMode, pruningMode, init, loraDropout);
        }
    }
}
