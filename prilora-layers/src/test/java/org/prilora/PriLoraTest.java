package org.prilora;

import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.GlobalPoolingLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.PoolingType;
import org.deeplearning4j.nn.conf.layers.SelfAttentionLayer;
import org.deeplearning4j.nn.conf.layers.misc.FrozenLayerWithBackprop;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.prilora.config.PriLoraConfig;
import org.prilora.layers.PriLoraDense;
import org.prilora.layers.PriLoraSelfAttention;
import org.prilora.layers.TestNets;
import org.prilora.config.PruningMode;
import org.prilora.config.RankSchedule;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PriLoraTest {

    @Test
    void adaptKeepsOutputsFreezesOthersAndFollowsTheRankSchedule() {
        MultiLayerNetwork base = TestModels.pretrainedMlp();
        INDArray baseParams = base.params().dup();
        INDArray x = TestModels.data(99).getFeatures();
        MultiLayerNetwork adapted = PriLora.adapt(base, TestModels.config(PruningMode.REGROW));
        assertThat(adapted.output(x).equalsWithEps(base.output(x), 1e-6)).isTrue();
        assertThat(base.params()).isEqualTo(baseParams); // base untouched
        assertThat(adapted.getLayerWiseConfigurations().getConf(0).getLayer()).isInstanceOf(FrozenLayerWithBackprop.class);
        assertThat(adapted.getLayerWiseConfigurations().getConf(1).getLayer()).isInstanceOf(PriLoraDense.class);
        assertThat(((PriLoraDense) adapted.getLayerWiseConfigurations().getConf(1).getLayer()).getRank()).isEqualTo(2);
        assertThat(((PriLoraDense) adapted.getLayerWiseConfigurations().getConf(2).getLayer()).getRank()).isEqualTo(6);

        INDArray fc1 = adapted.getLayer(0).getParam("W").dup();
        INDArray head = adapted.getLayer(3).getParam("W").dup();
        adapted.setListeners(PriLora.listener(TestModels.config(PruningMode.REGROW)));
        for (int i = 0; i < 6; i++) {
            adapted.fit(TestModels.data(i));
        }
        assertThat(adapted.getLayer(0).getParam("W")).isEqualTo(fc1);           // frozen
        assertThat(adapted.getLayer(3).getParam("W")).isNotEqualTo(head);       // modules to save train
        assertThat(adapted.getLayer(1).getParam("W")).isEqualTo(base.getLayer(1).getParam("W"));

        PriLoraSummary s = PriLora.summary(adapted);
        long adapters = 2L * (32 + 32) + 6L * (32 + 16);
        assertThat(s.trainableParams()).isEqualTo(adapters + 16 * 3 + 3);
        assertThat(s.rows()).extracting(PriLoraSummary.Row::rank).containsExactly(2, 6);
        assertThat(s.toString()).contains("trainable params: " + String.format("%,d", adapters + 51)).contains("fc3");
        assertThat(s.adapterBytes()).isLessThan(s.modelBytes() / 2);
    }

    @Test
    void mergeGivesAPlainNetworkWithTheSameOutputs() {
        for (PruningMode mode : PruningMode.values()) {
            MultiLayerNetwork adapted = PriLora.adapt(TestModels.pretrainedMlp(), TestModels.config(mode));
            adapted.setListeners(PriLora.listener(TestModels.config(mode)));
            for (int i = 0; i < 5; i++) {
                adapted.fit(TestModels.data(i));
            }
            MultiLayerNetwork merged = PriLora.merge(adapted);
            assertThat(merged.getLayerWiseConfigurations().getConf(1).getLayer()).isExactlyInstanceOf(DenseLayer.class);
            assertThat(merged.getLayerWiseConfigurations().getConf(0).getLayer()).isExactlyInstanceOf(DenseLayer.class);
            INDArray x = TestModels.data(50).getFeatures();
            INDArray a = adapted.output(x);
            INDArray m = merged.output(x);
            double rel = a.sub(m).norm2Number().doubleValue() / a.norm2Number().doubleValue();
            assertThat(rel).as("mode %s", mode).isLessThan(1e-5);
            assertThat(merged.numParams()).isEqualTo(10 * 32 + 32 + 32 * 32 + 32 + 32 * 16 + 16 + 16 * 3 + 3);
        }
    }

    @Test
    void adaptAndMergeSelfAttentionInAComputationGraph() {
        ComputationGraphConfiguration conf = TestNets.base(DataType.FLOAT).updater(new Adam(1e-2)).graphBuilder()
                .addInputs("in").setInputTypes(InputType.recurrent(8))
                .addLayer("att", new SelfAttentionLayer.Builder().nIn(8).nOut(8).nHeads(2).projectInput(true).build(), "in")
                .addLayer("pool", new GlobalPoolingLayer.Builder(PoolingType.AVG).build(), "att")
                .addLayer("ff", new DenseLayer.Builder().nIn(8).nOut(8).activation(Activation.TANH).build(), "pool")
                .addLayer("out", new OutputLayer.Builder().nIn(8).nOut(2).activation(Activation.SOFTMAX).lossFunction(LossFunctions.LossFunction.MCXENT).build(), "ff")
                .setOutputs("out").build();
        ComputationGraph base = new ComputationGraph(conf);
        base.init();
        INDArray x = Nd4j.rand(DataType.FLOAT, 4, 8, 5);
        INDArray y = Nd4j.createFromArray(new float[][]{{1, 0}, {0, 1}, {1, 0}, {0, 1}});
        INDArray mask = TestNets.randomMask(4, 5, 3, DataType.FLOAT);
        PriLoraConfig cfg = PriLoraConfig.builder().rankSchedule(RankSchedule.linear(2, 4)).modulesToSave("out").build();
        ComputationGraph adapted = PriLora.adapt(base, cfg);
        assertThat(adapted.getLayer("att").conf().getLayer()).isInstanceOf(PriLoraSelfAttention.class);
        assertThat(adapted.output(false, new INDArray[]{x}, new INDArray[]{mask})[0]
                .equalsWithEps(base.output(false, new INDArray[]{x}, new INDArray[]{mask})[0], 1e-5)).isTrue();
        adapted.setListeners(PriLora.listener(cfg));
        for (int i = 0; i < 4; i++) {
            adapted.fit(new org.nd4j.linalg.dataset.MultiDataSet(new INDArray[]{x}, new INDArray[]{y}, new INDArray[]{mask}, null));
        }
        ComputationGraph merged = PriLora.merge(adapted);
        assertThat(merged.getLayer("att").conf().getLayer()).isExactlyInstanceOf(SelfAttentionLayer.class);
        INDArray a = adapted.output(false, new INDArray[]{x}, new INDArray[]{mask})[0];
        INDArray m = merged.output(false, new INDArray[]{x}, new INDArray[]{mask})[0];
        assertThat(a.sub(m).norm2Number().doubleValue() / a.norm2Number().doubleValue()).isLessThan(1e-5);
        assertThat(PriLora.summary(adapted).rows()).extracting(PriLoraSummary.Row::module)
                .containsExactly("att.query", "att.key", "att.value", "att.output", "ff");
    }

    @Test
    void badRequestsAreRejectedWithEveryProblemNamed() {
        MultiLayerNetwork base = TestModels.pretrainedMlp();
        assertThatThrownBy(() -> PriLora.adapt(base, PriLoraConfig.builder().targetModules("nothing").modulesToSave("head").build()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("no layer matches");
        assertThatThrownBy(() -> PriLora.adapt(base, PriLoraConfig.builder().modulesToSave("head", "nope").build()))
                .hasMessageContaining("'nope'");
        assertThatThrownBy(() -> PriLora.adapt(base, PriLoraConfig.builder().build()))
                .hasMessageContaining("output layer 'head'").hasMessageContaining("modulesToSave");
        assertThatThrownBy(() -> PriLora.adapt(base, PriLoraConfig.builder().rankSchedule(RankSchedule.uniform(20)).modulesToSave("head").build()))
                .hasMessageContaining("rank").hasMessageContaining("20");
        MultiLayerNetwork adapted = PriLora.adapt(base, TestModels.config(PruningMode.REGROW));
        assertThatThrownBy(() -> PriLora.adapt(adapted, TestModels.config(PruningMode.REGROW))).hasMessageContaining("already a PRILoRA layer");
    }
}
