package org.prilora.examples;

import org.deeplearning4j.datasets.iterator.utilty.ListDataSetIterator;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.dataset.adapter.SingletonDataSetIterator;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.prilora.PriLora;
import org.prilora.PriLoraListener;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;
import org.prilora.layers.PriLoraDense;
import org.prilora.layers.PriLoraRanks;

import java.util.Arrays;

/**
 * The smallest complete PRILoRA program (README "Quick start"): a network built with DL4J's standard builder where
 * the dense layers are {@link PriLoraDense}, ranks 2 → 8 by depth, trained with the {@link PriLoraListener} on
 * {@link Spirals}. The frozen weights stay random, so only the adapters and the head learn.
 * Run: {@code mvn -B -q -pl samples/examples initialize exec:exec} (the module's default program).
 */
public final class QuickStartSample {

    private QuickStartSample() {
    }

    /**
     * Trains for 30 epochs and prints the result.
     *
     * @param args none
     */
    public static void main(String[] args) {
        MultiLayerNetwork net = train(30);
        System.out.println("Adapted projections after training:");
        PriLoraListener.figures(net).forEach(f -> System.out.println("  " + f));   // rank, A sparsity, x̄
    }

    /**
     * Builds the network, trains it and prints its test accuracy.
     *
     * @param epochs passes over the 2,000 training points (20 steps each)
     * @return the trained network
     */
    static MultiLayerNetwork train(int epochs) {
        Nd4j.getRandom().setSeed(42);
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder()
                .seed(42).dataType(DataType.FLOAT).updater(new Adam(1e-2))
                .list()
                .layer(new PriLoraDense.Builder().nOut(64).activation(Activation.TANH).build())
                .layer(new PriLoraDense.Builder().nOut(64).activation(Activation.TANH).build())
                .layer(new PriLoraDense.Builder().nOut(64).activation(Activation.TANH).build())
                .layer(new OutputLayer.Builder().nOut(2).activation(Activation.SOFTMAX)
                        .lossFunction(LossFunctions.LossFunction.MCXENT).build())
                .setInputType(InputType.feedForward(2))
                .build();
        int[] ranks = PriLoraRanks.apply(conf, RankSchedule.linear(2, 8));   // ranks 2, 5, 8 by depth
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        PriLoraListener listener = new PriLoraListener(PruningSchedule.builder()
                .fraction(0.25).interval(20).startStep(50).build());
        net.setListeners(listener);
        System.out.printf("PRILoRA quick start: ranks %s, %,d trainable of %,d parameters%n",
                Arrays.toString(ranks), PriLora.summary(net).trainableParams(), net.numParams());

        DataSet train = Spirals.generate(2000, 1);
        DataSet test = Spirals.generate(1000, 2);
        net.fit(new ListDataSetIterator<>(train.asList(), 100), epochs);
        double accuracy = net.evaluate(new SingletonDataSetIterator(test)).accuracy();
        System.out.printf("%d epochs: loss %.4f, test accuracy %.3f, pruning steps %d%n",
                epochs, net.score(), accuracy, listener.getPruningStepsDone());
        return net;
    }
}
