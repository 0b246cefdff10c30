package org.prilora;

import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.prilora.config.PriLoraConfig;
import org.prilora.layers.TestNets;
import org.prilora.config.PruningMode;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;

/** Small "pretrained" models and data shared by the conversion and adapter-file tests. */
public final class TestModels {
    private TestModels() {
    }

    /** A "pretrained" MLP: trained a few steps so its weights are not at initialisation. */
    public static MultiLayerNetwork pretrainedMlp() {
        MultiLayerNetwork net = TestNets.init(TestNets.base(DataType.FLOAT).updater(new Adam(1e-2)).list()
                .layer(new DenseLayer.Builder().name("fc1").nIn(10).nOut(32).activation(Activation.RELU).build())
                .layer(new DenseLayer.Builder().name("fc2").nIn(32).nOut(32).activation(Activation.TANH).build())
                .layer(new DenseLayer.Builder().name("fc3").nIn(32).nOut(16).activation(Activation.GELU).build())
                .layer(new OutputLayer.Builder().name("head").nIn(16).nOut(3).activation(Activation.SOFTMAX)
                        .lossFunction(LossFunctions.LossFunction.MCXENT).build())
                .build());
        for (int i = 0; i < 5; i++) {
            net.fit(data(i));
        }
        return net;
    }

    public static DataSet data(long seed) {
        Nd4j.getRandom().setSeed(seed);
        INDArray x = Nd4j.rand(DataType.FLOAT, 32, 10);
        INDArray y = Nd4j.zeros(DataType.FLOAT, 32, 3);
        for (int i = 0; i < 32; i++) y.putScalar(i, (int) ((x.getDouble(i, 0) + x.getDouble(i, 1)) * 1.5) % 3, 1.0);
        return new DataSet(x, y);
    }

    public static PriLoraConfig config(PruningMode mode) {
        return PriLoraConfig.builder().rankSchedule(RankSchedule.linear(2, 6)).alpha(8).pruningMode(mode).targetTypes("DenseLayer")
                .targetModules("fc[23]").modulesToSave("head")
                .pruning(PruningSchedule.builder().fraction(0.25).interval(2).startStep(2).build()).seed(7).build();
    }

}
