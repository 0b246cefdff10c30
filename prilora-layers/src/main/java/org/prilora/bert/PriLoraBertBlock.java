package org.prilora.bert;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.samediff.SDLayerParams;
import org.deeplearning4j.optimize.api.TrainingListener;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.bert.BertNaming.Projection;
import org.prilora.config.AdapterSettings;
import org.prilora.layers.AdapterKeys;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.PriLoraGraphLayer;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A {@link BertBlock} with PRILoRA adapters on all six projections: every projection {@code x·W + b} becomes
 * {@code x·W + b + s·(x·(A⊙M)ᵀ)·Bᵀ} with W, b and the LayerNorms frozen; only A and B train.
 *
 * <p>Modules are named by their Hugging Face sub-module ({@link Projection#siteName()}, e.g.
 * {@code attention.self.query}); with the DL4J layer name {@code encoder.layer.N} they give the PEFT module name.
 * Parameters: the plain block's, plus per module (keys from {@link AdapterKeys#module}) {@code <p>loraA [r,in]},
 * {@code <p>loraB [out,r]} (trained), {@code <p>xnorm} (statistics) and {@code <p>loraM} (PERSISTENT_MASK mode).
 */
public class PriLoraBertBlock extends BertBlock implements PriLoraGraphLayer {
    private static final long serialVersionUID = 1L;

    private int rank = 8;
    private AdapterSettings adapter = AdapterSettings.defaults();
    /** Module name → graph variable of its input; filled while the graph runtime defines the layer. */
    private transient Map<String, String> moduleInputVariables;

    /** For JSON deserialization. */
    protected PriLoraBertBlock() {
    }

    protected PriLoraBertBlock(Builder b) {
        super(b);
        this.rank = b.rank;
        this.adapter = b.adapter;
    }

    @Override
    public Layer instantiate(NeuralNetConfiguration conf, Collection<TrainingListener> trainingListeners, int layerIndex,
                             INDArray layerParamsView, boolean initializeParams, DataType networkDataType) {
        if (rank < 1 || rank > Math.min(getHidden(), getIntermediate())) {
            throw new IllegalArgumentException("rank: expected a value in [1, min(hidden, intermediate) = "
                    + Math.min(getHidden(), getIntermediate()) + "] for " + AdapterKeys.describe(this, layerIndex) + ", got " + rank);
        }
        return super.instantiate(conf, trainingListeners, layerIndex, layerParamsView, initializeParams, networkDataType);
    }

    @Override
    public List<AdapterModule> adapterModules() {
        List<AdapterModule> modules = new ArrayList<>();
        for (Projection p : Projection.values()) {
            modules.add(module(p));
        }
        return modules;
    }

    /** The module of one projection. */
    public AdapterModule module(Projection p) {
        return AdapterKeys.module(p.siteName(), p.paramPrefix(), true, adapter.hasMask(), nIn(p), nOut(p), rank);
    }

    @Override
    protected void declareProjection(SDLayerParams params, Projection p) {
        module(p).declare(params);
    }

    @Override
    public void initializeParameters(Map<String, INDArray> params) {
        super.initializeParameters(params);
        for (Projection p : Projection.values()) {
            module(p).initState(params::get, adapter.init(), Nd4j.getRandom());
        }
    }

    @Override
    protected SDVariable linear(SameDiff sd, Projection p, SDVariable x2d, Map<String, SDVariable> params) {
        AdapterModule m = module(p);
        moduleInputVariables().put(m.name(), x2d.name());
        return m.forward(sd, x2d, params, loraScale());
    }

    @Override
    public Map<String, String> moduleInputVariables() {
        if (moduleInputVariables == null) {
            moduleInputVariables = new LinkedHashMap<>();
        }
        return moduleInputVariables;
    }

    /** Only A and B train; the pretrained weights, biases and LayerNorms stay frozen. */
    @Override
    public boolean isTrainableParam(String paramName) {
        return AdapterKeys.isTrainable(paramName);
    }

    @Override
    public int getRank() {
        return rank;
    }

    @Override
    public void setRank(int rank) {
        this.rank = rank;
    }

    @Override
    public AdapterSettings getAdapter() {
        return adapter;
    }

    @Override
    public boolean equals(Object o) {
        return super.equals(o) && rank == ((PriLoraBertBlock) o).rank && adapter.equals(((PriLoraBertBlock) o).adapter);
    }

    @Override
    public int hashCode() {
        return Objects.hash(super.hashCode(), rank, adapter);
    }

    /** Builder: the block sizes ({@link BertBlock.AbstractBuilder}) plus the rank and the adapter settings. */
    public static class Builder extends AbstractBuilder<Builder> {
        private int rank = 8;
        private AdapterSettings adapter = AdapterSettings.defaults();

        /** Adapter rank of every module, in [1, min(hidden, intermediate)]. */
        public Builder rank(int rank) {
            this.rank = rank;
            return this;
        }

        /** Alpha, scaling, pruning mode and A init (default {@link AdapterSettings#defaults()}; no adapter dropout). */
        public Builder adapter(AdapterSettings adapter) {
            this.adapter = Objects.requireNonNull(adapter, "adapter");
            return this;
        }

        @Override
        @SuppressWarnings("unchecked")
        public PriLoraBertBlock build() {
            if (rank < 1) {
                throw new IllegalArgumentException("rank: expected >= 1, got " + rank);
            }
            if (adapter.loraDropout() > 0) {
                throw new IllegalArgumentException("adapter.loraDropout: expected 0 (PriLoraBertBlock has no adapter dropout), got "
                        + adapter.loraDropout());
            }
            validateSizes(rank);
            return new PriLoraBertBlock(this);
        }
    }
}
