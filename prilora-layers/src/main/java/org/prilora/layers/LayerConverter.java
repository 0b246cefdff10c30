package org.prilora.layers;

import org.deeplearning4j.nn.conf.layers.Layer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.config.AdapterSettings;
import org.prilora.ops.LoraLinear;

import java.util.Map;

/**
 * Converts one layer type between its plain DL4J form and its PRILoRA form, in the spirit of PEFT's dispatcher list
 * ({@code tuners/lora/model.py}): {@code PriLora.adapt}, {@code PriLora.merge} and the adapter files walk a list of
 * converters and ask each whether it handles a layer. A new adaptable layer type is one new converter.
 *
 * <p>The defaults fit converters whose PRILoRA layer keeps the plain layer's parameter keys (the adapters add keys):
 * adapting copies every plain parameter by key, merging copies them back with each module's weight replaced by
 * {@code W0 + s·(A⊙M)ᵀBᵀ}.
 */
public interface LayerConverter {

    /** The plain layer type this converter adapts, as messages name it (e.g. {@code "DenseLayer"}). */
    String plainType();

    /** Whether this converter turns {@code plain} (a layer configuration) into a PRILoRA layer. */
    boolean adapts(Layer plain);

    /** Whether this converter turns the PRILoRA layer {@code adapted} back into a plain layer. */
    boolean merges(Layer adapted);

    /** The PRILoRA configuration for {@code plain}, with its name and training settings and the given rank. */
    Layer adapt(Layer plain, int rank, AdapterSettings settings);

    /** The plain configuration {@code adapted} merges into (its name and training settings kept). */
    Layer plain(Layer adapted);

    /** Copies the plain runtime layer's weights into the frozen base parameters of the adapted one. */
    default void copyBase(org.deeplearning4j.nn.api.Layer plain, org.deeplearning4j.nn.api.Layer adapted) {
        for (Map.Entry<String, INDArray> e : plain.paramTable().entrySet()) {
            adapted.getParam(e.getKey()).assign(e.getValue());
        }
    }

    /** Writes the adapted layer's merged weights into the plain runtime layer. */
    default void merge(org.deeplearning4j.nn.api.Layer adapted, org.deeplearning4j.nn.api.Layer plain) {
        for (Map.Entry<String, INDArray> e : plain.paramTable().entrySet()) {
            e.getValue().assign(adapted.getParam(e.getKey()));
        }
        PriLoraLayer conf = (PriLoraLayer) adapted.conf().getLayer();
        for (AdapterModule m : conf.adapterModules()) {
            plain.getParam(m.weightKey()).assign(mergedWeight(adapted, m, conf.loraScale()));
        }
    }

    /**
     * The base weight {@code [nIn, nOut]} of one module in a plain runtime layer (what an adapter file's CRC and shape
     * are checked against).
     *
     * @throws IllegalArgumentException if the layer has no such module
     */
    default INDArray baseWeight(org.deeplearning4j.nn.api.Layer plain, String module) {
        Layer conf = plain.conf().getLayer();
        for (AdapterModule m : ((PriLoraLayer) adapt(conf, 1, AdapterSettings.defaults())).adapterModules()) {
            if (m.name().equals(module)) {
                return plain.getParam(m.weightKey());
            }
        }
        throw new IllegalArgumentException("layer '" + conf.getLayerName() + "' (" + conf.getClass().getSimpleName()
                + ") has no module '" + module + "'");
    }

    /** {@code W0 + s·(A⊙M)ᵀBᵀ} of one module of an adapted runtime layer, as a new array. */
    static INDArray mergedWeight(org.deeplearning4j.nn.api.Layer adapted, AdapterModule m, double scale) {
        return LoraLinear.mergedWeight(adapted.getParam(m.weightKey()), adapted.getParam(m.aKey()), adapted.getParam(m.bKey()),
                m.maskKey() == null ? null : adapted.getParam(m.maskKey()), scale);
    }
}
