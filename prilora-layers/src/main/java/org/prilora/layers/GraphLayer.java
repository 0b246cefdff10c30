package org.prilora.layers;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.RNNFormat;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.samediff.SameDiffLayer;
import org.deeplearning4j.optimize.api.TrainingListener;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.learning.regularization.Regularization;

import java.util.Collection;
import java.util.Collections;
import java.util.List;

/**
 * A SameDiff-defined layer configuration with per-parameter training and a runtime of this project's choosing:
 * parameters for which {@link #isTrainableParam} is false get a no-op updater and no regularization (so they carry no
 * optimizer state and never move), and {@link #createRuntime} picks the runtime ({@link PriLoraSameDiffRuntime} by
 * default, which also gives the right gradients where DL4J M2.1's SameDiff layers double them). Base of the BERT
 * layers and of {@link AbstractPriLoraSameDiffLayer}.
 */
public abstract class GraphLayer extends SameDiffLayer {
    private static final long serialVersionUID = 1L;

    protected GraphLayer() {
    }

    protected GraphLayer(SameDiffLayer.Builder<?> b) {
        super(b);
    }

    /** Whether a parameter is updated by training (every parameter, unless a subclass says otherwise). */
    public boolean isTrainableParam(String paramName) {
        return true;
    }

    /**
     * The recurrent input type, or an error naming this layer and what it expects ({@code expected}, e.g.
     * {@code "recurrent input (InputType.recurrent(hidden))"}); with {@code requireNcw} also the NCW layout.
     */
    protected InputType.InputTypeRecurrent requireRecurrent(InputType inputType, String expected, boolean requireNcw) {
        if (inputType == null || inputType.getType() != InputType.Type.RNN
                || requireNcw && ((InputType.InputTypeRecurrent) inputType).getFormat() != RNNFormat.NCW) {
            throw new IllegalStateException(AdapterKeys.describe(this, -1) + " (" + getClass().getSimpleName() + "): expected "
                    + expected + ", got " + inputType);
        }
        return (InputType.InputTypeRecurrent) inputType;
    }

    /** The runtime layer (the SameDiff graph of {@link #defineLayer} by default). */
    protected org.deeplearning4j.nn.layers.AbstractLayer<?> createRuntime(NeuralNetConfiguration conf, DataType networkDataType) {
        return new PriLoraSameDiffRuntime(conf, networkDataType);
    }

    @Override
    public Layer instantiate(NeuralNetConfiguration conf, Collection<TrainingListener> trainingListeners, int layerIndex,
                             INDArray layerParamsView, boolean initializeParams, DataType networkDataType) {
        org.deeplearning4j.nn.layers.AbstractLayer<?> ret = createRuntime(conf, networkDataType);
        ret.setIndex(layerIndex);
        ret.setListeners(trainingListeners);
        ret.setParamsViewArray(layerParamsView);
        ret.setParamTable(initializer().init(conf, layerParamsView, initializeParams));
        ret.setConf(conf);
        return ret;
    }

    @Override
    public IUpdater getUpdaterByParam(String paramName) {
        return isTrainableParam(paramName) ? super.getUpdaterByParam(paramName) : new NoOp();
    }

    @Override
    public List<Regularization> getRegularizationByParam(String paramName) {
        return isTrainableParam(paramName) ? super.getRegularizationByParam(paramName) : Collections.emptyList();
    }
}
