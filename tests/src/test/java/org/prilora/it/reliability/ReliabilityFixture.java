package org.prilora.it.reliability;

import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
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
import org.prilora.PriLora;
import org.prilora.config.PriLoraConfig;
import org.prilora.PriLoraListener;
import org.prilora.config.PruningMode;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;

/** The model, data and schedule shared by the resume, determinism and fault-injection tests (and their worker JVMs). */
final class ReliabilityFixture {
    private ReliabilityFixture() {
    }

    /** Prunes at steps 3, 6, 9, …: every resume point in the tests straddles a pruning step. */
    static final PruningSchedule SCHEDULE = PruningSchedule.builder().fraction(0.25).interval(3).startStep(3)
            .emaBeta(0.8).build();

    static PriLoraConfig config() {
        return PriLoraConfig.builder().rankSchedule(RankSchedule.linear(2, 6)).alpha(8).pruningMode(PruningMode.PERSISTENT_MASK).modulesToSave("head")
                .pruning(SCHEDULE).seed(11).build();
    }

    /** A base MLP initialised from a fixed seed, adapted with {@link #config()}. */
    static MultiLayerNetwork adaptedNet() {
        MultiLayerNetwork base = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(1234).dataType(DataType.FLOAT)
                .updater(new Adam(5e-3)).list()
                .layer(new DenseLayer.Builder().name("fc1").nIn(12).nOut(48).activation(Activation.RELU).build())
                .layer(new DenseLayer.Builder().name("fc2").nIn(48).nOut(48).activation(Activation.TANH).build())
                .layer(new DenseLayer.Builder().name("fc3").nIn(48).nOut(24).activation(Activation.TANH).build())
                .layer(new OutputLayer.Builder().name("head").nIn(24).nOut(3).activation(Activation.SOFTMAX)
                        .lossFunction(LossFunctions.LossFunction.MCXENT).build())
                .build());
        base.init();
        return PriLora.adapt(base, config());
    }

    /** Batch {@code i} (1-based step), the same in every JVM. */
    static DataSet batch(int step) {
        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(1000 + step);
        INDArray x = Nd4j.rand(rng, 16, 12).castTo(DataType.FLOAT);
        INDArray y = Nd4j.zeros(DataType.FLOAT, 16, 3);
        for (int i = 0; i < 16; i++) {
            y.putScalar(i, (int) Math.floor(x.getDouble(i, 0) * 2.999), 1.0);
        }
        return new DataSet(x, y);
    }

    /** Trains from the model's current iteration up to {@code lastStep} (inclusive) with a fresh listener. */
    static void trainTo(MultiLayerNetwork net, int lastStep) {
        net.setListeners(new PriLoraListener(SCHEDULE));
        for (int step = net.getIterationCount() + 1; step <= lastStep; step++) {
            net.fit(batch(step));
        }
    }
}
