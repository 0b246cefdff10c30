package org.prilora.parallel;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.NoOp;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.PriLoraLayer;
import org.prilora.layers.PriLoraRanks;
import org.prilora.ops.ModuleState;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where the parameters of a network live in its flat parameter (and gradient) vector, sorted into what data-parallel
 * training must move each step: <b>trainable</b> parameters (any updater but NoOp; their gradients go back to the
 * driver), PRILoRA <b>masks</b> (not trained, but the driver changes them when it prunes, and the forward pass uses
 * them), and everything else (<b>frozen</b>: base weights, frozen layers, the input statistics, which only the driver
 * needs). Frozen values are copied to a worker once; per step only trainable parameters and masks travel.
 *
 * <p>A parameter whose updater is NoOp but whose "gradient" is applied anyway (DL4J's BatchNorm running mean and
 * variance) is treated as frozen: such layers are not supported by the data-parallel trainers.
 *
 * <p>The layout depends only on the network's structure, so the driver and every worker compute the same one from
 * their own copy. Module names follow {@code PriLoraListener}: {@code layer} or {@code layer.module}.
 */
public final class ParamLayout {

    /** One adapted module: its name, the runtime layer that measures its input norms, and its keys there. */
    record Module(String name, Layer runtime, AdapterModule module) {
        ModuleState state() {
            return module.state(name, runtime::getParam);
        }
    }

    private final long numParams;
    private final DataType dataType;
    private final long[][] shippedRanges;
    private final long[][] trainableRanges;
    private final int shippedLength;
    private final int trainableLength;
    private final List<Module> modules;
    private final List<Layer> statsSources;

    private ParamLayout(long numParams, DataType dataType, long[][] shipped, long[][] trainable, List<Module> modules,
                        List<Layer> statsSources) {
        this.numParams = numParams;
        this.dataType = dataType;
        this.shippedRanges = shipped;
        this.trainableRanges = trainable;
        this.shippedLength = Math.toIntExact(total(shipped));
        this.trainableLength = Math.toIntExact(total(trainable));
        this.modules = modules;
        this.statsSources = statsSources;
    }

    private static long total(long[][] ranges) {
        long n = 0;
        for (long[] r : ranges) {
            n += r[1] - r[0];
        }
        return n;
    }

    /** The layout of {@code net} (a MultiLayerNetwork or ComputationGraph, initialised). */
    public static ParamLayout of(Model net) {
        INDArray flat = flatParams(net);
        List<long[]> shipped = new ArrayList<>();
        List<long[]> trainable = new ArrayList<>();
        List<long[]> all = new ArrayList<>();
        List<Module> modules = new ArrayList<>();
        List<Layer> sources = new ArrayList<>();
        for (Map.Entry<String, Layer> e : layers(net).entrySet()) {
            Layer l = e.getValue();
            java.util.Set<String> maskKeys = new java.util.HashSet<>();
            if (l.conf().getLayer() instanceof PriLoraLayer) {
                for (AdapterModule m : ((PriLoraLayer) l.conf().getLayer()).adapterModules()) {
                    modules.add(new Module(m.qualifiedName(e.getKey()), l, m));
                    if (m.maskKey() != null) {
                        maskKeys.add(m.maskKey());
                    }
                }
            }
            if (l instanceof org.prilora.layers.AdapterStatsSource) {
                sources.add(l);
            }
            for (Map.Entry<String, INDArray> p : l.paramTable().entrySet()) {
                INDArray view = p.getValue();
                long off = view.offset() - flat.offset();
                long[] range = {off, off + view.length()};
                if (off < 0 || range[1] > flat.length() || !sameValues(segment(flat, range), view)) {
                    throw new IllegalStateException("parameter '" + p.getKey() + "' of layer '" + e.getKey()
                            + "' is not a contiguous view of the network's flat parameters (offset " + off + ", length "
                            + view.length() + " of " + flat.length() + "); the data-parallel trainers need DL4J's flat layout");
                }
                all.add(range);
                if (isTrainable(l, p.getKey())) {
                    trainable.add(range);
                    shipped.add(range);
                } else if (maskKeys.contains(p.getKey())) {
                    shipped.add(range);
                }
            }
        }
        checkTiling(all, flat.length());
        return new ParamLayout(flat.length(), flat.dataType(), merge(shipped), merge(trainable), List.copyOf(modules),
                List.copyOf(sources));
    }

    /** Whether a flat segment holds a view's values (sums taken in different orders, so a tolerance on Σ|x|). */
    private static boolean sameValues(INDArray seg, INDArray view) {
        double a = seg.sumNumber().doubleValue();
        double b = view.sumNumber().doubleValue();
        return a == b || Math.abs(a - b) <= 1e-5 * seg.norm1Number().doubleValue();
    }

    private static void checkTiling(List<long[]> ranges, long n) {
        List<long[]> sorted = new ArrayList<>(ranges);
        sorted.sort((x, y) -> Long.compare(x[0], y[0]));
        long at = 0;
        for (long[] r : sorted) {
            if (r[0] != at) {
                throw new IllegalStateException("parameter views do not tile the flat parameter vector: gap or overlap at "
                        + at + " (next view starts at " + r[0] + ")");
            }
            at = r[1];
        }
        if (at != n) {
            throw new IllegalStateException("parameter views cover " + at + " of " + n + " parameters");
        }
    }

