package org.prilora;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.graph.LayerVertex;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.NoOp;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.PriLoraLayer;
import org.prilora.layers.PriLoraRanks;
import org.prilora.ops.ModuleState;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;

/**
 * The one place that walks MultiLayerNetworks and ComputationGraphs: their named layers in forward order, their
 * adapted modules with PEFT-style names, what trains, and rebuilding a network with other layer configurations.
 */
final class NetworkModules {
    private NetworkModules() {
    }

    /** One adapted module of a network: {@code name} is {@code layer} or {@code layer.module}. */
    record Entry(String name, String layer, Layer runtime, PriLoraLayer conf, AdapterModule module) {
        ModuleState state() {
            return module.state(name, runtime::getParam);
        }
    }

    /** A layer configuration in forward order, with its name (unnamed MultiLayerNetwork layers are {@code layer<i>}). */
    record LayerConf(String name, org.deeplearning4j.nn.conf.layers.Layer conf) {
    }

    /** Copies parameters from a layer of the old network to the same layer of the rebuilt one. */
    interface ParamCopy {
        void copy(int index, Layer from, Layer to);
    }

    static MultiLayerNetwork requireNetwork(Model net) {
        if (!(net instanceof MultiLayerNetwork) && !(net instanceof ComputationGraph)) {
            throw new IllegalArgumentException("net: expected a MultiLayerNetwork or ComputationGraph, got "
                    + (net == null ? "null" : net.getClass().getName()));
        }
        return net instanceof MultiLayerNetwork ? (MultiLayerNetwork) net : null;
    }

    /** Runtime layers by name, in forward (MultiLayer index or topological) order. */
    static Map<String, Layer> layers(Model net) {
        MultiLayerNetwork mln = requireNetwork(net);
        Map<String, Layer> out = new LinkedHashMap<>();
        if (mln != null) {
            for (int i = 0; i < mln.getnLayers(); i++) {
                out.put(layerName(mln.getLayerWiseConfigurations().getConf(i).getLayer(), i), mln.getLayer(i));
            }
        } else {
            ComputationGraph g = (ComputationGraph) net;
            for (String v : PriLoraRanks.topologicalOrder(g.getConfiguration())) {
                Layer l = g.getLayer(v);
                if (l != null) {
                    out.put(v, l);
                }
            }
        }
        return out;
    }

    private static String layerName(org.deeplearning4j.nn.conf.layers.Layer conf, int index) {
        return conf.getLayerName() != null ? conf.getLayerName() : "layer" + index;
    }

    /** Every adapted module of a network, bottom to top. */
    static List<Entry> modules(Model net) {
        List<Entry> out = new ArrayList<>();
        for (Map.Entry<String, Layer> e : layers(net).entrySet()) {
            if (e.getValue().conf().getLayer() instanceof PriLoraLayer) {
                PriLoraLayer p = (PriLoraLayer) e.getValue().conf().getLayer();
                for (AdapterModule m : p.adapterModules()) {
                    out.add(new Entry(m.qualifiedName(e.getKey()), e.getKey(), e.getValue(), p, m));
                }
            }
        }
        return out;
    }

    /** Whether a layer configuration carries PRILoRA adapters. */
    static boolean isAdapted(org.deeplearning4j.nn.conf.layers.Layer conf) {
        return conf instanceof PriLoraLayer;
    }

    /** The layer inside a frozen wrapper, or the layer itself. */
    static org.deeplearning4j.nn.conf.layers.Layer unwrapFrozen(org.deeplearning4j.nn.conf.layers.Layer conf) {
        return conf instanceof org.deeplearning4j.nn.conf.layers.misc.FrozenLayerWithBackprop
                ? ((org.deeplearning4j.nn.conf.layers.misc.FrozenLayerWithBackprop) conf).getUnderlying() : conf;
    }

    /** Whether a parameter of a runtime layer is updated by training (its updater is neither null nor NoOp). */
    static boolean isTrainable(Layer layer, String paramKey) {
        if (layer instanceof org.deeplearning4j.nn.layers.FrozenLayerWithBackprop || layer instanceof org.deeplearning4j.nn.layers.FrozenLayer) {
            return false; // the wrapper's conf() is the wrapped layer's, which still names an updater
        }
        IUpdater u = layer.conf().getLayer().getUpdaterByParam(paramKey);
        return u != null && !(u instanceof NoOp);
    }

