package org.prilora.parallel;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.gradient.DefaultGradient;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.updater.BaseMultiLayerUpdater;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.deeplearning4j.optimize.api.TrainingListener;
import org.deeplearning4j.optimize.solvers.BaseOptimizer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.PriLoraListener;
import org.prilora.ops.ModuleState;
import org.prilora.ops.PruningEngine;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The driver side of synchronous data-parallel PRILoRA training. It holds the one network that is trained, DL4J's own
 * updater for it and the PRILoRA statistics-and-pruning core ({@link PruningEngine}), and turns the sum of all
 * shards' {@link ShardResult}s into exactly the step that {@code net.fit(globalBatch)} with a
 * {@link PriLoraListener} would take:
 * <ol>
 *   <li>x̄: the global per-feature norm is {@code sqrt(Σ shard sums of squares)}; it is checked by the NaN policy and
 *       folded into x̄ (before the update, as the listener does in {@code onGradientCalculation});</li>
 *   <li>the summed raw gradient goes into the network's flat gradient view and through
 *       {@code updater.update(gradient, iteration, epoch, globalBatchSize, …)}, which divides by the global batch
 *       size and applies Adam etc., then {@code params -= update}: DL4J's {@code StochasticGradientDescent} step;</li>
 *   <li>after the update: persistent masks re-applied and, on the schedule's steps, A pruned; the iteration count is
 *       incremented and constraints applied, as in DL4J.</li>
 * </ol>
 * Listeners on the network other than {@link PriLoraListener} get {@code iterationDone} after each step.
 */
public final class SyncDriver {
    private final Model net;
    private final ParamLayout layout;
    private final PruningEngine engine;
    private final BaseMultiLayerUpdater<?> updater;
    private final INDArray flatGradients;
    private final Gradient gradient;

    public SyncDriver(Model net, ParallelConfig config) {
        this.layout = ParamLayout.of(net);
        this.net = net;
        this.engine = new PruningEngine(config.resolveSchedule(net), config.resolveNonFinitePolicy(net));
        if (net instanceof MultiLayerNetwork) {
            MultiLayerNetwork mln = (MultiLayerNetwork) net;
            if (mln.getFlattenedGradients() == null) {
                mln.initGradientsView();
            }
            this.updater = (BaseMultiLayerUpdater<?>) mln.getUpdater(true);
            this.flatGradients = mln.getFlattenedGradients();
        } else {
            ComputationGraph g = (ComputationGraph) net;
            if (g.getFlattenedGradients() == null) {
                g.initGradientsView();
            }
            this.updater = g.getUpdater(true);
            this.flatGradients = g.getFlattenedGradients();
        }
        this.gradient = keyedGradient();
    }

    /** The flat gradient view with DL4J's per-parameter keys ({@code layer_param}), as a fit would pass it. */
    private Gradient keyedGradient() {
        DefaultGradient g = new DefaultGradient(flatGradients);
        boolean mln = net instanceof MultiLayerNetwork;
        for (Map.Entry<String, Layer> e : ParamLayout.layers(net).entrySet()) {
            Layer l = e.getValue();
            String prefix = mln ? String.valueOf(l.getIndex()) : e.getKey();
            INDArray view = l.getGradientsViewArray();
            if (view != null && l.numParams() > 0) {
                Map<String, INDArray> byKey = l.conf().getLayer().initializer().getGradientsFromFlattened(l.conf(), view);
                for (Map.Entry<String, INDArray> k : byKey.entrySet()) {
                    g.setGradientFor(prefix + "_" + k.getKey(), k.getValue());
                }
            }
        }
        return g;
    }

    /** The network being trained. */
    public Model network() {
        return net;
    }

    /** The parameter layout of the network. */
    public ParamLayout layout() {
        return layout;
    }

    /** The statistics-and-pruning core (its counters: {@code engine().progress()}). */
    public PruningEngine engine() {
        return engine;
    }

    /** The current trainable parameters and masks, to ship to the workers for the next step. */
    public FlatValues shippedParams() {
        return layout.packShipped(net);
    }

    /** The model's iteration count (optimizer steps taken). */
    public int iteration() {
        return BaseOptimizer.getIterationCount(net);
    }

    /** The model's epoch count. */
    public int epoch() {
        return BaseOptimizer.getEpochCount(net);
    }

    /** Ends an epoch: increments the epoch count, as {@code fit(iterator)} does. */
    public void endEpoch() {
        if (net instanceof MultiLayerNetwork) {
            ((MultiLayerNetwork) net).incrementEpochCount();
        } else {
            ((ComputationGraph) net).incrementEpochCount();
        }
    }

    /**
     * Applies one step from the sum of every shard's result. If the NaN policy rejects the batch
     * ({@code NonFiniteInputException}), nothing changes.
     */
    public StepResult apply(ShardResult total) {
        if (total.examples() == 0) {
            throw new IllegalArgumentException("total: the global batch has no examples");
        }
        int iteration = iteration();
        int epoch = epoch();
        long step = iteration + 1L;
        List<ModuleState> states = layout.states();
        Map<String, INDArray> norms = new LinkedHashMap<>();
        for (ModuleState s : states) {
            double[] sq = total.squaredNorms().get(s.name());
            if (sq != null) {
                double[] n = new double[sq.length];
                for (int j = 0; j < sq.length; j++) {
                    n[j] = Math.sqrt(sq[j]);
                }
                norms.put(s.name(), Nd4j.createFromArray(n).castTo(s.stats().dataType()));
            }
        }
        boolean admitted = true;
        for (Map.Entry<String, INDArray> n : norms.entrySet()) {
            if (!engine.admit(step, "the input of module '" + n.getKey() + "'", n.getValue())) {
                admitted = false;
                break;
            }
        }
        if (admitted) {
            engine.fold(states, norms);
        }
        flatGradients.assign(0);
        layout.scatterTrainable(flatGradients, total.gradient());
        updater.update(gradient, iteration, epoch, Math.toIntExact(total.examples()), LayerWorkspaceMgr.noWorkspaces());
        INDArray params = net.params();
        params.subi(flatGradients.reshape(params.shape()));
        double score = total.lossSum() / total.examples();
        long prunedBefore = engine.progress().pruningStepsDone();
        engine.afterUpdate(step, states);
        if (net instanceof MultiLayerNetwork) {
            ((MultiLayerNetwork) net).setScore(score);
        } else {
            ((ComputationGraph) net).setScore(score);
        }
        for (TrainingListener l : listeners()) {
            if (!(l instanceof PriLoraListener)) {
                l.iterationDone(net, iteration, epoch);
            }
        }
        BaseOptimizer.incrementIterationCount(net, 1);
        net.applyConstraints(iteration + 1, epoch);
        return new StepResult(step, total.examples(), score, engine.progress().pruningStepsDone() > prunedBefore, admitted);
    }

    private Collection<TrainingListener> listeners() {
        return net instanceof MultiLayerNetwork ? ((MultiLayerNetwork) net).getListeners()
                : ((ComputationGraph) net).getListeners();
    }
}
