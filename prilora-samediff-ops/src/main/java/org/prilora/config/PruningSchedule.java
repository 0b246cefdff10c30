package org.prilora.config;

import org.prilora.ops.PriLoraPruner;

import java.io.Serializable;

/**
 * When and how much of each adapter's A matrix is pruned, and the EMA coefficient of the input
 * statistics that score it. Immutable; build with {@link #builder()}. Whether pruned entries may grow back is a
 * property of the adapters ({@link AdapterSettings#pruningMode()}), not of the schedule.
 *
 * <p>Steps count optimizer iterations starting at 1 for the first update. A step {@code t} prunes when
 * {@code startStep <= t <= endStep} and {@code (t - startStep) % interval == 0}.
 *
 * @param fraction  fraction γ of each row of A pruned at every pruning step, in [0, 1)
 * @param interval  optimizer steps between pruning steps, at least 1
 * @param startStep first step that may prune (1-based, at least 1)
 * @param endStep   last step that may prune (inclusive, at least startStep)
 * @param emaBeta   EMA coefficient β of the input-norm statistics, in [0, 1)
 */
public record PruningSchedule(double fraction, int interval, long startStep, long endStep, double emaBeta) implements Serializable {

    /** Defaults: this project's choice, not the paper's values (which could not be read); the main job sets its own from an ablation. */
    public static final double DEFAULT_FRACTION = 0.25;
    public static final int DEFAULT_INTERVAL = 10;
    public static final long DEFAULT_START_STEP = 10;
    public static final long DEFAULT_END_STEP = Long.MAX_VALUE;
    public static final double DEFAULT_EMA_BETA = 0.9;

    public PruningSchedule {
        if (!(fraction >= 0.0 && fraction < 1.0)) {
            throw new IllegalArgumentException("fraction: expected a value in [0, 1), got " + fraction);
        }
        if (interval < 1) {
            throw new IllegalArgumentException("interval: expected >= 1, got " + interval);
        }
        if (startStep < 1) {
            throw new IllegalArgumentException("startStep: expected >= 1, got " + startStep);
        }
        if (endStep < startStep) {
            throw new IllegalArgumentException("endStep: expected >= startStep (" + startStep + "), got " + endStep);
        }
        if (!(emaBeta >= 0.0 && emaBeta < 1.0)) {
            throw new IllegalArgumentException("emaBeta: expected a value in [0, 1), got " + emaBeta);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A schedule that never prunes (plain LoRA still collects statistics). */
    public static PruningSchedule none() {
        return builder().fraction(0.0).build();
    }

    /** A builder holding this schedule's values. */
    public Builder toBuilder() {
        return new Builder().fraction(fraction).interval(interval).startStep(startStep).endStep(endStep)
                .emaBeta(emaBeta);
    }

    /** Whether optimizer step {@code step} (1-based) prunes. */
    public boolean isPruningStep(long step) {
        if (fraction == 0.0 || step < startStep || step > endStep) {
            return false;
        }
        return (step - startStep) % interval == 0;
    }

    /** Number of entries pruned in every row of an A with {@code nIn} columns: floor(fraction * nIn). */
    public int prunedPerRow(long nIn) {
        return PriLoraPruner.prunedPerRow(fraction, nIn);
    }

    @Override
    public String toString() {
        return "PruningSchedule{fraction=" + fraction + ", interval=" + interval + ", startStep=" + startStep
                + ", endStep=" + (endStep == Long.MAX_VALUE ? "end" : Long.toString(endStep)) + ", emaBeta=" + emaBeta + "}";
    }

    /** Builder for {@link PruningSchedule}; {@link #build()} validates every field. */
    public static final class Builder {
        private double fraction = DEFAULT_FRACTION;
        private int interval = DEFAULT_INTERVAL;
        private long startStep = DEFAULT_START_STEP;
        private long endStep = DEFAULT_END_STEP;
        private double emaBeta = DEFAULT_EMA_BETA;

        /** Fraction γ of each row of A pruned at every pruning step, in [0, 1). */
        public Builder fraction(double fraction) {
            this.fraction = fraction;
            return this;
        }

        /** Optimizer steps between pruning steps, at least 1. */
        public Builder interval(int interval) {
            this.interval = interval;
            return this;
        }

        /** First step that may prune (1-based, at least 1). */
        public Builder startStep(long startStep) {
            this.startStep = startStep;
            return this;
        }

        /** Last step that may prune (inclusive, at least startStep). */
        public Builder endStep(long endStep) {
            this.endStep = endStep;
            return this;
        }

        /** EMA coefficient β of the input-norm statistics, in [0, 1); 0 keeps only the latest batch. */
        public Builder emaBeta(double emaBeta) {
            this.emaBeta = emaBeta;
            return this;
        }

        public PruningSchedule build() {
            return new PruningSchedule(fraction, interval, startStep, endStep, emaBeta);
        }
    }
}
