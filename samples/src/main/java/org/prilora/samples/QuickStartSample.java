package org.prilora.samples;

import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.evaluation.classification.Evaluation;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.prilora.layers.PriLoraDense;
import org.prilora.layers.PriLoraRanks;
import org.prilora.PriLoraListener;
import org.prilora.ModuleFigures;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;

/**
 * The smallest complete PRILoRA program: a network built with DL4J's standard builder where dense layers
 * are {@link PriLoraDense}, ranks 2 → 8 by depth, trained with the {@link PriLoraListener} on a generated
 * nonlinear task (two interleaved spirals). The frozen weights stay random, so only the adapters and the
 * head learn. Run: {@code mvn -q -pl samples exec:exec -Dsample.main=org.prilora.samples.QuickStartSample}.
 */
public final class QuickStartSample {

    private QuickStartSample() {
    }

    public static void main(String[] args) {
        Nd4j.getRandom().setSeed(42);
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder()
                .seed(42).dataType(DataType.FLOAT).updater(new Adam(1e-2))
                .list()
                .layer(new PriLoraDense.Builder().nOut(64).activation(Activation.TANH).alpha(16).build())
                .layer(new PriLoraDense.Builder().nOut(64).activation(Activation.TANH).alpha(16).build())
                .layer(new PriLoraDense.Builder().nOut(64).activation(Activation.TANH).alpha(16).build())
                .layer(new OutputLayer.Builder().nOut(2).activation(Activation.SOFTMAX)
                        .lossFunction(LossFunctions.LossFunction.MCXENT).build())
                .setInputType(InputType.feedForward(2))
                .build();
        int[] ranks = PriLoraRanks.apply(conf, RankSchedule.linear(2, 8));
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        PriLoraListener listener = new PriLoraListener(PruningSchedule.builder()
                .fraction(0.25).interval(20).startStep(50).build());
        net.setListeners(listener);

        DataSet train = spirals(2000, 1);
        DataSet test = spirals(1000, 2);
        System.out.printf("PRILoRA quick start: ranks %s, %d trainable of %d parameters%n",
                java.util.Arrays.toString(ranks), trainable(net), net.numParams());
        for (int epoch = 1; epoch <= 30; epoch++) {
            train.shuffle(epoch);
            for (DataSet batch : train.batchBy(100)) {
                net.fit(batch);
            }
            if (epoch % 10 == 0) {
                Evaluation eval = net.evaluate(new org.nd4j.linalg.dataset.adapter.SingletonDataSetIterator(test));
                System.out.printf("epoch %2d  loss %.4f  test accuracy %.3f%n", epoch, net.score(), eval.accuracy());
            }
        }
        System.out.println("Adapted projections after training (pruning steps run: " + listener.getPruningStepsDone() + "):");
        for (ModuleFigures f : PriLoraListener.figures(net)) {
            System.out.println("  " + f);
        }
    }

    private static long trainable(MultiLayerNetwork net) {
        long n = 0;
        for (var l : net.getLayers()) {
            for (var e : l.paramTable().entrySet()) {
                if (!(l.conf().getLayer().getUpdaterByParam(e.getKey()) instanceof org.nd4j.linalg.learning.config.NoOp)) {
                    n += e.getValue().length();
                }
            }
        }
        return n;
    }

    /** Two interleaved spirals with noise, labels one-hot. */
    static DataSet spirals(int n, long seed) {
        java.util.Random r = new java.util.Random(seed);
        INDArray x = Nd4j.zeros(DataType.FLOAT, n, 2);
        INDArray y = Nd4j.zeros(DataType.FLOAT, n, 2);
        for (int i = 0; i < n; i++) {
            int c = i % 2;
            double t = 0.25 + 1.5 * r.nextDouble();
            double angle = t * Math.PI + c * Math.PI;
            x.putScalar(i, 0, t * Math.cos(angle) / 1.75 + 0.03 * r.nextGaussian());
            x.putScalar(i, 1, t * Math.sin(angle) / 1.75 + 0.03 * r.nextGaussian());
            y.putScalar(i, c, 1.0);
        }
        return new DataSet(x, y);
    }
}
