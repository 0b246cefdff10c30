package org.prilora.layers;

import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.prilora.config.RankSchedule;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PriLoraRanksTest {

    @Test
    void linearScheduleOverMultiLayerDepthOrder() {
        var list = TestNets.base(DataType.FLOAT).list();
        for (int i = 0; i < 6; i++) {
            list.layer(new PriLoraDense.Builder().nIn(32).nOut(32).rank(1).build());
        }
        list.layer(new DenseLayer.Builder().nIn(32).nOut(32).build());
        list.layer(new OutputLayer.Builder().nIn(32).nOut(2).build());
        MultiLayerConfiguration conf = list.build();
        assertThat(PriLoraRanks.apply(conf, RankSchedule.linear(4, 12))).containsExactly(4, 6, 7, 9, 10, 12);
        MultiLayerNetwork net = TestNets.init(conf);
        assertThat(net.getLayer(5).getParam("loraA").size(0)).isEqualTo(12);
        assertThat(net.getLayer(0).getParam("loraB").size(1)).isEqualTo(4);
    }

    @Test
    void blockFunctionGroupsLayersAndGraphUsesTopologicalOrder() {
        ComputationGraphConfiguration conf = TestNets.base(DataType.FLOAT).graphBuilder().addInputs("in")
                .addLayer("b1_q", new PriLoraDense.Builder().nIn(16).nOut(16).build(), "b0_q")
                .addLayer("b0_q", new PriLoraDense.Builder().nIn(16).nOut(16).build(), "in")
                .addLayer("b1_ffn", new PriLoraDense.Builder().nIn(16).nOut(16).build(), "b1_q")
                .addLayer("out", new OutputLayer.Builder().nIn(16).nOut(2).build(), "b1_ffn")
                .setOutputs("out").build();
        int[] r = PriLoraRanks.apply(conf, RankSchedule.linear(2, 8), l -> l.getLayerName().startsWith("b0") ? 0 : 1);
        assertThat(r).hasSize(3).containsOnly(2, 8);
        ComputationGraph g = new ComputationGraph(conf);
        g.init();
        assertThat(g.getLayer("b0_q").getParam("loraA").size(0)).isEqualTo(2);
        assertThat(g.getLayer("b1_q").getParam("loraA").size(0)).isEqualTo(8);
        assertThat(g.getLayer("b1_ffn").getParam("loraA").size(0)).isEqualTo(8);
    }

    @Test
    void errors() {
        MultiLayerConfiguration none = TestNets.base(DataType.FLOAT).list().layer(new OutputLayer.Builder().nIn(3).nOut(2).build()).build();
        assertThatThrownBy(() -> PriLoraRanks.apply(none, RankSchedule.uniform(2))).hasMessageContaining("no");
        MultiLayerConfiguration two = TestNets.base(DataType.FLOAT).list()
                .layer(new PriLoraDense.Builder().nIn(8).nOut(8).build()).layer(new PriLoraDense.Builder().nIn(8).nOut(8).build()).build();
        assertThatThrownBy(() -> PriLoraRanks.apply(two, RankSchedule.explicit(1, 2, 3))).hasMessageContaining("3 ranks");
        assertThatThrownBy(() -> PriLoraRanks.apply(two, RankSchedule.uniform(2), l -> -1)).hasMessageContaining("blockOf");
    }
}
