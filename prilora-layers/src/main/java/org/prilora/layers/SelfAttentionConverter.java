package org.prilora.layers;

import org.deeplearning4j.nn.conf.layers.Layer;
import org.deeplearning4j.nn.conf.layers.SelfAttentionLayer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.config.AdapterSettings;

/**
 * {@link SelfAttentionLayer} (with {@code projectInput}) ↔ {@link PriLoraSelfAttention}. DL4J stores {@code Wq/Wk/Wv}
 * as {@code [nHeads, headSize, nIn]} and {@code Wo} as {@code [nHeads·headSize, nOut]}; the PRILoRA layer keeps all
 * four as 2-D {@code [in, out]} matrices.
 */
public final class SelfAttentionConverter extends ExactTypeConverter {
    private static final String[] DL4J_KEYS = {"Wq", "Wk", "Wv", "Wo"};
    private static final String[] MODULES = {PriLoraSelfAttention.QUERY, PriLoraSelfAttention.KEY, PriLoraSelfAttention.VALUE,
            PriLoraSelfAttention.OUTPUT};

    public SelfAttentionConverter() {
        super(SelfAttentionLayer.class, PriLoraSelfAttention.class);
    }

    @Override
    public String plainType() {
        return "SelfAttentionLayer (with projectInput)";
    }

    @Override
    public Layer adapt(Layer plain, int rank, AdapterSettings settings) {
        SelfAttentionLayer s = (SelfAttentionLayer) plain;
        if (!s.isProjectInput()) {
            throw new IllegalArgumentException("layer '" + s.getLayerName() + "' is a SelfAttentionLayer without projectInput:"
                    + " it has no projections to adapt");
        }
        PriLoraSelfAttention out = new PriLoraSelfAttention.Builder().nIn(s.getNIn()).nOut(s.getNOut()).nHeads(s.getNHeads())
                .headSize(s.getHeadSize()).rank(rank).adapter(settings).name(s.getLayerName()).build();
        out.setUpdater(s.getUpdater());
        out.setRegularization(s.getRegularization());
        return out;
    }

    @Override
    public Layer plain(Layer adapted) {
        PriLoraSelfAttention p = (PriLoraSelfAttention) adapted;
        SelfAttentionLayer s = new SelfAttentionLayer.Builder().nIn((int) p.getNIn()).nOut((int) p.getNOut()).nHeads(p.getNHeads())
                .headSize((int) p.getHeadSize()).projectInput(true).name(p.getLayerName()).build();
        s.setUpdater(p.getUpdater());
        s.setRegularization(p.getRegularization());
        return s;
    }

    @Override
    public void copyBase(org.deeplearning4j.nn.api.Layer plain, org.deeplearning4j.nn.api.Layer adapted) {
        for (AdapterModule m : ((PriLoraLayer) adapted.conf().getLayer()).adapterModules()) {
            adapted.getParam(m.weightKey()).assign(baseWeight(plain, m.name()));
        }
    }

    @Override
    public void merge(org.deeplearning4j.nn.api.Layer adapted, org.deeplearning4j.nn.api.Layer plain) {
        PriLoraSelfAttention conf = (PriLoraSelfAttention) adapted.conf().getLayer();
        for (AdapterModule m : conf.adapterModules()) {
            INDArray w = LayerConverter.mergedWeight(adapted, m, conf.loraScale());
            int i = indexOf(m.name());
            plain.getParam(DL4J_KEYS[i]).assign(i < 3 ? PriLoraSelfAttention.toDl4jProjection(w, conf.getNHeads()) : w);
        }
    }

    @Override
    public INDArray baseWeight(org.deeplearning4j.nn.api.Layer plain, String module) {
        int i = indexOf(module);
        if (i < 0) {
            throw new IllegalArgumentException("layer '" + plain.conf().getLayer().getLayerName() + "' is a SelfAttentionLayer,"
                    + " which has no module '" + module + "' (expected one of query, key, value, output)");
        }
        INDArray w = plain.getParam(DL4J_KEYS[i]);
        return i < 3 ? PriLoraSelfAttention.fromDl4jProjection(w) : w;
    }

    private static int indexOf(String module) {
        for (int i = 0; i < MODULES.length; i++) {
            if (MODULES[i].equals(module)) {
                return i;
            }
        }
        return -1;
    }
}
