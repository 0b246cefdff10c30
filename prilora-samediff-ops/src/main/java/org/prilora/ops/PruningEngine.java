package org.prilora.ops;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.config.NonFinitePolicy;
import org.prilora.config.PruningSchedule;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.Serializable;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The statistics-and-pruning core of PRILoRA training, shared by the DL4J and the SameDiff listeners: the NaN policy,
 * the EMA fold of each batch's input norms into x̄, the persistent masks, pruning on the schedule's steps, and the
 * counters. The listeners only find the modules and the batch norms in their framework and call, per optimizer step:
 * <ol>
 *   <li>{@link #admit} for each module's batch norms as soon as they are known (before any update), then
 *       {@link #fold} with all of them;</li>
 *   <li>{@link #afterUpdate} once the optimizer has changed A.</li>
 * </ol>
 *
 * <p>PERSISTENT_MASK has one meaning in every path: after each optimizer step {@code A ← A⊙M}, so a pruned entry of A
 * stays exactly zero even when the optimizer's momentum would move it (the forward pass uses {@code A⊙M} anyway, so
 * outputs are the same either way; the stored A is what differs). Steps are 1-based optimizer steps. One instance
 * serves one training loop at a time.
 */
public final class PruningEngine implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final Logger log = LoggerFactory.getLogger(PruningEngine.class);

    private final PruningSchedule schedule;
    private final NonFinitePolicy nonFinitePolicy;
    private final Set<String> warnedNoOp = new HashSet<>();
    private long skippedBatches;
    private long pruningStepsDone;
    private long lastPrunedStep = -1;

    public PruningEngine(PruningSchedule schedule, NonFinitePolicy nonFinitePolicy) {
        this.schedule = Objects.requireNonNull(schedule, "schedule");
        this.nonFinitePolicy = Objects.requireNonNull(nonFinitePolicy, "nonFinitePolicy");
    }

    public PruningSchedule schedule() {
        return schedule;
    }

    public NonFinitePolicy nonFinitePolicy() {
        return nonFinitePolicy;
    }

    /**
     * Checks one module's batch norms before anything changes. Finite: returns true. Not finite: under
     * {@link NonFinitePolicy#FAIL} throws {@link NonFiniteInputException} naming {@code where} and the step; under
     * {@link NonFinitePolicy#SKIP_STATISTICS} counts the batch as skipped, logs it and returns false, and the caller
     * leaves the whole batch out of the statistics (calling admit no more for it).
     *
     * @param where what the message names, e.g. {@code "the input of module 'encoder.layer.0.attention.self.query'"}
     */
    public boolean admit(long step, String where, INDArray batchNorms) {
        // Norms are >= 0, so the sum is finite exactly when every entry is.
        if (Double.isFinite(batchNorms.sumNumber().doubleValue())) {
            return true;
        }
        if (nonFinitePolicy == NonFinitePolicy.FAIL) {
            throw new NonFiniteInputException("PRILoRA: " + where + " holds NaN or infinity at step " + step
                    + "; the batch was rejected before the optimizer step (parameters, statistics and masks unchanged)");
        }
        skippedBatches++;
        log.warn("PRILoRA: {} holds NaN or infinity at step {}; batch left out of the statistics ({} so far)",
                where, step, skippedBatches);
        return false;
    }

    /**
     * Folds one admitted batch into x̄ of every module that has norms in {@code batchNorms} (keyed by
     * {@link ModuleState#name()}; a module without an entry did not run and keeps its statistics).
     */
    public void fold(List<ModuleState> modules, Map<String, INDArray> batchNorms) {
        for (ModuleState m : modules) {
            INDArray n = batchNorms.get(m.name());
            if (n != null) {
                InputNormStats.wrap(m.stats(), schedule.emaBeta()).updateFromBatchNorms(n);
            }
        }
    }

    /** After the optimizer step {@code step}: re-applies persistent masks, then prunes if it is a pruning step. */
    public void afterUpdate(long step, List<ModuleState> modules) {
        for (ModuleState m : modules) {
            if (m.maskOrNull() != null) {
                m.a().muli(m.maskOrNull());
            }
        }
        if (!schedule.isPruningStep(step)) {
            return;
        }
        for (ModuleState m : modules) {
            InputNormStats stats = InputNormStats.wrap(m.stats(), schedule.emaBeta());
            if (!stats.isInitialized()) {
                continue; // no statistics yet: nothing to score with
            }
            if (schedule.prunedPerRow(m.a().size(1)) == 0 && warnedNoOp.add(m.name())) {
                log.warn("PRILoRA: module '{}' has nIn = {}, so pruning fraction {} removes floor({} * {}) = 0 entries per"
                        + " row: its A is never pruned", m.name(), m.a().size(1), schedule.fraction(), schedule.fraction(), m.a().size(1));
            }
            PriLoraPruner.prune(m.a(), stats.norms(), schedule.fraction(), m.maskOrNull());
        }
        pruningStepsDone++;
        lastPrunedStep = step;
    }

    /**
     * What the engine has done so far.
     *
     * @param skippedBatches   batches left out of the statistics under {@link NonFinitePolicy#SKIP_STATISTICS}
     * @param pruningStepsDone pruning steps run
     * @param lastPrunedStep   the last step that pruned, or -1
     */
    public record Progress(long skippedBatches, long pruningStepsDone, long lastPrunedStep) {
        /** Before any step. */
        public static final Progress NONE = new Progress(0, 0, -1);
    }

    /** The counters so far. */
    public Progress progress() {
        return new Progress(skippedBatches, pruningStepsDone, lastPrunedStep);
    }

    /** Modules warned about because the fraction prunes nothing in them. */
    public Set<String> modulesPrunedByNothing() {
        return Set.copyOf(warnedNoOp);
    }
}
