package org.prilora;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.optimize.api.BaseTrainingListener;
import org.deeplearning4j.optimize.solvers.BaseOptimizer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.config.NonFinitePolicy;
import org.prilora.config.PruningSchedule;
import org.prilora.layers.AdapterStatsSource;
import org.prilora.ops.ModuleState;
import org.prilora.ops.PruningEngine;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The PRILoRA training listener for {@link MultiLayerNetwork} and {@link ComputationGraph}, a DL4J
 * {@code TrainingListener} on the statistics-and-pruning core ({@link PruningEngine}).
 *
 * <p>After each batch's gradients are computed (before the optimizer step) it folds the input norms that every
 * PRILoRA layer measured in its forward pass into that module's EMA x̄ (stored in the layer's {@code xnorm}
 * parameter, so it is saved with the model). After the optimizer step it re-applies persistent masks
 * ({@code A ← A⊙M}) and, on every pruning step of the {@link PruningSchedule}, prunes each A by {@code |A| ⊙ x̄}.
 * Steps are the model's optimizer iteration count + 1, which DL4J saves with the model, so a restored model resumes
 * the schedule. A batch whose adapter inputs are not finite is handled by the {@link NonFinitePolicy}; modules are
 * checked bottom to top, so the first non-finite one is the one named.
 *
 * <pre>{@code
 * net.setListeners(new PriLoraListener(PruningSchedule.builder().fraction(0.25).interval(10).build()));
 * }</pre>
 *
 * <p>One listener instance serves one training loop at a time.
 */
public class PriLoraListener extends BaseTrainingListener implements Serializable {
    private static final long serialVersionUID = 1L;

    private final PruningEngine engine;

    public PriLoraListener(PruningSchedule schedule) {
        this(schedule, NonFinitePolicy.FAIL);
    }

    public PriLoraListener(PruningSchedule schedule, NonFinitePolicy nonFinitePolicy) {
        this.engine = new PruningEngine(schedule, nonFinitePolicy);
    }

    public PruningSchedule getSchedule() {
        return engine.schedule();
    }

    /** What happens to a batch whose adapter inputs hold NaN or infinity. */
    public NonFinitePolicy getNonFinitePolicy() {
        return engine.nonFinitePolicy();
    }

    /** Batches left out of the statistics under {@link NonFinitePolicy#SKIP_STATISTICS}. */
    public long getSkippedBatches() {
        return engine.progress().skippedBatches();
    }

    /** Pruning steps this listener has run. */
    public long getPruningStepsDone() {
        return engine.progress().pruningStepsDone();
    }

    /** The last step that pruned, or -1. */
    public long getLastPrunedStep() {
        return engine.progress().lastPrunedStep();
    }

    @Override
    public void onGradientCalculation(Model model) {
        long step = BaseOptimizer.getIterationCount(model) + 1L;
        List<NetworkModules.Entry> modules = NetworkModules.modules(model);
        Map<Layer, Map<String, INDArray>> measured = new IdentityHashMap<>();   // DL4J layers hash their parameters
        Map<String, INDArray> norms = new LinkedHashMap<>();
        for (NetworkModules.Entry e : modules) {
            Map<String, INDArray> byModule = measured.computeIfAbsent(e.runtime(),
                    l -> l instanceof AdapterStatsSource ? ((AdapterStatsSource) l).takeBatchNorms() : Map.of());
            INDArray n = byModule.get(e.module().name());
            if (n != null) {
                norms.put(e.name(), n);
            }
        }
        for (Map.Entry<String, INDArray> n : norms.entrySet()) {
            if (!engine.admit(step, "the input of module '" + n.getKey() + "'", n.getValue())) {
                return;
            }
        }
        engine.fold(states(modules), norms);
    }

    @Override
    public void iterationDone(Model model, int iteration, int epoch) {
        engine.afterUpdate(iteration + 1L, states(NetworkModules.modules(model)));
    }

    private static List<ModuleState> states(List<NetworkModules.Entry> modules) {
        List<ModuleState> out = new ArrayList<>(modules.size());
        for (NetworkModules.Entry e : modules) {
            out.add(e.state());
        }
        return out;
    }

    /** Figures of every adapted module of {@code model}, bottom to top, for logging or charts. */
    public static List<ModuleFigures> figures(Model model) {
        List<ModuleFigures> out = new ArrayList<>();
        for (NetworkModules.Entry e : NetworkModules.modules(model)) {
            out.add(ModuleFigures.of(e.conf().getLayerName(), e.module(), e.state()));
        }
        return out;
    }

    /** The runtime layers of a network whose configuration is a PRILoRA layer, in network order. */
    public static List<Layer> adaptedLayers(Model model) {
        List<Layer> out = new ArrayList<>();
        for (Layer l : NetworkModules.layers(model).values()) {
            if (NetworkModules.isAdapted(l.conf().getLayer())) {
                out.add(l);
            }
        }
        return out;
    }

    @Override
    public String toString() {
        return "PriLoraListener{" + engine.schedule() + ", nonFinitePolicy=" + engine.nonFinitePolicy() + "}";
    }
}