    /** Whether a layer configuration has any parameter that training would update. */
    static boolean hasTrainableParams(org.deeplearning4j.nn.conf.layers.Layer conf) {
        for (String k : conf.initializer().paramKeys(conf)) {
            IUpdater u = conf.getUpdaterByParam(k);
            if (u != null && !(u instanceof NoOp)) {
                return true;
            }
        }
        return false;
    }

    /** Layers that are not PRILoRA layers but have trainable parameters (PEFT's modules_to_save). */
    static List<String> modulesToSave(Model net) {
        List<String> out = new ArrayList<>();
        for (Map.Entry<String, Layer> e : layers(net).entrySet()) {
            Layer l = e.getValue();
            if (!isAdapted(l.conf().getLayer()) && l.paramTable().keySet().stream().anyMatch(k -> isTrainable(l, k))) {
                out.add(e.getKey());
            }
        }
        return out;
    }

    /**
     * A new network like {@code net} whose layer configurations are replaced by {@code plan} (given every layer in
     * forward order, returning the new configurations in the same order), initialised, with parameters copied by
     * {@code copy}. ComputationGraph layers without a name get their vertex name.
     */
    static Model rebuild(Model net, java.util.function.Function<List<LayerConf>, List<org.deeplearning4j.nn.conf.layers.Layer>> plan,
                         ParamCopy copy) {
        MultiLayerNetwork mln = requireNetwork(net);
        List<NeuralNetConfiguration> confs = new ArrayList<>();
        List<LayerConf> layers = new ArrayList<>();
        Model rebuilt;
        if (mln != null) {
            MultiLayerConfiguration conf = mln.getLayerWiseConfigurations().clone();
            for (int i = 0; i < conf.getConfs().size(); i++) {
                confs.add(conf.getConf(i));
                layers.add(new LayerConf(layerName(conf.getConf(i).getLayer(), i), conf.getConf(i).getLayer()));
            }
            setLayers(confs, plan.apply(layers));
            MultiLayerNetwork out = new MultiLayerNetwork(conf);
            out.init();
            for (int i = 0; i < confs.size(); i++) {
                copy.copy(i, mln.getLayer(i), out.getLayer(i));
            }
            rebuilt = out;
        } else {
            ComputationGraph g = (ComputationGraph) net;
            ComputationGraphConfiguration conf = g.getConfiguration().clone();
            List<String> names = new ArrayList<>();
            for (String v : PriLoraRanks.topologicalOrder(conf)) {
                if (conf.getVertices().get(v) instanceof LayerVertex) {
                    NeuralNetConfiguration c = ((LayerVertex) conf.getVertices().get(v)).getLayerConf();
                    if (c.getLayer().getLayerName() == null) {
                        c.getLayer().setLayerName(v);
                    }
                    names.add(v);
                    confs.add(c);
                    layers.add(new LayerConf(v, c.getLayer()));
                }
            }
            setLayers(confs, plan.apply(layers));
            ComputationGraph out = new ComputationGraph(conf);
            out.init();
            for (int i = 0; i < names.size(); i++) {
                copy.copy(i, g.getLayer(names.get(i)), out.getLayer(names.get(i)));
            }
            rebuilt = out;
        }
        return rebuilt;
    }

    private static void setLayers(List<NeuralNetConfiguration> confs, List<org.deeplearning4j.nn.conf.layers.Layer> layers) {
        for (int i = 0; i < confs.size(); i++) {
            confs.get(i).setLayer(layers.get(i));
            confs.get(i).clearVariables();
        }
    }

    /** CRC32 of an array's values as float32, C order, little endian: identifies a base weight. */
    static long crc(INDArray a) {
        float[] v = a.castTo(DataType.FLOAT).dup('c').data().asFloat();
        ByteBuffer buf = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            buf.putFloat(f);
        }
        CRC32 c = new CRC32();
        c.update(buf.array());
        return c.getValue();
    }

    /** A copy of a network (same class). */
    static Model copy(Model net) {
        MultiLayerNetwork mln = requireNetwork(net);
        return mln != null ? mln.clone() : ((ComputationGraph) net).clone();
    }

    /** All runtime layers in the network's own order ({@code getLayers()}). */
    static Layer[] allLayers(Model net) {
        MultiLayerNetwork mln = requireNetwork(net);
        return mln != null ? mln.getLayers() : ((ComputationGraph) net).getLayers();
    }
}
