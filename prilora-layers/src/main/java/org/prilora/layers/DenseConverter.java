package org.prilora.layers;

import org.deeplearning4j.nn.conf.layers.BaseLayer;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.Layer;
import org.prilora.config.AdapterSettings;

/** {@link DenseLayer} ↔ {@link PriLoraDense}; both keep DL4J's {@code W} and {@code b}. */
public final class DenseConverter extends ExactTypeConverter {

    public DenseConverter() {
        super(DenseLayer.class, PriLoraDense.class);
    }

    @Override
    public Layer adapt(Layer plain, int rank, AdapterSettings settings) {
        DenseLayer d = (DenseLayer) plain;
        if (d.hasLayerNorm()) {
            throw new IllegalArgumentException("layer '" + d.getLayerName() + "' uses DenseLayer.hasLayerNorm, which PriLoraDense"
                    + " does not support");
        }
        PriLoraDense out = new PriLoraDense.Builder().nIn(d.getNIn()).nOut(d.getNOut()).activation(d.getActivationFn())
                .hasBias(d.hasBias()).rank(rank).adapter(settings).name(d.getLayerName()).build();
        copyTrainingSettings(d, out);
        return out;
    }

    @Override
    public Layer plain(Layer adapted) {
        PriLoraDense p = (PriLoraDense) adapted;
        DenseLayer d = new DenseLayer.Builder().nIn(p.getNIn()).nOut(p.getNOut()).activation(p.getActivationFn())
                .hasBias(p.hasBias()).name(p.getLayerName()).build();
        copyTrainingSettings(p, d);
        return d;
    }

    private static void copyTrainingSettings(BaseLayer from, BaseLayer to) {
        to.setIUpdater(from.getIUpdater());
        to.setRegularization(from.getRegularization());
        to.setGradientNormalization(from.getGradientNormalization());
        to.setGradientNormalizationThreshold(from.getGradientNormalizationThreshold());
        to.setIDropout(from.getIDropout());
        to.setWeightInitFn(from.getWeightInitFn());
        to.setBiasInit(from.getBiasInit());
        to.setBiasUpdater(from.getBiasUpdater());
        to.setRegularizationBias(from.getRegularizationBias());
    }
}
