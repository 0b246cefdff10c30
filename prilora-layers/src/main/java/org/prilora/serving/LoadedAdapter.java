package org.prilora.serving;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.bert.BertBlock;
import org.prilora.bert.PriLoraBertBlock;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.PriLoraDense;
import org.prilora.layers.PriLoraLayer;
import org.prilora.ops.LoraLinear;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One adapter as the registry holds it, immutable once built: per adapted module the two low-rank factors
 * {@code (A⊙M)ᵀ [in, r]} and {@code s·Bᵀ [r, out]}; per saved layer (PEFT's modules_to_save, e.g. a classifier head) a
 * standalone layer with the adapter's weights; per adapted layer without a shared-base kernel a standalone copy of the
 * whole adapted layer. Built from a network the existing loaders produced ({@code PriLoraAdapters.load/importPeft}),
 * which is dropped afterwards.
 */
final class LoadedAdapter {
    /** The low-rank factors of one module: {@code Δ = u·aT·sBt}. */
    record ModuleWeights(INDArray aT, INDArray sBt) {
    }

    final Map<String, ModuleWeights> modules;
    final Map<String, Layer> heads;
    final Map<String, Layer> fallbackLayers;
    final long bytes;

    private LoadedAdapter(Map<String, ModuleWeights> modules, Map<String, Layer> heads, Map<String, Layer> fallbackLayers, long bytes) {
        this.modules = Collections.unmodifiableMap(modules);
        this.heads = Collections.unmodifiableMap(heads);
        this.fallbackLayers = Collections.unmodifiableMap(fallbackLayers);
        this.bytes = bytes;
    }

    /** Whether the registry computes a layer of this configuration with the shared base weight (no copy of W0). */
    static boolean hasSharedKernel(org.deeplearning4j.nn.conf.layers.Layer baseConf) {
        if (baseConf.getClass() == org.deeplearning4j.nn.conf.layers.DenseLayer.class) {
            return !((org.deeplearning4j.nn.conf.layers.DenseLayer) baseConf).hasLayerNorm();
        }
        return baseConf.getClass() == BertBlock.class;
    }

    /**
     * Extracts an adapter from {@code adapted} (the base with one adapter loaded, plain layers elsewhere frozen or saved).
     *
     * @param baseLayers the registry's base layers by name, for which layers have a shared-base kernel
     */
    static LoadedAdapter from(Model adapted, Map<String, Layer> baseLayers, DataType dataType) {
        Map<String, ModuleWeights> modules = new LinkedHashMap<>();
        Map<String, Layer> heads = new LinkedHashMap<>();
        Map<String, Layer> fallback = new LinkedHashMap<>();
        long bytes = 0;
        for (Map.Entry<String, Layer> e : layers(adapted).entrySet()) {
            Layer l = e.getValue();
            org.deeplearning4j.nn.conf.layers.Layer conf = l.conf().getLayer();
            Layer base = baseLayers.get(e.getKey());
            if (conf instanceof PriLoraLayer) {
                PriLoraLayer p = (PriLoraLayer) conf;
                boolean shared = base != null && hasSharedKernel(base.conf().getLayer())
                        && (conf instanceof PriLoraDense || conf instanceof PriLoraBertBlock);
                if (!shared) {
                    Layer copy = standalone(l);
                    fallback.put(e.getKey(), copy);
                    bytes += bytesOf(copy.params());
                    continue;
                }
                for (AdapterModule m : p.adapterModules()) {
                    INDArray aEff = LoraLinear.effectiveA(l.getParam(m.aKey()), m.maskKey() == null ? null : l.getParam(m.maskKey()));
                    INDArray aT = aEff.transpose().castTo(dataType).dup('c');
                    INDArray sBt = l.getParam(m.bKey()).transpose().castTo(dataType).mul(p.loraScale()).dup('c');
                    modules.put(m.qualifiedName(e.getKey()), new ModuleWeights(aT, sBt));
                    bytes += bytesOf(aT) + bytesOf(sBt);
                }
            } else if (isSaved(l)) {
                Layer copy = standalone(l);
                heads.put(e.getKey(), copy);
                bytes += bytesOf(copy.params());
            }
        }
        return new LoadedAdapter(modules, heads, fallback, bytes);
    }

    /**
     * Whether a non-adapted layer of an adapted network is saved (PEFT's modules_to_save): it has a parameter that
     * training updates. Frozen layers are wrapped or have only NoOp updaters (the conversion's rule).
     */
    private static boolean isSaved(Layer l) {
        if (l instanceof org.deeplearning4j.nn.layers.FrozenLayerWithBackprop || l instanceof org.deeplearning4j.nn.layers.FrozenLayer
                || l.numParams() == 0) {
            return false;
        }
        for (String k : l.paramTable().keySet()) {
            org.nd4j.linalg.learning.config.IUpdater u = l.conf().getLayer().getUpdaterByParam(k);
            if (u != null && !(u instanceof org.nd4j.linalg.learning.config.NoOp)) {
                return true;
            }
        }
        return false;
    }

    /** A layer of its own (configuration and parameters copied), independent of the network it came from. */
    private static Layer standalone(Layer l) {
        NeuralNetConfiguration c = l.conf().clone();
        INDArray params = l.params().dup('c').reshape('c', 1, l.numParams());
        return c.getLayer().instantiate(c, Collections.emptyList(), l.getIndex(), params, false, params.dataType());
    }

    private static long bytesOf(INDArray a) {
        return a == null ? 0 : a.length() * a.dataType().width();
    }

    /** Runtime layers by name: {@code layer<i>} for unnamed MultiLayerNetwork layers, vertex names in a graph. */
    static Map<String, Layer> layers(Model net) {
        Map<String, Layer> out = new LinkedHashMap<>();
        if (net instanceof MultiLayerNetwork) {
            MultiLayerNetwork mln = (MultiLayerNetwork) net;
            for (int i = 0; i < mln.getnLayers(); i++) {
                String name = mln.getLayerWiseConfigurations().getConf(i).getLayer().getLayerName();
                out.put(name != null ? name : "layer" + i, mln.getLayer(i));
            }
        } else {
            ComputationGraph g = (ComputationGraph) net;
            for (org.deeplearning4j.nn.graph.vertex.GraphVertex v : g.getVertices()) {
                if (v.hasLayer()) {
                    out.put(v.getVertexName(), v.getLayer());
                }
            }
        }
        return out;
    }
}
