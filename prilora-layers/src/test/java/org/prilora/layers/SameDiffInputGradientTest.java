package org.prilora.layers;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.RnnOutputLayer;
import org.deeplearning4j.nn.conf.layers.SelfAttentionLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.lossfunctions.LossFunctions;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * The input gradient of a SameDiff-defined layer against central finite differences of {@code sum(out ⊙ ε)},
 * outside any network. DL4J M2.1's own SameDiffLayer runtime doubles it; ours must not.
 */
class SameDiffInputGradientTest {

    @BeforeAll
    static void doublePrecision() {
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    }

    /** analytic / numeric input-gradient ratio at a few positions (1.0 when right). */
    private static double[] ratios(org.deeplearning4j.nn.conf.layers.Layer layerConf) {
        MultiLayerNetwork net = TestNets.init(TestNets.base(DataType.DOUBLE).updater(new NoOp()).list()
                .layer(layerConf)
                .layer(new RnnOutputLayer.Builder().nOut(3).activation(Activation.SOFTMAX).lossFunction(LossFunctions.LossFunction.MCXENT).build())
                .setInputType(InputType.recurrent(4)).build());
        net.initGradientsView();
        TestNets.randomizeAdapters(net.getLayers(), 2);
        Layer l = net.getLayer(0);
        INDArray x = Nd4j.rand(DataType.DOUBLE, 2, 4, 3);
        INDArray eps = Nd4j.rand(DataType.DOUBLE, 2, 6, 3);
        LayerWorkspaceMgr ws = LayerWorkspaceMgr.noWorkspaces();
        l.setInput(x, ws);
        l.activate(true, ws);
        INDArray dx = l.backpropGradient(eps, ws).getSecond().dup();
        int[][] at = {{0, 1, 2}, {1, 3, 0}, {0, 0, 0}, {1, 2, 1}};
        double[] r = new double[at.length];
        double h = 1e-6;
        for (int k = 0; k < at.length; k++) {
            INDArray xp = x.dup();
            xp.putScalar(at[k], x.getDouble(at[k]) + h);
            INDArray xm = x.dup();
            xm.putScalar(at[k], x.getDouble(at[k]) - h);
            double fp = l.activate(xp, false, ws).mul(eps).sumNumber().doubleValue();
            double fm = l.activate(xm, false, ws).mul(eps).sumNumber().doubleValue();
            r[k] = dx.getDouble(at[k]) / ((fp - fm) / (2 * h));
        }
        return r;
    }

    @Test
    void priLoraAttentionInputGradientMatchesFiniteDifferences() {
        for (double r : ratios(new PriLoraSelfAttention.Builder().nIn(4).nOut(6).nHeads(2).rank(2).build())) {
            assertThat(r).isCloseTo(1.0, within(1e-6));
        }
    }

    @Test
    void dl4jOwnSelfAttentionLayerGradientIsDoubledInM21() {
        // Documents the DL4J bug worked around in PriLoraSameDiffRuntime; if this fails, DL4J fixed it.
        for (double r : ratios(new SelfAttentionLayer.Builder().nIn(4).nOut(6).nHeads(2).projectInput(true).build())) {
            assertThat(r).isCloseTo(2.0, within(1e-6));
        }
    }
}
