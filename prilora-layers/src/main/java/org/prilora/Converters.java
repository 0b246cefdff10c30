package org.prilora;

import org.deeplearning4j.nn.conf.layers.Layer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.bert.BertBlockConverter;
import org.prilora.config.AdapterSettings;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.DenseConverter;
import org.prilora.layers.LayerConverter;
import org.prilora.layers.PriLoraLayer;
import org.prilora.layers.SelfAttentionConverter;

import java.util.List;

/** The layer types {@link PriLora} adapts and merges: one {@link LayerConverter} each, asked in this order. */
final class Converters {
    static final List<LayerConverter> ALL = List.of(new DenseConverter(), new SelfAttentionConverter(), new BertBlockConverter());

    private Converters() {
    }

    /** The converter that adapts this plain layer configuration, or null. */
    static LayerConverter adapting(Layer conf) {
        return ALL.stream().filter(c -> c.adapts(conf)).findFirst().orElse(null);
    }

    /** The converter that merges this PRILoRA layer configuration, or null. */
    static LayerConverter merging(Layer conf) {
        return ALL.stream().filter(c -> c.merges(conf)).findFirst().orElse(null);
    }

    /** Simple names of the plain layer types some converter adapts, for messages. */
    static String adaptableTypes() {
        return String.join(", ", ALL.stream().map(LayerConverter::plainType).toList());
    }

    /** The names of the modules a layer has (PRILoRA) or would have once adapted (plain); empty for other layers. */
    static List<String> moduleNames(Layer conf) {
        LayerConverter c = adapting(conf);
        Layer adapted = conf instanceof PriLoraLayer ? conf : null;
        if (adapted == null && c != null) {
            try {
                adapted = c.adapt(conf, 1, AdapterSettings.defaults());
            } catch (IllegalArgumentException notAdaptable) {
                return List.of();   // e.g. attention without input projections
            }
        }
        return adapted == null ? List.of() : ((PriLoraLayer) adapted).adapterModules().stream().map(AdapterModule::name).toList();
    }

    /**
     * The base weight {@code [nIn, nOut]} of a module, from a PRILoRA layer or from a plain layer a converter adapts.
     *
     * @throws IllegalArgumentException if the layer has no such module or cannot be adapted
     */
    static INDArray baseWeight(org.deeplearning4j.nn.api.Layer l, String module) {
        Layer conf = l.conf().getLayer();
        if (conf instanceof PriLoraLayer) {
            for (AdapterModule m : ((PriLoraLayer) conf).adapterModules()) {
                if (m.name().equals(module)) {
                    return l.getParam(m.weightKey());
                }
            }
            throw new IllegalArgumentException("layer '" + conf.getLayerName() + "' (" + conf.getClass().getSimpleName()
                    + ") has no module '" + module + "'");
        }
        LayerConverter c = adapting(conf);
        if (c == null) {
            throw new IllegalArgumentException("layer '" + conf.getLayerName() + "' is a " + conf.getClass().getSimpleName()
                    + ", which has no adaptable module '" + module + "' (expected one of " + adaptableTypes() + ")");
        }
        return c.baseWeight(l, module);
    }
}
