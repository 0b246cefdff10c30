package org.prilora.layers;

import org.deeplearning4j.nn.api.ParamInitializer;
import org.deeplearning4j.nn.conf.InputPreProcessor;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.RNNFormat;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.FeedForwardLayer;
import org.deeplearning4j.nn.conf.layers.LayerValidation;
import org.deeplearning4j.nn.conf.memory.LayerMemoryReport;
import org.deeplearning4j.nn.conf.memory.MemoryReport;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.optimize.api.TrainingListener;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.learning.regularization.Regularization;
import org.prilora.config.AdapterSettings;

import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * A drop-in for DL4J's {@code DenseLayer} whose weight {@code W} and bias {@code b} are frozen and which
 * trains a LoRA update {@code s·(x·Aᵀ)·Bᵀ} instead: {@code y = act(x·W + b + s·(x·(A⊙M)ᵀ)·Bᵀ)}.
 *
 * <p>Input is feed-forward {@code [mb, nIn]} or recurrent ({@code NCW [mb, nIn, T]} or {@code NWC [mb, T, nIn]},
 * applied per time step; the output keeps the layout). Parameters: {@code W [nIn,nOut]} and {@code b [1,nOut]}
 * (frozen: no updater state, no regularization, no gradient computed), {@code loraA [r,nIn]} and
 * {@code loraB [nOut,r]} (trainable), {@code xnorm [1,nIn+1]} (input-norm EMA, non-trainable) and, in
 * PERSISTENT_MASK mode, {@code loraM [r,nIn]} (non-trainable). All are saved with the model.
 *
 * <pre>{@code
 * .layer(new PriLoraDense.Builder().nIn(384).nOut(1536).activation(Activation.GELU).rank(8).alpha(16).build())
 * }</pre>
 */
public class PriLoraDense extends FeedForwardLayer implements PriLoraLayer {
    private static final long serialVersionUID = 1L;

    private boolean hasBias = true;
    private int rank = 8;
    private AdapterSettings adapter = AdapterSettings.defaults();
    private RNNFormat rnnDataFormat = RNNFormat.NCW;

    /** For JSON deserialization. */
    protected PriLoraDense() {
    }

    protected PriLoraDense(Builder b) {
        super(b);
        this.hasBias = b.hasBias;
        this.rank = b.rank;
        this.adapter = b.adapter;
        this.rnnDataFormat = b.rnnDataFormat;
        initializeConstraints(b);
    }

    @Override
    public Layer instantiate(NeuralNetConfiguration conf, Collection<TrainingListener> trainingListeners, int layerIndex,
                             INDArray layerParamsView, boolean initializeParams, DataType networkDataType) {
        LayerValidation.assertNInNOutSet("PriLoraDense", getLayerName(), layerIndex, getNIn(), getNOut());
        validateRank(AdapterKeys.describe(this, layerIndex), rank, nIn, nOut);
        PriLoraDenseLayer ret = new PriLoraDenseLayer(conf, networkDataType);
        ret.setListeners(trainingListeners);
        ret.setIndex(layerIndex);
        ret.setParamsViewArray(layerParamsView);
        Map<String, INDArray> paramTable = initializer().init(conf, layerParamsView, initializeParams);
        ret.setParamTable(paramTable);
        ret.setConf(conf);
        return ret;
    }

    /** Checks a rank on its own (before the layer sizes are known). */
    static void validateRank(int rank) {
        if (rank < 1) {
            throw new IllegalArgumentException("rank: expected >= 1, got " + rank);
        }
    }

    /** Checks a rank against the module's sizes; {@code where} names the layer ({@link AdapterKeys#describe}). */
    static void validateRank(String where, int rank, long nIn, long nOut) {
        long max = Math.min(nIn, nOut);
        if (rank < 1 || rank > max) {
            throw new IllegalArgumentException("rank: expected a value in [1, min(nIn, nOut) = " + max + "] for "
                    + where + " (nIn=" + nIn + ", nOut=" + nOut + "), got " + rank);
        }
    }

    @Override
    public ParamInitializer initializer() {
        return PriLoraDenseParamInitializer.getInstance();
    }

