package org.prilora.parallel;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.prilora.layers.AdapterStatsSource;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;

/**
 * The worker side of a synchronous step: a private copy of the network (frozen weights set once) that, given the
 * driver's trainable parameters and masks and one shard of the global batch, runs DL4J's own
 * {@code computeGradientAndScore} and returns a {@link ShardResult}. It never updates anything itself. One instance
 * is used by one thread at a time.
 */
public final class ShardWorker {
    private final Model net;
    private final ParamLayout layout;

    /** A worker on {@code replica}, which becomes the worker's own (its listeners are removed). */
    public ShardWorker(Model replica) {
        ParamLayout.flatParams(replica);
        this.net = replica;
        if (replica instanceof MultiLayerNetwork) {
            ((MultiLayerNetwork) replica).setListeners();
        } else {
            ((ComputationGraph) replica).setListeners();
        }
        this.layout = ParamLayout.of(replica);
    }

    /** The worker's network copy. */
    public Model network() {
        return net;
    }

    ParamLayout layout() {
        return layout;
    }

    /**
     * Gradient, loss sum and input-norm squares of one shard with the driver's current parameters.
     *
     * @param iteration the driver's iteration count (for iteration-dependent layer behaviour)
     * @param epoch     the driver's epoch count
     * @param shipped   the driver's trainable parameters and masks ({@code ParamLayout#packShipped})
     * @param shard     the shard's rows
     * @param where     describes row {@code r} of the shard for error messages
     * @param dataRow   the data index of row {@code r}
     * @param partition the shard's partition or worker index for {@link BadRowException}
     */
    public ShardResult compute(int iteration, int epoch, FlatValues shipped, MultiDataSet shard, IntFunction<String> where,
                               IntFunction<Long> dataRow, int partition) {
        int n = Batches.rows(shard);
        if (n == 0) {
            return ShardResult.empty();
        }
        Batches.requireFinite(shard, where, dataRow, partition);
        layout.unpackShipped(net, shipped);
        for (Layer l : layout.statsSources()) {
            ((AdapterStatsSource) l).takeBatchNorms();   // nothing stale from an earlier, failed computation
        }
        double score;
        INDArray gradients;
        if (net instanceof MultiLayerNetwork) {
            MultiLayerNetwork mln = (MultiLayerNetwork) net;
            if (shard.numFeatureArrays() != 1 || shard.numLabelsArrays() != 1) {
                throw new IllegalArgumentException("shard: a MultiLayerNetwork takes one input and one label array, got "
                        + shard.numFeatureArrays() + " and " + shard.numLabelsArrays());
            }
            mln.getLayerWiseConfigurations().setIterationCount(iteration);
            mln.getLayerWiseConfigurations().setEpochCount(epoch);
            mln.setInput(shard.getFeatures(0));
            mln.setLabels(shard.getLabels(0));
            mln.setLayerMaskArrays(shard.getFeaturesMaskArray(0), shard.getLabelsMaskArray(0));
            try {
                mln.computeGradientAndScore();
                score = mln.score();
                gradients = mln.getFlattenedGradients();
                return result(n, score, gradients);
            } finally {
                mln.clearLayerMaskArrays();
                mln.clear();
            }
        }
        ComputationGraph g = (ComputationGraph) net;
        g.getConfiguration().setIterationCount(iteration);
        g.getConfiguration().setEpochCount(epoch);
        g.setInputs(shard.getFeatures());
        g.setLabels(shard.getLabels());
        g.setLayerMaskArrays(shard.getFeaturesMaskArrays(), shard.getLabelsMaskArrays());
        try {
            g.computeGradientAndScore();
            score = g.score();
            gradients = g.getFlattenedGradients();
            return result(n, score, gradients);
        } finally {
            g.clearLayerMaskArrays();
            g.clear();
        }
    }

    private ShardResult result(int n, double score, INDArray gradients) {
        FlatValues grad = layout.gatherTrainable(gradients);
        LinkedHashMap<String, double[]> squares = new LinkedHashMap<>();
        Map<Layer, Map<String, INDArray>> measured = new java.util.IdentityHashMap<>();
        for (Layer l : layout.statsSources()) {
            measured.put(l, ((AdapterStatsSource) l).takeBatchNorms());
        }
        List<ParamLayout.Module> modules = layout.modules();
        for (ParamLayout.Module m : modules) {
            INDArray norms = measured.getOrDefault(m.runtime(), Map.of()).get(m.module().name());
            if (norms != null) {
                double[] v = norms.castTo(DataType.DOUBLE).dup('c').data().asDouble();
                for (int i = 0; i < v.length; i++) {
                    v[i] *= v[i];
                }
                squares.put(m.name(), v);
            }
        }
        return new ShardResult(n, score * n, grad, squares);
    }
}
