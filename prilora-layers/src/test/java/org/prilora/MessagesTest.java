package org.prilora;

import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.graph.MergeVertex;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;
import org.prilora.layers.PriLoraDense;
import org.prilora.ops.NonFiniteInputException;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The error and warning texts users meet: each names the right layer or module and says what was expected. */
class MessagesTest {

    private static MultiLayerNetwork unnamedMlp() {
        MultiLayerNetwork net = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(1).updater(new Adam(1e-2)).list()
                .layer(new DenseLayer.Builder().nIn(3).nOut(4).activation(Activation.TANH).build())
                .layer(new DenseLayer.Builder().nIn(4).nOut(4).activation(Activation.TANH).build())
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(4).nOut(2).activation(Activation.SOFTMAX).build())
                .build());
        net.init();
        return net;
    }

    @Test
    void unnamedLayersAreNamedByIndexNeverNull() {
        assertThatThrownBy(() -> new PriLoraDense.Builder().nIn(4).nOut(6).rank(5).build())
                .hasMessageContaining("an unnamed PriLoraDense").hasMessageNotContaining("null");
        assertThatThrownBy(() -> new MultiLayerNetwork(new NeuralNetConfiguration.Builder().list()
                .layer(new DenseLayer.Builder().nOut(4).build())
                .layer(new PriLoraDense.Builder().nOut(3).rank(4).build())
                .setInputType(InputType.feedForward(5)).build()).init())
                .hasMessageContaining("layer1").hasMessageContaining("min(nIn, nOut) = 3").hasMessageNotContaining("null");
    }

    @Test
    void aModuleNameThatMatchesNothingListsTheValidNames() {
        PriLoraConfig cfg = PriLoraConfig.builder().modulesToSave("head").build();
        assertThatThrownBy(() -> PriLora.adapt(unnamedMlp(), cfg))
                .hasMessageContaining("modulesToSave names 'head', which is not a layer of this network")
                .hasMessageContaining("module names are DL4J layer names: [layer0, layer1, layer2]");
        assertThatThrownBy(() -> PriLora.adapt(unnamedMlp(), PriLoraConfig.builder().targetModules("fc\\d").modulesToSave("layer2").build()))
                .hasMessageContaining("no layer matches").hasMessageContaining("'fc\\d'").hasMessageContaining("[layer0, layer1, layer2]");
    }

    /** Two projections read the graph's raw input; the one named is the first in forward order, every time. */
    @Test
    void aNonFiniteRawInputIsReportedAgainstTheFirstModuleInForwardOrder() {
        for (int run = 0; run < 4; run++) {
            ComputationGraphConfiguration conf = new NeuralNetConfiguration.Builder().seed(run).updater(new Adam(1e-2)).graphBuilder()
                    .addInputs("in")
                    .addLayer("zeta", new DenseLayer.Builder().nIn(3).nOut(4).activation(Activation.TANH).build(), "in")
                    .addLayer("alpha", new DenseLayer.Builder().nIn(3).nOut(4).activation(Activation.TANH).build(), "in")
                    .addVertex("both", new MergeVertex(), "zeta", "alpha")
                    .addLayer("head", new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).nIn(8).nOut(2)
                            .activation(Activation.SOFTMAX).build(), "both")
                    .setOutputs("head").build();
            ComputationGraph base = new ComputationGraph(conf);
            base.init();
            PriLoraConfig cfg = PriLoraConfig.builder().rankSchedule(RankSchedule.uniform(2)).targetModules("zeta|alpha")
                    .modulesToSave("head").build();
            ComputationGraph net = PriLora.adapt(base, cfg);
            net.setListeners(PriLora.listener(cfg));
            INDArray x = Nd4j.rand(DataType.FLOAT, 4, 3);
            x.putScalar(2, 1, Double.POSITIVE_INFINITY);
            INDArray y = Nd4j.zeros(DataType.FLOAT, 4, 2).putScalar(0, 0, 1).putScalar(1, 1, 1).putScalar(2, 0, 1).putScalar(3, 1, 1);
            assertThatThrownBy(() -> net.fit(new DataSet(x, y))).isInstanceOf(NonFiniteInputException.class)
                    .hasMessageContaining("the input of module 'zeta' holds NaN or infinity at step 1");
        }
    }

    @Test
    void aScheduleThatPrunesNothingInAModuleWarnsOnceNamingIt() {
        MultiLayerNetwork net = PriLora.adapt(unnamedMlp(), PriLoraConfig.builder().rankSchedule(RankSchedule.uniform(2))
                .modulesToSave("layer2").build());
        PruningSchedule schedule = PruningSchedule.builder().fraction(0.25).interval(1).startStep(1).build();
        net.setListeners(new PriLoraListener(schedule));
        PrintStream err = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            for (int i = 0; i < 3; i++) {
                net.fit(new DataSet(Nd4j.rand(DataType.FLOAT, 5, 3), Nd4j.eye(2).getRows(0, 1, 0, 1, 0)));
            }
        } finally {
            System.setErr(err);
        }
        String log = captured.toString(StandardCharsets.UTF_8);
        String warning = "module 'layer0' has nIn = 3, so pruning fraction 0.25 removes floor(0.25 * 3) = 0 entries per row: its A is never pruned";
        assertThat(log).contains(warning);
        assertThat(log.split(java.util.regex.Pattern.quote(warning), -1)).as("warned once over three pruning steps").hasSize(2);
        assertThat(log).doesNotContain("module 'layer1' has nIn");       // 4 inputs: floor(0.25 * 4) = 1 entry pruned
    }
}
