package org.prilora.layers;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.samediff.SDLayerParams;
import org.deeplearning4j.nn.conf.layers.samediff.SameDiffLayer;
import org.deeplearning4j.optimize.api.TrainingListener;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.config.AdapterSettings;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Base of SameDiff-defined PRILoRA layers ({@link PriLoraSelfAttention}; a user's own attention variant): it holds
 * the rank and the {@link AdapterSettings}, declares and initialises each {@link AdapterModule}'s parameters (W by a
 * Xavier-style default, then {@link AdapterModule#initState}), trains only A and B, and offers {@link #adaptedLinear} to subclasses, which also records the module's input variable
 * for the statistics the runtime measures.
 */
public abstract class AbstractPriLoraSameDiffLayer extends GraphLayer implements PriLoraGraphLayer {
    private static final long serialVersionUID = 1L;

    /** Module name → name of the graph variable holding that module's 2-D input; filled by {@link #adaptedLinear}. */
    private transient Map<String, String> moduleInputVariables = new LinkedHashMap<>();

    protected int rank = 8;
    protected AdapterSettings adapter = AdapterSettings.defaults();

    protected AbstractPriLoraSameDiffLayer() {
    }

    protected AbstractPriLoraSameDiffLayer(AdapterBuilder<?> b) {
        super(b);
        this.rank = b.rank;
        this.adapter = b.adapter;
    }

    /**
     * For each module, the name of the graph variable that is its 2-D input {@code [mb·T, nIn]} (rows b·T + t), as
     * recorded by {@link #adaptedLinear} while the layer was last defined.
     */
    @Override
    public Map<String, String> moduleInputVariables() {
        if (moduleInputVariables == null) {
            moduleInputVariables = new LinkedHashMap<>();
        }
        return moduleInputVariables;
    }

    @Override
    public void defineParameters(SDLayerParams params) {
        for (AdapterModule m : adapterModules()) {
            m.declare(params);
        }
    }

    @Override
    public void initializeParameters(Map<String, INDArray> params) {
        for (AdapterModule m : adapterModules()) {
            INDArray w = params.get(m.weightKey());
            // Xavier-style default for a from-scratch layer; converted models overwrite W with pretrained weights.
            w.assign(Nd4j.randn(w.dataType(), w.shape()).muli(Math.sqrt(2.0 / (m.nIn() + m.nOut()))));
            if (m.biasKey() != null) {
                params.get(m.biasKey()).assign(0);
            }
            m.initState(params::get, adapter.init(), Nd4j.getRandom());
        }
    }

    /**
     * The adapted projection {@code x·W + b + s·(x·(A⊙M)ᵀ)·Bᵀ} of a 2-D input {@code [N, nIn]} whose rows are
     * ordered b·T + t (so the DL4J mask {@code [mb, T]} flattened in 'c' order marks its real rows). Records
     * {@code x2d} as the module's input for the statistics.
     */
    protected SDVariable adaptedLinear(SameDiff sd, AdapterModule m, SDVariable x2d, Map<String, SDVariable> params) {
        moduleInputVariables().put(m.name(), x2d.name());
        return m.forward(sd, x2d, params, loraScale());
    }

    @Override
    public Layer instantiate(NeuralNetConfiguration conf, Collection<TrainingListener> trainingListeners, int layerIndex,
                             INDArray layerParamsView, boolean initializeParams, DataType networkDataType) {
        for (AdapterModule m : adapterModules()) {
            PriLoraDense.validateRank(AdapterKeys.describe(this, layerIndex) + (m.name().isEmpty() ? "" : " module " + m.name()),
                    m.rank(), m.nIn(), m.nOut());
        }
        return super.instantiate(conf, trainingListeners, layerIndex, layerParamsView, initializeParams, networkDataType);
    }

    /** Only A and B train; the frozen base, the statistics and the masks do not. */
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

    /** Builder fields shared by the SameDiff-defined PRILoRA layers: the rank and the adapter settings. */
    @SuppressWarnings("unchecked")
    public abstract static class AdapterBuilder<T extends AdapterBuilder<T>> extends SameDiffLayer.Builder<T> {
        protected int rank = 8;
        protected AdapterSettings adapter = AdapterSettings.defaults();

        /** Adapter rank r (one rank for every module of the layer), at least 1. */
        public T rank(int rank) {
            this.rank = rank;
            return (T) this;
        }

        /** Alpha, scaling, pruning mode, A init of every module (default {@link AdapterSettings#defaults()}). */
        public T adapter(AdapterSettings adapter) {
            this.adapter = Objects.requireNonNull(adapter, "adapter");
            return (T) this;
        }

        /** Checks the rank and that the layer has no adapter dropout (SameDiff-defined layers do not apply it). */
        protected void validateAdapterFields() {
            PriLoraDense.validateRank(rank);
            if (adapter.loraDropout() > 0) {
                throw new IllegalArgumentException("adapter.loraDropout: expected 0 for a SameDiff-defined PRILoRA layer "
                        + "(only PriLoraDense applies adapter dropout), got " + adapter.loraDropout());
            }
        }
    }
}
