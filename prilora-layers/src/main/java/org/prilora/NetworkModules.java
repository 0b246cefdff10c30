package org.prilora;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.PriLoraLayer;
import org.prilora.layers.PriLoraRanks;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;

/** The named layers of a network in forward order, and the PEFT-style module names of its adapter sites. */
final class NetworkModules {
    private NetworkModules() {
    }

    /** Runtime layers by name, in forward (MultiLayer index or topological) order. */
    static Map<String, Layer> layers(Model net) {
        Map<String, Layer> out = new LinkedHashMap<>();
        if (net instanceof MultiLayerNetwork) {
            MultiLayerNetwork m = (MultiLayerNetwork) net;
            for (int i = 0; i < m.getnLayers(); i++) {
                String name = m.getLayerWiseConfigurations().getConf(i).getLayer().getLayerName();
                out.put(name == null ? String.valueOf(i) : name, m.getLayer(i));
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

    /** The module name of a site: the layer name, or {@code layer.site}. */
    static String module(String layer, AdapterModule s) {
        return s.name().isEmpty() ? layer : layer + "." + s.name();
    }

    /** One adapted site of a network. */
    record Site(String module, String layer, Layer runtime, PriLoraLayer conf, AdapterModule site) {
    }

    static List<Site> sites(Model net) {
        List<Site> out = new ArrayList<>();
        for (Map.Entry<String, Layer> e : layers(net).entrySet()) {
            if (e.getValue().conf().getLayer() instanceof PriLoraLayer) {
                PriLoraLayer p = (PriLoraLayer) e.getValue().conf().getLayer();
                for (AdapterModule s : p.adapterModules()) {
                    out.add(new Site(module(e.getKey(), s), e.getKey(), e.getValue(), p, s));
                }
            }
        }
        return out;
    }

    /** Layers that are not PRILoRA layers but have trainable parameters (PEFT's modules_to_save). */
    static List<String> modulesToSave(Model net) {
        List<String> out = new ArrayList<>();
        for (Map.Entry<String, Layer> e : layers(net).entrySet()) {
            Layer l = e.getValue();
            if (!(l.conf().getLayer() instanceof PriLoraLayer)
                    && l.paramTable().keySet().stream().anyMatch(k -> PriLora.isTrainable(l, k))) {
                out.add(e.getKey());
            }
        }
        return out;
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
}
