package org.prilora.layers;

import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.graph.GraphVertex;
import org.deeplearning4j.nn.conf.graph.LayerVertex;
import org.prilora.config.RankSchedule;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.ToIntFunction;

/**
 * Applies a {@link RankSchedule} to the PRILoRA layers of a configuration, bottom to top, so that ranks need
 * not be computed by hand. By default every PRILoRA layer is its own block; a block function groups several
 * layers into one block (for example all projections of one transformer block). Call it before the
 * network is initialised.
 *
 * <pre>{@code
 * MultiLayerConfiguration conf = ...;             // PriLoraDense / PriLoraSelfAttention layers
 * PriLoraRanks.apply(conf, RankSchedule.linear(4, 12));
 * }</pre>
 */
public final class PriLoraRanks {
    private PriLoraRanks() {
    }

    /** Ranks by layer order, one block per PRILoRA layer. Returns the ranks applied, bottom to top. */
    public static int[] apply(MultiLayerConfiguration conf, RankSchedule schedule) {
        return apply(conf, schedule, null);
    }

    /**
     * Ranks by layer order with a user block index (0-based, non-decreasing with depth expected but not required).
     * {@code blockOf} null means one block per layer.
     */
    public static int[] apply(MultiLayerConfiguration conf, RankSchedule schedule, ToIntFunction<PriLoraLayer> blockOf) {
        Objects.requireNonNull(conf, "conf");
        List<PriLoraLayer> layers = new ArrayList<>();
        for (NeuralNetConfiguration c : conf.getConfs()) {
            if (c.getLayer() instanceof PriLoraLayer) {
                layers.add((PriLoraLayer) c.getLayer());
            }
        }
        return applyTo(layers, schedule, blockOf);
    }

    /** Ranks in the graph's topological order, one block per PRILoRA layer. */
    public static int[] apply(ComputationGraphConfiguration conf, RankSchedule schedule) {
        return apply(conf, schedule, null);
    }

    /** Ranks in the graph's topological order with a user block index. */
    public static int[] apply(ComputationGraphConfiguration conf, RankSchedule schedule, ToIntFunction<PriLoraLayer> blockOf) {
        Objects.requireNonNull(conf, "conf");
        Map<String, GraphVertex> vertices = conf.getVertices();
        List<PriLoraLayer> layers = new ArrayList<>();
        for (String name : topologicalOrder(conf)) {
            GraphVertex v = vertices.get(name);
            if (v instanceof LayerVertex && ((LayerVertex) v).getLayerConf().getLayer() instanceof PriLoraLayer) {
                layers.add((PriLoraLayer) ((LayerVertex) v).getLayerConf().getLayer());
            }
        }
        return applyTo(layers, schedule, blockOf);
    }

    /** Vertex names in dependency order (Kahn's algorithm, ties in insertion order); network inputs excluded. */
    public static List<String> topologicalOrder(ComputationGraphConfiguration conf) {
        Map<String, List<String>> inputs = conf.getVertexInputs();
        List<String> done = new ArrayList<>(conf.getNetworkInputs());
        List<String> order = new ArrayList<>();
        List<String> pending = new ArrayList<>(conf.getVertices().keySet());
        while (!pending.isEmpty()) {
            boolean progressed = false;
            for (java.util.Iterator<String> it = pending.iterator(); it.hasNext(); ) {
                String v = it.next();
                List<String> in = inputs.getOrDefault(v, List.of());
                if (done.containsAll(in)) {
                    done.add(v);
                    order.add(v);
                    it.remove();
                    progressed = true;
                }
            }
            if (!progressed) {
                throw new IllegalArgumentException("conf: the graph has a cycle among " + pending);
            }
        }
        return order;
    }

    /** Applies the schedule to layers given bottom to top. */
    public static int[] applyTo(List<? extends PriLoraLayer> layers, RankSchedule schedule, ToIntFunction<PriLoraLayer> blockOf) {
        Objects.requireNonNull(schedule, "schedule");
        if (layers.isEmpty()) {
            throw new IllegalArgumentException("conf: expected at least one PRILoRA layer, found none");
        }
        Map<PriLoraLayer, Integer> block = new LinkedHashMap<>();
        int numBlocks;
        if (blockOf == null) {
            for (int i = 0; i < layers.size(); i++) {
                block.put(layers.get(i), i);
            }
            numBlocks = layers.size();
        } else {
            int max = -1;
            for (PriLoraLayer l : layers) {
                int b = blockOf.applyAsInt(l);
                if (b < 0) {
                    throw new IllegalArgumentException("blockOf: expected a block index >= 0 for "
                            + AdapterKeys.describe((org.deeplearning4j.nn.conf.layers.Layer) l, -1) + ", got " + b);
                }
                block.put(l, b);
                max = Math.max(max, b);
            }
            numBlocks = max + 1;
        }
        int[] applied = new int[layers.size()];
        for (int i = 0; i < layers.size(); i++) {
            PriLoraLayer l = layers.get(i);
            applied[i] = schedule.rankFor(block.get(l), numBlocks);
            l.setRank(applied[i]);
        }
        return applied;
    }
}
