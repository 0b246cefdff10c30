package org.prilora.bert;

import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.gradient.DefaultGradient;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.layers.samediff.SameDiffLayer;
import org.deeplearning4j.nn.workspace.ArrayType;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.array.SingleThreadArrayHolder;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Runtime of {@link BertEmbeddings}. Differs from DL4J's {@code SameDiffLayer} in two ways: the input placeholder
 * has a dynamic batch and sequence length (DL4J fixes the sequence length of the first batch), and backprop runs no
 * SameDiff graph at all: every parameter is frozen and the input holds discrete ids, so parameter gradients stay
 * zero and the gradient passed below is zero.
 */
public class BertEmbeddingsRuntime extends SameDiffLayer {
    private static final long serialVersionUID = 1L;

    public BertEmbeddingsRuntime(NeuralNetConfiguration conf, DataType dataType) {
        super(conf, dataType);
    }

    @Override
    protected void doInit() {
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            BertEmbeddings bl = (BertEmbeddings) layerConf();
            sameDiff = SameDiff.create();
            sameDiff.setArrayHolders(new SingleThreadArrayHolder(), new SingleThreadArrayHolder(), false);
            SDVariable inputVar = sameDiff.placeHolder(INPUT_KEY, dataType, -1, input.size(1), -1);
            Map<String, long[]> shapes = bl.getLayerParams().getParamShapes();
            Map<String, SDVariable> params = new LinkedHashMap<>();
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                params.put(e.getKey(), sameDiff.var(e.getKey(), dataType, e.getValue()));
            }
            SDVariable mask = sameDiff.placeHolder(MASK_KEY, dataType, -1, -1);
            outputVar = bl.defineLayer(sameDiff, inputVar, params, mask);
            for (Map.Entry<String, INDArray> e : paramTable().entrySet()) {
                sameDiff.associateArrayWithVariable(e.getValue(), sameDiff.getVariable(e.getKey()));
            }
            outputKey = outputVar.name();
        }
    }

    @Override
    public Pair<Gradient, INDArray> backpropGradient(INDArray epsilon, LayerWorkspaceMgr workspaceMgr) {
        assertInputSet(true);
        Gradient g = new DefaultGradient();
        for (String key : paramTable.keySet()) {
            g.gradientForVariable().put(key, gradTable.get(key)); // never written: stays zero
        }
        INDArray dLdIn = workspaceMgr.create(ArrayType.ACTIVATION_GRAD, input.dataType(), input.shape(), 'c');
        dLdIn.assign(0);
        return new Pair<>(g, dLdIn);
    }
}