    @Override
    public InputType getOutputType(int layerIndex, InputType inputType) {
        if (inputType != null && inputType.getType() == InputType.Type.RNN) {
            InputType.InputTypeRecurrent r = (InputType.InputTypeRecurrent) inputType;
            return InputType.recurrent(nOut, r.getTimeSeriesLength(), r.getFormat());
        }
        return super.getOutputType(layerIndex, inputType);
    }

    @Override
    public void setNIn(InputType inputType, boolean override) {
        super.setNIn(inputType, override);
        if (inputType != null && inputType.getType() == InputType.Type.RNN) {
            this.rnnDataFormat = ((InputType.InputTypeRecurrent) inputType).getFormat();
        }
    }

    @Override
    public InputPreProcessor getPreProcessorForInputType(InputType inputType) {
        if (inputType != null && inputType.getType() == InputType.Type.RNN) {
            return null; // applied per time step, natively
        }
        return super.getPreProcessorForInputType(inputType);
    }

    /** Only A and B are trained; W, b, the statistics and the mask get a no-op updater (and so no state). */
    @Override
    public IUpdater getUpdaterByParam(String paramName) {
        return isTrainableParam(paramName) ? getIUpdater() : new NoOp();
    }

    @Override
    public List<Regularization> getRegularizationByParam(String paramName) {
        return isTrainableParam(paramName) ? getRegularization() : Collections.emptyList();
    }

    @Override
    public LayerMemoryReport getMemoryReport(InputType inputType) {
        InputType outputType = getOutputType(-1, inputType);
        long numParams = initializer().numParams(this);
        long trainable = (long) rank * (nIn + nOut);
        long updaterStateSize = getIUpdater() == null ? 0 : getIUpdater().stateSize(trainable);
        return new LayerMemoryReport.Builder(layerName, PriLoraDense.class, inputType, outputType)
                .standardMemory(numParams, updaterStateSize)
                .workingMemory(0, 0, 0, outputType.arrayElementsPerExample() + rank)
                .cacheMemory(MemoryReport.CACHE_MODE_ALL_ZEROS, MemoryReport.CACHE_MODE_ALL_ZEROS)
                .build();
    }

    @Override
    public List<AdapterModule> adapterModules() {
        return List.of(AdapterKeys.module("", "", hasBias, adapter.hasMask(), nIn, nOut, rank));
    }

    public boolean hasBias() {
        return hasBias;
    }

    public boolean isHasBias() {
        return hasBias;
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

    public RNNFormat getRnnDataFormat() {
        return rnnDataFormat;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof PriLoraDense) || !super.equals(o)) {
            return false;
        }
        PriLoraDense d = (PriLoraDense) o;
        return hasBias == d.hasBias && rank == d.rank && adapter.equals(d.adapter) && rnnDataFormat == d.rnnDataFormat;
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(super.hashCode(), hasBias, rank, adapter, rnnDataFormat);
    }

    /** Builder in the style of {@code DenseLayer.Builder}; {@link #build()} validates every adapter field. */
    public static class Builder extends FeedForwardLayer.Builder<Builder> {
        private boolean hasBias = true;
        private int rank = 8;
        private AdapterSettings adapter = AdapterSettings.defaults();
        private RNNFormat rnnDataFormat = RNNFormat.NCW;

        public Builder hasBias(boolean hasBias) {
            this.hasBias = hasBias;
            return this;
        }

        /** Adapter rank r, in [1, min(nIn, nOut)]. */
        public Builder rank(int rank) {
            this.rank = rank;
            return this;
        }

        /** Alpha, scaling, pruning mode, A init and adapter dropout (default {@link AdapterSettings#defaults()}). */
        public Builder adapter(AdapterSettings adapter) {
            this.adapter = java.util.Objects.requireNonNull(adapter, "adapter");
            return this;
        }

        /** Layout of 3-D input (set automatically from the input type when there is one). */
        public Builder rnnDataFormat(RNNFormat format) {
            this.rnnDataFormat = format;
            return this;
        }

        @Override
        @SuppressWarnings("unchecked")
        public PriLoraDense build() {
            validateRank(rank);
            if (rnnDataFormat == null) {
                throw new IllegalArgumentException("rnnDataFormat: expected NCW or NWC, got null");
            }
            if (nIn > 0 && nOut > 0) {
                validateRank(layerName == null ? "an unnamed PriLoraDense" : "layer '" + layerName + "'", rank, nIn, nOut);
            }
            return new PriLoraDense(this);
        }
    }
}
