package org.prilora.bert;

import org.deeplearning4j.nn.api.ParamInitializer;
import org.deeplearning4j.nn.conf.InputPreProcessor;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.RNNFormat;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.NoParamLayer;
import org.deeplearning4j.nn.conf.memory.LayerMemoryReport;
import org.deeplearning4j.nn.params.EmptyParamInitializer;
import org.deeplearning4j.optimize.api.TrainingListener;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Collection;

/**
 * Picks the {@code [CLS]} vector (time step 0) of NCW input {@code [mb, hidden, T]}: output {@code [mb, hidden]}.
 * No parameters; the gradient reaches step 0 only. The feature mask ends here, as after DL4J's global pooling.
 */
public class ClsPooling extends NoParamLayer {
    private static final long serialVersionUID = 1L;

    /** For JSON deserialization and the builder. */
    protected ClsPooling() {
    }

    protected ClsPooling(Builder b) {
        super(b);
    }

    @Override
    public org.deeplearning4j.nn.api.Layer instantiate(NeuralNetConfiguration conf, Collection<TrainingListener> listeners,
                                                       int layerIndex, INDArray params, boolean initializeParams,
                                                       DataType networkDataType) {
        ClsPoolingRuntime r = new ClsPoolingRuntime(conf, networkDataType);
        r.setListeners(listeners);
        r.setIndex(layerIndex);
        r.setParamsViewArray(params);
        r.setParamTable(initializer().init(conf, params, initializeParams));
        r.setConf(conf);
        return r;
    }

    @Override
    public ParamInitializer initializer() {
        return EmptyParamInitializer.getInstance();
    }

    @Override
    public InputType getOutputType(int layerIndex, InputType inputType) {
        if (!(inputType instanceof InputType.InputTypeRecurrent)
                || ((InputType.InputTypeRecurrent) inputType).getFormat() != RNNFormat.NCW) {
            throw new IllegalStateException("ClsPooling '" + getLayerName() + "': expected NCW recurrent input [mb, hidden, T]"
                    + " (the encoder's output), got " + inputType);
        }
        return InputType.feedForward(((InputType.InputTypeRecurrent) inputType).getSize());
    }

    @Override
    public InputPreProcessor getPreProcessorForInputType(InputType inputType) {
        return null;
    }

    @Override
    public LayerMemoryReport getMemoryReport(InputType inputType) {
        return new LayerMemoryReport.Builder(layerName, ClsPooling.class, inputType, getOutputType(-1, inputType))
                .standardMemory(0, 0).workingMemory(0, 0, 0, 0).cacheMemory(0, 0).build();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ClsPooling && super.equals(o);
    }

    @Override
    public int hashCode() {
        return super.hashCode();
    }

    /** Builder. */
    public static class Builder extends org.deeplearning4j.nn.conf.layers.Layer.Builder<Builder> {
        @Override
        @SuppressWarnings("unchecked")
        public ClsPooling build() {
            return new ClsPooling(this);
        }
    }
}
