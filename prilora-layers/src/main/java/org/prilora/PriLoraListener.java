package org.prilora;

import org.prilora.config.NonFinitePolicy;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.optimize.api.BaseTrainingListener;
import org.deeplearning4j.optimize.solvers.BaseOptimizer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.ops.LoraLinear;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.AdapterStatsSource;
import org.prilora.layers.PriLoraLayer;
import org.prilora.ops.PriLoraPruner;
import org.prilora.config.PruningMode;
import org.prilora.config.PruningSchedule;
import org.prilora.ops.InputNormStats;
import org.prilora.ops.NonFiniteInputException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The PRILoRA training listener for {@link MultiLayerNetwork} and {@link ComputationGraph}.
 *
 * <p>After each batch's gradients are computed (before the optimizer step) it folds the input norms
 * that every PRILoRA layer measured in its forward pass into that projection's EMA x̄ (stored in the
 * layer's {@code xnorm} parameter, so it is saved with the model). After the optimizer step of every
 * pruning step of the {@link PruningSchedule} it prunes each A by {@code |A| ⊙ x̄}. Steps are the model's
 * optimizer iteration count + 1, which DL4J saves with the model, so a restored model resumes the schedule.
 *
 * <pre>{@code
 * net.setListeners(new PriLoraListener(PruningSchedule.builder().fraction(0.25).interval(10).build()));
 * }</pre>
 *
 * <p>One listener instance serves one training loop at a time.
 */
