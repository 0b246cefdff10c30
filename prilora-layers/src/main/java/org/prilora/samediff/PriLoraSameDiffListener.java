package org.prilora.samediff;

import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.BaseListener;
import org.nd4j.autodiff.listeners.Loss;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.TrainingConfig;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.prilora.config.NonFinitePolicy;
import org.prilora.ops.ModuleState;
import org.prilora.ops.PruningEngine;
import org.prilora.config.PruningSchedule;
import org.prilora.ops.InputNormStats;
import org.prilora.ops.NonFiniteInputException;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The PRILoRA training listener for SameDiff graphs adapted by {@link SameDiffPriLora#inject} and trained with
 * {@code sd.fit}: it keeps every adapted multiplication's input statistics x̄ and prunes A on the
 * {@link PruningSchedule}'s steps through the same statistics-and-pruning core as the DL4J
 * {@link org.prilora.PriLoraListener} ({@link PruningEngine}), so both paths train the same model alike.
 *
 * <h2>When things happen in a SameDiff training iteration</h2>
 * SameDiff ({@code TrainingSession}) applies each VARIABLE's update as soon as its gradient has been computed,
 * in the middle of the backward pass, calling {@code preUpdate} just before subtracting it; {@code iterationDone}
 * runs after all updates of the iteration. So:
 * <ol>
 *   <li>{@code iterationStart} (before any op runs): inputs that are placeholders are measured from the batch
 *       (the TrainingConfig's feature or label mapping says which array), CONSTANT/VARIABLE inputs from the graph;</li>
 *   <li>{@code activationAvailable} (forward pass): inputs computed by ops are measured as they are produced.
 *       Measuring means the per-feature L2 norms of the batch ({@code InputNormStats.batchNorms}), reduced at once
 *       (the activation array is recycled by SameDiff afterwards). A batch holding NaN or infinity is rejected
 *       here with a {@link NonFiniteInputException} under {@link NonFinitePolicy#FAIL}: the loss, and hence every
 *       gradient and update, depends on these forward values, so no parameter has changed yet, and no statistic
 *       or mask either;</li>
 *   <li>{@code iterationDone} (after the updates): the batch's norms are folded into each module's x̄ (the state
 *       constant {@code <W>_lora_state}), persistent masks are re-applied ({@code A ← A⊙M}) and, on a pruning step,
 *       A (and the mask) are pruned by {@code |A| ⊙ x̄}. Folding here rather than before the updates changes
 *       nothing: statistics are read only by pruning, which comes after both, exactly as in the DL4J listener.</li>
 * </ol>
 * The step is SameDiff's iteration count + 1 ({@code at.iteration()} is 0 in the first iteration); the count is
 * part of the TrainingConfig that {@code sd.save} writes, so a restored graph resumes the schedule. Statistics,
 * masks and A live in the graph, so {@code sd.save}/{@code SameDiff.load} keep them.
 *
 * <p>Inputs must be 2-D {@code [N, nIn]} (what {@code xw_plus_b} accepts). Control-flow loops that compute an
 * adapted input more than once per iteration are not supported. Only {@link Operation#TRAINING} is observed,
 * so inference and evaluation never change the statistics. One instance serves one training loop at a time.
 */
public class PriLoraSameDiffListener extends BaseListener {

    private final PruningSchedule scheduleOverride;
    private final NonFinitePolicy nonFinitePolicy;
    private PruningEngine engine;

    // Bound graph (the one fit was called on) and what was read from it.
    private SameDiff graph;
    private List<GraphModule> sites;
    private Map<String, List<GraphModule>> sitesByInput;

    // Current iteration.
    private final Map<String, INDArray> pendingNorms = new HashMap<>();
    private boolean skipBatch;
    private long step;

    /** Uses the pruning schedule of the configuration stored in the graph at injection, and fails on NaN/Inf. */
    public PriLoraSameDiffListener() {
        this(null, NonFinitePolicy.FAIL);
    }

    /**
     * @param scheduleOverride schedule to use instead of the graph's, or null
     * @param nonFinitePolicy  what to do with a batch whose adapted inputs hold NaN or infinity
     */
    public PriLoraSameDiffListener(PruningSchedule scheduleOverride, NonFinitePolicy nonFinitePolicy) {
        this.scheduleOverride = scheduleOverride;
        this.nonFinitePolicy = Objects.requireNonNull(nonFinitePolicy, "nonFinitePolicy");
    }

    @Override
    public boolean isActive(Operation operation) {
        return operation == Operation.TRAINING;
    }

    /** Batches left out of the statistics under {@link NonFinitePolicy#SKIP_STATISTICS}. */
    public long getSkippedBatches() {
        return progress().skippedBatches();
    }

    /** Pruning steps this listener has run. */
    public long getPruningStepsDone() {
        return progress().pruningStepsDone();
    }

    /** The last step that pruned, or -1. */
    public long getLastPrunedStep() {
        return progress().lastPrunedStep();
    }

    private PruningEngine.Progress progress() {
        return engine == null ? PruningEngine.Progress.NONE : engine.progress();
    }

    /** The schedule in use (null before the first iteration). */
    public PruningSchedule getSchedule() {
        return engine == null ? null : engine.schedule();
    }

    private void bind(SameDiff sd) {
        if (sd == graph) {
            return;
        }
        InjectionReport r = SameDiffPriLora.report(sd);
        Map<String, List<GraphModule>> byInput = new LinkedHashMap<>();
        for (GraphModule m : r.modules()) {
            byInput.computeIfAbsent(m.inputName(), k -> new ArrayList<>()).add(m);
        }
        engine = new PruningEngine(scheduleOverride == null ? r.config().pruning() : scheduleOverride, nonFinitePolicy);
        graph = sd;
        sites = r.modules();
        sitesByInput = byInput;
    }

    @Override
    public void iterationStart(SameDiff sd, At at, MultiDataSet data, long etlMs) {
        bind(sd);
        pendingNorms.clear();
        skipBatch = false;
        step = at.iteration() + 1L;
        TrainingConfig tc = sd.getTrainingConfig();
        for (Map.Entry<String, List<GraphModule>> e : sitesByInput.entrySet()) {
            String name = e.getKey();
            SDVariable v = sd.getVariable(name);
            if (v == null) {
                throw new IllegalStateException("PRILoRA: input '" + name + "' of an adapted weight is not in the graph being trained");
            }
            if (v.getVariableType() == VariableType.PLACEHOLDER) {
                measure(name, placeholderValue(tc, data, name));
            } else if (v.getVariableType() == VariableType.CONSTANT || v.getVariableType() == VariableType.VARIABLE) {
                measure(name, v.getArr());
            }
        }
    }

    private static INDArray placeholderValue(TrainingConfig tc, MultiDataSet data, String name) {
        int i = tc.getDataSetFeatureMapping() == null ? -1 : tc.getDataSetFeatureMapping().indexOf(name);
        if (i >= 0) {
            return data.getFeatures(i);
        }
        int j = tc.getDataSetLabelMapping() == null ? -1 : tc.getDataSetLabelMapping().indexOf(name);
        if (j >= 0) {
            return data.getLabels(j);
        }
        throw new IllegalStateException("PRILoRA: placeholder '" + name + "' feeds an adapted weight but is in neither the"
                + " TrainingConfig's dataSetFeatureMapping " + tc.getDataSetFeatureMapping() + " nor its dataSetLabelMapping "
                + tc.getDataSetLabelMapping() + ", so its batch value is unknown");
    }

    @Override
    public void activationAvailable(SameDiff sd, At at, MultiDataSet batch, SameDiffOp op, String varName,
                                    INDArray activation) {
        if (sitesByInput != null && sitesByInput.containsKey(varName)) {
            measure(varName, activation);
        }
    }

    private void measure(String inputName, INDArray activation) {
        if (skipBatch) {
            return;
        }
        if (pendingNorms.containsKey(inputName)) {
            throw new IllegalStateException("PRILoRA: input '" + inputName + "' was computed twice in step " + step
                    + "; adapted multiplications inside control-flow loops are not supported");
        }
        List<GraphModule> s = sitesByInput.get(inputName);
        // A c-ordered copy first: outputs of some ND4J M2.1 ops (xw_plus_b, and ops that inherit its layout) carry
        // order flag 'f' with c strides, which Java-side ops such as mul misread.
        INDArray norms = InputNormStats.batchNorms(activation.dup('c'), null, null, s.get(0).nIn()).detach();
        String where = "input '" + inputName + "' of " + s.stream().map(GraphModule::weightName).toList();
        boolean admitted;
        try {
            admitted = engine.admit(step, where, norms);   // in the forward pass: before any update
        } catch (NonFiniteInputException e) {
            pendingNorms.clear();
            throw e;
        }
        if (!admitted) {
            skipBatch = true;
            pendingNorms.clear();
            return;
        }
        pendingNorms.put(inputName, norms);
    }

    @Override
    public void iterationDone(SameDiff sd, At at, MultiDataSet dataSet, Loss loss) {
        if (graph == null) {
            return;
        }
        if (!skipBatch) {
            Map<String, INDArray> byModule = new HashMap<>();
            for (Map.Entry<String, List<GraphModule>> e : sitesByInput.entrySet()) {
                INDArray n = pendingNorms.get(e.getKey());
                if (n == null) {
                    throw new IllegalStateException("PRILoRA: input '" + e.getKey() + "' of an adapted weight was not computed in step "
                            + step + "; is the listener attached to the graph that is being trained?");
                }
                for (GraphModule m : e.getValue()) {
                    byModule.put(m.moduleName(), n);
                }
            }
            engine.fold(states(), byModule);
        }
        pendingNorms.clear();
        engine.afterUpdate(step, states());
    }

    /** The modules' live arrays, fetched each step (SameDiff may re-associate a variable's array). */
    private List<ModuleState> states() {
        List<ModuleState> out = new ArrayList<>(sites.size());
        for (GraphModule m : sites) {
            out.add(new ModuleState(m.moduleName(), m.a(graph), m.mask(graph), m.inputNormState(graph)));
        }
        return out;
    }

    @Override
    public String toString() {
        return "PriLoraSameDiffListener{" + (engine != null ? engine.schedule() : scheduleOverride == null ? "graph's schedule"
                : scheduleOverride) + ", nonFinitePolicy=" + nonFinitePolicy + "}";
    }
}
