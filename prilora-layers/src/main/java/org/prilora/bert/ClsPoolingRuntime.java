package org.prilora.bert;

import org.deeplearning4j.nn.api.MaskState;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.gradient.DefaultGradient;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.layers.AbstractLayer;
import org.deeplearning4j.nn.workspace.ArrayType;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.Arrays;

/** Runtime of {@link ClsPooling}. */
public class ClsPoolingRuntime extends AbstractLayer<ClsPooling> {
    private static final long serialVersionUID = 1L;

    public ClsPoolingRuntime(NeuralNetConfiguration conf, DataType dataType) {
        super(conf, dataType);
    }

    @Override
    public INDArray activate(boolean training, LayerWorkspaceMgr workspaceMgr) {
        assertInputSet(false);
        if (input.rank() != 3) {
            throw new IllegalArgumentException("ClsPooling '" + layerConf().getLayerName() + "': expected NCW input [mb, hidden, T],"
                    + " got shape " + Arrays.toString(input.shape()));
        }
        INDArray cls = input.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.point(0));
        return workspaceMgr.dup(ArrayType.ACTIVATIONS, cls, 'c');
    }

    @Override
    public Pair<Gradient, INDArray> backpropGradient(INDArray epsilon, LayerWorkspaceMgr workspaceMgr) {
        assertInputSet(true);
        INDArray dLdIn = workspaceMgr.create(ArrayType.ACTIVATION_GRAD, input.dataType(), input.shape(), 'c');
        dLdIn.assign(0);
        dLdIn.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.point(0)).assign(epsilon);
        return new Pair<>(new DefaultGradient(), dLdIn);
    }

    @Override
    public Pair<INDArray, MaskState> feedForwardMaskArray(INDArray maskArray, MaskState currentMaskState, int minibatchSize) {
        this.maskArray = maskArray;
        return new Pair<>(null, currentMaskState); // the time axis is gone
    }

    @Override
    public boolean isPretrainLayer() {
        return false;
    }

    @Override
    public void clearNoiseWeightParams() {
        // no parameters
    }

    @Override
    public Type type() {
        return Type.FEED_FORWARD;
    }
}