public class PriLoraListener extends BaseTrainingListener implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final Logger log = LoggerFactory.getLogger(PriLoraListener.class);

    private final PruningSchedule schedule;
    private final NonFinitePolicy nonFinitePolicy;
    private long skippedBatches;
    private long pruningStepsDone;
    private long lastPrunedStep = -1;

    public PriLoraListener(PruningSchedule schedule) {
        this(schedule, NonFinitePolicy.FAIL);
    }

    public PriLoraListener(PruningSchedule schedule, NonFinitePolicy nonFinitePolicy) {
        this.schedule = Objects.requireNonNull(schedule, "schedule");
        this.nonFinitePolicy = Objects.requireNonNull(nonFinitePolicy, "nonFinitePolicy");
    }

    public PruningSchedule getSchedule() {
        return schedule;
    }

    /** Batches left out of the statistics under {@link NonFinitePolicy#SKIP_STATISTICS}. */
    public long getSkippedBatches() {
        return skippedBatches;
    }

    /** Pruning steps this listener has run. */
    public long getPruningStepsDone() {
        return pruningStepsDone;
    }

    /** The last step that pruned, or -1. */
    public long getLastPrunedStep() {
        return lastPrunedStep;
    }

    @Override
    public void onGradientCalculation(Model model) {
        long step = BaseOptimizer.getIterationCount(model) + 1L;
        List<Layer> layers = adaptedLayers(model);
        // Check every layer's batch first, so a bad batch changes no statistics at all.
        List<Map<String, INDArray>> pending = new ArrayList<>();
        for (Layer l : layers) {
            Map<String, INDArray> norms = l instanceof AdapterStatsSource ? ((AdapterStatsSource) l).takeBatchNorms() : Map.of();
            pending.add(norms);
            for (Map.Entry<String, INDArray> e : norms.entrySet()) {
                if (!Double.isFinite(e.getValue().sumNumber().doubleValue())) {
                    String where = qualified(l, e.getKey());
                    if (nonFinitePolicy == NonFinitePolicy.FAIL) {
                        throw new NonFiniteInputException("PRILoRA: the input of " + where + " holds NaN or infinity at step "
                                + step + "; the batch was rejected before the optimizer step (model, statistics and masks unchanged)");
                    }
                    skippedBatches++;
                    log.warn("PRILoRA: input of {} holds NaN or infinity at step {}; batch left out of the statistics ({} so far)",
                            where, step, skippedBatches);
                    return;
                }
            }
        }
        for (int i = 0; i < layers.size(); i++) {
            Layer l = layers.get(i);
            PriLoraLayer conf = (PriLoraLayer) l.conf().getLayer();
            for (AdapterModule s : conf.adapterModules()) {
                INDArray n = pending.get(i).get(s.name());
                if (n != null) {
                    InputNormStats.wrap(l.getParam(s.statsKey()), schedule.emaBeta()).updateFromBatchNorms(n);
                }
            }
        }
    }

    @Override
    public void iterationDone(Model model, int iteration, int epoch) {
        long step = iteration + 1L;
        if (!schedule.isPruningStep(step)) {
            return;
        }
        for (Layer l : adaptedLayers(model)) {
            PriLoraLayer conf = (PriLoraLayer) l.conf().getLayer();
            for (AdapterModule s : conf.adapterModules()) {
                InputNormStats stats = InputNormStats.wrap(l.getParam(s.statsKey()), schedule.emaBeta());
                if (!stats.isInitialized()) {
                    continue; // no statistics yet: nothing to score with
                }
                INDArray mask = conf.getPruningMode() == PruningMode.PERSISTENT_MASK && s.maskKey() != null ? l.getParam(s.maskKey()) : null;
                PriLoraPruner.prune(l.getParam(s.aKey()), stats.norms(), schedule.fraction(), mask);
            }
        }
        pruningStepsDone++;
        lastPrunedStep = step;
    }

    /** Figures of every adapted projection of {@code model}, bottom to top, for logging or charts. */
    public static List<ModuleFigures> figures(Model model) {
        List<ModuleFigures> out = new ArrayList<>();
        for (Layer l : adaptedLayers(model)) {
            PriLoraLayer conf = (PriLoraLayer) l.conf().getLayer();
            for (AdapterModule s : conf.adapterModules()) {
                INDArray aEff = LoraLinear.effectiveA(l.getParam(s.aKey()), s.maskKey() == null ? null : l.getParam(s.maskKey()));
                double zeros = aEff.length() - Nd4j.getExecutioner().exec(
                        new org.nd4j.linalg.api.ops.impl.reduce.longer.CountNonZero(aEff)).getDouble(0);
                InputNormStats st = InputNormStats.wrap(l.getParam(s.statsKey()), 0.0);
                INDArray x = st.norms();
                out.add(new ModuleFigures(conf.getLayerName(), s.name(), s.rank(), s.nIn(), s.nOut(), zeros / aEff.length(),
                        x.meanNumber().doubleValue(), x.minNumber().doubleValue(), x.maxNumber().doubleValue(), st.batchesSeen()));
            }
        }
        return out;
    }

    /** The runtime layers of a network whose configuration is a {@link PriLoraLayer}, in network order. */
    public static List<Layer> adaptedLayers(Model model) {
        Layer[] all;
        if (model instanceof MultiLayerNetwork) {
            all = ((MultiLayerNetwork) model).getLayers();
        } else if (model instanceof ComputationGraph) {
            all = ((ComputationGraph) model).getLayers();
        } else {
            throw new IllegalArgumentException("model: expected a MultiLayerNetwork or ComputationGraph, got "
                    + (model == null ? "null" : model.getClass().getName()));
        }
        List<Layer> out = new ArrayList<>();
        for (Layer l : Arrays.asList(all)) {
            if (l.conf() != null && l.conf().getLayer() instanceof PriLoraLayer) {
                out.add(l);
            }
        }
        return out;
    }

    private static String qualified(Layer l, String site) {
        String name = l.conf().getLayer().getLayerName();
        return "layer '" + (name == null ? "#" + l.getIndex() : name) + "'" + (site.isEmpty() ? "" : " (" + site + ")");
    }

    @Override
    public String toString() {
        return "PriLoraListener{" + schedule + ", nonFinitePolicy=" + nonFinitePolicy + "}";
    }

}