    private static long[][] merge(List<long[]> ranges) {
        List<long[]> sorted = new ArrayList<>(ranges);
        sorted.sort((x, y) -> Long.compare(x[0], y[0]));
        List<long[]> out = new ArrayList<>();
        for (long[] r : sorted) {
            if (!out.isEmpty() && out.get(out.size() - 1)[1] == r[0]) {
                out.get(out.size() - 1)[1] = r[1];
            } else {
                out.add(r.clone());
            }
        }
        return out.toArray(new long[0][]);
    }

    /** Whether training updates a parameter: not in a frozen wrapper, and an updater other than NoOp. */
    static boolean isTrainable(Layer layer, String key) {
        if (layer instanceof org.deeplearning4j.nn.layers.FrozenLayerWithBackprop
                || layer instanceof org.deeplearning4j.nn.layers.FrozenLayer) {
            return false;
        }
        IUpdater u = layer.conf().getLayer().getUpdaterByParam(key);
        return u != null && !(u instanceof NoOp);
    }

    /** Runtime layers by name in forward order (unnamed MultiLayerNetwork layers are {@code layer<i>}). */
    static Map<String, Layer> layers(Model net) {
        Map<String, Layer> out = new LinkedHashMap<>();
        if (net instanceof MultiLayerNetwork) {
            MultiLayerNetwork mln = (MultiLayerNetwork) net;
            for (int i = 0; i < mln.getnLayers(); i++) {
                String name = mln.getLayerWiseConfigurations().getConf(i).getLayer().getLayerName();
                out.put(name != null ? name : "layer" + i, mln.getLayer(i));
            }
        } else if (net instanceof ComputationGraph) {
            ComputationGraph g = (ComputationGraph) net;
            for (String v : PriLoraRanks.topologicalOrder(g.getConfiguration())) {
                Layer l = g.getLayer(v);
                if (l != null) {
                    out.put(v, l);
                }
            }
        } else {
            throw new IllegalArgumentException("net: expected a MultiLayerNetwork or ComputationGraph, got "
                    + (net == null ? "null" : net.getClass().getName()));
        }
        return out;
    }

    static INDArray flatParams(Model net) {
        if (!(net instanceof MultiLayerNetwork) && !(net instanceof ComputationGraph)) {
            throw new IllegalArgumentException("net: expected a MultiLayerNetwork or ComputationGraph, got "
                    + (net == null ? "null" : net.getClass().getName()));
        }
        INDArray flat = net.params();
        if (flat == null || flat.isEmpty()) {
            throw new IllegalArgumentException("net: has no parameters (not initialised? call init() first)");
        }
        return flat;
    }

    static INDArray segment(INDArray flat, long[] range) {
        INDArray v = flat.rank() == 1 ? flat : flat.reshape(flat.length());
        return v.get(NDArrayIndex.interval(range[0], range[1]));
    }

    /** Trainable parameters and masks of {@code net}, concatenated. */
    FlatValues packShipped(Model net) {
        return gather(flatParams(net), shippedRanges, shippedLength);
    }

    /** Writes what {@link #packShipped} returned into {@code net}'s parameters. */
    void unpackShipped(Model net, FlatValues values) {
        scatter(flatParams(net), shippedRanges, values);
    }

    /** The trainable entries of a flat gradient vector, concatenated. */
    FlatValues gatherTrainable(INDArray flatGradients) {
        return gather(flatGradients, trainableRanges, trainableLength);
    }

    /** Writes trainable entries into a flat gradient vector (the others are left as they are). */
    void scatterTrainable(INDArray flatGradients, FlatValues values) {
        scatter(flatGradients, trainableRanges, values);
    }

    private FlatValues gather(INDArray flat, long[][] ranges, int length) {
        check(flat);
        FlatValues out = FlatValues.zeros(dataType, length);
        int at = 0;
        for (long[] r : ranges) {
            out.put(at, segment(flat, r));
            at += (int) (r[1] - r[0]);
        }
        return out;
    }

    private void scatter(INDArray flat, long[][] ranges, FlatValues values) {
        check(flat);
        int expected = ranges == shippedRanges ? shippedLength : trainableLength;
        if (values.length() != expected) {
            throw new IllegalArgumentException("values: expected " + expected + " entries for this network, got " + values.length());
        }
        int at = 0;
        for (long[] r : ranges) {
            int len = (int) (r[1] - r[0]);
            segment(flat, r).assign(values.slice(at, len, flat.dataType()));
            at += len;
        }
    }

    private void check(INDArray flat) {
        if (flat.length() != numParams) {
            throw new IllegalArgumentException("network: expected " + numParams + " parameters (the layout's network), got "
                    + flat.length());
        }
    }

    /** Number of trainable parameters (the length of a shard's gradient). */
    public int trainableLength() {
        return trainableLength;
    }

    /** Number of values shipped to workers each step: trainable parameters plus masks. */
    public int shippedLength() {
        return shippedLength;
    }

    /** All parameters of the network. */
    public long numParams() {
        return numParams;
    }

    /** The network's parameter data type. */
    public DataType dataType() {
        return dataType;
    }

    /** Adapted modules bottom to top, bound to this layout's network. */
    List<Module> modules() {
        return modules;
    }

    /** Runtime layers that measure adapter input norms. */
    List<Layer> statsSources() {
        return statsSources;
    }

    /** Live states of every adapted module of this layout's network, bottom to top. */
    List<ModuleState> states() {
        List<ModuleState> out = new ArrayList<>(modules.size());
        for (Module m : modules) {
            out.add(m.state());
        }
        return out;
    }

    @Override
    public String toString() {
        return "ParamLayout{params=" + numParams + ", trainable=" + trainableLength + ", shipped=" + shippedLength
                + ", modules=" + modules.size() + "}";
    }
}
