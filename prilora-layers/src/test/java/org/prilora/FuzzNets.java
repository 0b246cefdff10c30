package org.prilora;

import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.PruningMode;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;
import org.prilora.layers.TestNets;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The small real network the adapter-file and PEFT fuzz tests load into, the adapters their seed inputs were made
 * from, and the framing that packs two fuzzed files into one input. The base is seeded, so its weights (and the
 * CRCs the seed files record) are the same in every run.
 */
final class FuzzNets {
    private FuzzNets() {
    }

    /** fc1 (6→8) and fc2 (8→4) adaptable, head (4→3) an output layer with parameters. */
    static MultiLayerNetwork base() {
        return TestNets.init(TestNets.base(DataType.FLOAT).list()
                .layer(new DenseLayer.Builder().name("fc1").nIn(6).nOut(8).activation(Activation.TANH).build())
                .layer(new DenseLayer.Builder().name("fc2").nIn(8).nOut(4).activation(Activation.RELU).build())
                .layer(new OutputLayer.Builder().name("head").nIn(4).nOut(3).activation(Activation.SOFTMAX)
                        .lossFunction(LossFunctions.LossFunction.MCXENT).build())
                .build());
    }

    /** The configuration the seed adapters were made with. */
    static PriLoraConfig config(PruningMode mode) {
        return PriLoraConfig.builder().rankSchedule(RankSchedule.linear(2, 3)).alpha(4).pruningMode(mode)
                .targetTypes("DenseLayer").modulesToSave("head").pruning(PruningSchedule.none()).seed(3).build();
    }

    /** {@link #base()} adapted with {@link #config}, with non-zero adapters. */
    static MultiLayerNetwork adapted(PruningMode mode) {
        MultiLayerNetwork adapted = PriLora.adapt(base(), config(mode));
        TestNets.randomizeAdapters(adapted.getLayers(), 5);
        return adapted;
    }

    /** A fixed input batch for the forward pass that every loaded network must survive. */
    static INDArray input() {
        return Nd4j.createFromArray(new float[][]{{-1f, -0.6f, -0.2f, 0.2f, 0.6f, 1f}, {0.5f, 0.25f, 0f, -0.25f, -0.5f, 2f}});
    }

    /** The values as float32 in C order, for comparisons in which NaN equals NaN (file data may hold any bits). */
    static float[] floats(INDArray a) {
        return a.castTo(DataType.FLOAT).dup('c').data().asFloat();
    }

    /** What of a network must never change: its parameters and its configuration. */
    record Snapshot(INDArray params, String conf) {
        static Snapshot of(MultiLayerNetwork net) {
            return new Snapshot(net.params().dup(), net.getLayerWiseConfigurations().toJson());
        }

        void assertUnchanged(MultiLayerNetwork net) {
            assertThat(floats(net.params())).as("base parameters").isEqualTo(floats(params));
            assertThat(net.getLayerWiseConfigurations().toJson()).as("base configuration").isEqualTo(conf);
        }
    }

    /** Two files in one fuzz input: a 2-byte big-endian length, the first file, then the second file. */
    static byte[] join(byte[] first, byte[] second) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(first.length >>> 8);
        out.write(first.length);
        out.writeBytes(first);
        out.writeBytes(second);
        return out.toByteArray();
    }

    /** Undoes {@link #join}; a length past the end takes everything for the first file. */
    static byte[][] split(byte[] data) {
        if (data.length < 2) {
            return new byte[][]{data, new byte[0]};
        }
        int n = Math.min(Short.toUnsignedInt(ByteBuffer.wrap(data, 0, 2).getShort()), data.length - 2);
        return new byte[][]{Arrays.copyOfRange(data, 2, 2 + n), Arrays.copyOfRange(data, 2 + n, data.length)};
    }
}
