package org.prilora.layers;

import org.deeplearning4j.gradientcheck.GradientCheckUtil;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.RnnOutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.lossfunctions.LossFunctions;

import java.util.HashSet;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/** The full fine-tuning baseline mode of the SameDiff PRILoRA layers: base weights train, adapters are bypassed. */
class FullFineTuneModeTest {

    @Test
    void baseWeightsGetCorrectGradientsAndAdaptersNone() {
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
        MultiLayerNetwork net = TestNets.init(TestNets.base(DataType.DOUBLE).updater(new NoOp()).list()
                .layer(new PriLoraSelfAttention.Builder().nIn(4).nOut(4).nHeads(2).rank(2).fullFineTune(true).build())
                .layer(new RnnOutputLayer.Builder().nOut(2).activation(Activation.SOFTMAX).lossFunction(LossFunctions.LossFunction.MCXENT).build())
                .setInputType(InputType.recurrent(4)).build());
        TestNets.randomizeAdapters(net.getLayers(), 1); // non-zero B: still bypassed
        INDArray x = Nd4j.rand(DataType.DOUBLE, 2, 4, 3);
        INDArray y = Nd4j.zeros(DataType.DOUBLE, 2, 2, 3);
        for (int b = 0; b < 2; b++) for (int t = 0; t < 3; t++) y.putScalar(b, (b + t) % 2, t, 1.0);
        Set<String> adapters = new HashSet<>();
        for (String p : new String[]{"q", "k", "v", "o"}) {
            adapters.add("0_" + p + "loraA");
            adapters.add("0_" + p + "loraB");
            adapters.add("0_" + p + "xnorm");
        }
        assertThat(GradientCheckUtil.checkGradients(new GradientCheckUtil.MLNConfig().net(net).input(x).labels(y).excludeParams(adapters))).isTrue();
        net.computeGradientAndScore();
        assertThat(net.gradient().getGradientFor("0_qloraA").sumNumber().doubleValue()).isZero();
        assertThat(net.gradient().getGradientFor("0_qW").norm2Number().doubleValue()).isPositive();
    }
}
