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
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.learning.regularization.Regularization;
import org.prilora.config.AdapterInit;
import org.prilora.ops.LoraLinear;
import org.prilora.config.ScalingMode;
import org.prilora.config.PruningMode;

import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * Base of the SameDiff-defined PRILoRA layers (attention, transformer blocks). It holds the common adapter
 * settings, declares each {@link AdapterModule}'s parameters, initialises them (W by the layer's weight init,
 * A by {@link AdapterInit}, B = 0, mask = 1, statistics = 0), keeps frozen parameters out of the updater and
 * regularization, and offers {@link #adaptedLinear} to subclasses, which also defines the in-graph input norm
 * that the runtime hands to the listener.
 */
public abstract class AbstractPriLoraSameDiffLayer extends SameDiffLayer implements PriLoraLayer {
    private static final long serialVersionUID = 1L;

    /** Site name → name of the graph variable holding that site's 2-D input; filled by {@link #adaptedLinear}. */
    private transient Map<String, String> siteInputVariables = new java.util.LinkedHashMap<>();

    protected int rank = 8;
    protected double alpha = 16;
    protected ScalingMode scalingMode = ScalingMode.ALPHA_OVER_R;
    protected PruningMode pruningMode = PruningMode.REGROW;
    protected AdapterInit adapterInit = AdapterInit.KAIMING_UNIFORM;
    /** Baseline mode: the base weights train and the adapters are bypassed (full fine-tuning, for comparisons). */
    protected boolean fullFineTune;

    protected AbstractPriLoraSameDiffLayer() {
    }

    protected AbstractPriLoraSameDiffLayer(AdapterBuilder<?> b) {
        super(b);
        this.rank = b.rank;
        this.alpha = b.alpha;
        this.scalingMode = b.scalingMode;
        this.pruningMode = b.pruningMode;
        this.adapterInit = b.adapterInit;
        this.fullFineTune = b.fullFineTune;
    }

    /**
     * For each site, the name of the graph variable that is its 2-D input {@code [mb·T, nIn]} (rows b·T + t), as
     * recorded by {@link #adaptedLinear} while the layer was last defined. The runtime fetches these in training
     * forward passes to measure input norms.
     */
    public Map<String, String> siteInputVariables() {
        if (siteInputVariables == null) {
            siteInputVariables = new java.util.LinkedHashMap<>();
        }
        return siteInputVariables;
    }

    /** Whether a parameter key is a trainable adapter matrix (A or B). */
    public static boolean isTrainableKey(String key) {
        return key.endsWith("loraA") || key.endsWith("loraB");
    }

    /** Which dimension of an input of the given rank holds the features (1 for 2-D and NCW input). */
    public int featureDimension(int inputRank) {
        return 1;
    }

    @Override
    public void defineParameters(SDLayerParams params) {
        for (AdapterModule s : adapterModules()) {
            params.addWeightParam(s.weightKey(), s.nIn(), s.nOut());
            params.addWeightParam(s.aKey(), s.rank(), s.nIn());
            params.addWeightParam(s.bKey(), s.nOut(), s.rank());
            if (s.maskKey() != null) {
                params.addWeightParam(s.maskKey(), s.rank(), s.nIn());
            }
            params.addWeightParam(s.statsKey(), 1, s.nIn() + 1);
            if (s.biasKey() != null) {
                params.addBiasParam(s.biasKey(), 1, s.nOut());
            }
        }
        defineExtraParameters(params);
    }

    /** Subclasses declare parameters that are not adapter sites here (layer norms, embeddings …). */
    protected void defineExtraParameters(SDLayerParams params) {
    }

    @Override
    public void initializeParameters(Map<String, INDArray> params) {
        for (AdapterModule s : adapterModules()) {
            INDArray w = params.get(s.weightKey());
            // Xavier-style default for a from-scratch layer; converted models overwrite W with pretrained weights.
            double std = Math.sqrt(2.0 / (s.nIn() + s.nOut()));
            w.assign(Nd4j.randn(w.dataType(), w.shape()).muli(std));
            if (s.biasKey() != null) {
                params.get(s.biasKey()).assign(0);
            }
            adapterInit.initA(params.get(s.aKey()), Nd4j.getRandom());
            params.get(s.bKey()).assign(0);
            if (s.maskKey() != null) {
                params.get(s.maskKey()).assign(1);
            }
            params.get(s.statsKey()).assign(0);
        }
        initializeExtraParameters(params);
    }

    /** Subclasses initialise their non-adapter parameters here. */
    protected void initializeExtraParameters(Map<String, INDArray> params) {
    }

    /**
     * The adapted projection {@code x·W + b + s·(x·(A⊙M)ᵀ)·Bᵀ} of a 2-D input {@code [N, nIn]} whose rows are
     * ordered b·T + t (so the DL4J mask {@code [mb, T]} flattened in 'c' order marks its real rows). Records
     * {@code x2d} as the site's input for the statistics.
     */
    protected SDVariable adaptedLinear(SameDiff sd, AdapterModule s, SDVariable x2d, Map<String, SDVariable> params) {
        siteInputVariables().put(s.name(), x2d.name());
        if (fullFineTune) {
            SDVariable b = s.biasKey() == null ? sd.zerosLike(params.get(s.weightKey()).get(org.nd4j.autodiff.samediff.SDIndex.point(0)))
                    : params.get(s.biasKey()).reshape(-1);
            return sd.nn.linear(x2d, params.get(s.weightKey()), b);
        }
        return LoraLinear.forward(sd, x2d, params.get(s.weightKey()), s.biasKey() == null ? null : params.get(s.biasKey()),
                params.get(s.aKey()), params.get(s.bKey()), s.maskKey() == null ? null : params.get(s.maskKey()), loraScale());
    }

    @Override
    public Layer instantiate(NeuralNetConfiguration conf, Collection<TrainingListener> trainingListeners, int layerIndex,
                             INDArray layerParamsView, boolean initializeParams, DataType networkDataType) {
        for (AdapterModule s : adapterModules()) {
            PriLoraDense.validateRank(getLayerName() + (s.name().isEmpty() ? "" : "." + s.name()), s.rank(), s.nIn(), s.nOut());
        }
        org.deeplearning4j.nn.layers.samediff.SameDiffLayer ret = createRuntime(conf, networkDataType);
        ret.setIndex(layerIndex);
        ret.setListeners(trainingListeners);
        ret.setParamsViewArray(layerParamsView);
        Map<String, INDArray> paramTable = initializer().init(conf, layerParamsView, initializeParams);
        ret.setParamTable(paramTable);
        ret.setConf(conf);
        return ret;
    }

    /** The runtime layer: the SameDiff graph of {@link #defineLayer} run by {@link PriLoraSameDiffRuntime}. */
    protected org.deeplearning4j.nn.layers.samediff.SameDiffLayer createRuntime(NeuralNetConfiguration conf, DataType networkDataType) {
        return new PriLoraSameDiffRuntime(conf, networkDataType);
    }

    /**
     * Whether a parameter is trained: A and B of every site plus {@link #isTrainableExtra} ones; in
     * {@link #isFullFineTune() full fine-tuning} mode every parameter except the adapters' A, B, masks and statistics.
     */
    public boolean isTrainableParam(String paramName) {
        if (fullFineTune) {
            return !(isTrainableKey(paramName) || paramName.endsWith("loraM") || paramName.endsWith("xnorm"));
        }
        return isTrainableKey(paramName) || isTrainableExtra(paramName);
    }

    public boolean isFullFineTune() {
        return fullFineTune;
    }

    public void setFullFineTune(boolean fullFineTune) {
        this.fullFineTune = fullFineTune;
    }

    @Override
    public IUpdater getUpdaterByParam(String paramName) {
        return isTrainableParam(paramName) ? super.getUpdaterByParam(paramName) : new NoOp();
    }

    @Override
    public List<Regularization> getRegularizationByParam(String paramName) {
        return isTrainableParam(paramName) ? super.getRegularizationByParam(paramName) : Collections.emptyList();
    }

    /** Non-adapter parameters that are trained (none by default: everything pretrained stays frozen). */
    protected boolean isTrainableExtra(String paramName) {
        return false;
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
    public double getAlpha() {
        return alpha;
    }

    public void setAlpha(double alpha) {
        this.alpha = alpha;
    }

    @Override
    public ScalingMode getScalingMode() {
        return scalingMode;
    }

    public void setScalingMode(ScalingMode scalingMode) {
        this.scalingMode = scalingMode;
    }

    @Override
    public PruningMode getPruningMode() {
        return pruningMode;
    }

    public void setPruningMode(PruningMode pruningMode) {
        this.pruningMode = pruningMode;
    }

    @Override
    public AdapterInit getAdapterInit() {
        return adapterInit;
    }

    public void setAdapterInit(AdapterInit adapterInit) {
        this.adapterInit = adapterInit;
    }

    /** Builder fields shared by the SameDiff-defined PRILoRA layers. */
    @SuppressWarnings("unchecked")
    public abstract static class AdapterBuilder<T extends AdapterBuilder<T>> extends SameDiffLayer.Builder<T> {
        protected int rank = 8;
        protected double alpha = 16;
        protected ScalingMode scalingMode = ScalingMode.ALPHA_OVER_R;
        protected PruningMode pruningMode = PruningMode.REGROW;
        protected AdapterInit adapterInit = AdapterInit.KAIMING_UNIFORM;
        protected boolean fullFineTune;

        /** Baseline mode: train the base weights, bypass the adapters (full fine-tuning). */
        public T fullFineTune(boolean full) {
            this.fullFineTune = full;
            return (T) this;
        }

        /** Adapter rank r (one rank for every projection of the layer). */
        public T rank(int rank) {
            this.rank = rank;
            return (T) this;
        }

        /** LoRA alpha (> 0). */
        public T alpha(double alpha) {
            this.alpha = alpha;
            return (T) this;
        }

        public T scalingMode(ScalingMode scalingMode) {
            this.scalingMode = scalingMode;
            return (T) this;
        }

        public T pruningMode(PruningMode pruningMode) {
            this.pruningMode = pruningMode;
            return (T) this;
        }

        public T adapterInit(AdapterInit adapterInit) {
            this.adapterInit = adapterInit;
            return (T) this;
        }

        protected void validateAdapterFields() {
            AdapterConfigValidation.validate(rank, alpha, 0.0, scalingMode, pruningMode, adapterInit);
        }
    }
}
