package org.prilora.layers;

import org.prilora.config.AdapterSettings;

import org.deeplearning4j.gradientcheck.GradientCheckUtil;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.GlobalPoolingLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.PoolingType;
import org.deeplearning4j.nn.conf.layers.RnnOutputLayer;
import org.deeplearning4j.nn.conf.layers.SelfAttentionLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.util.ModelSerializer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.lossfunctions.LossFunctions;

import java.io.File;
import java.util.HashSet;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PriLoraSelfAttentionTest {

    @BeforeAll
    static void doublePrecision() {
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    }

    private static PriLoraSelfAttention.Builder attention(int nIn, int nOut, int heads, int rank) {
        return new PriLoraSelfAttention.Builder().nIn(nIn).nOut(nOut).nHeads(heads).rank(rank)
                .adapter(AdapterSettings.builder().alpha(rank).build());
    }

    private static Set<String> frozen(String prefix) {
        Set<String> s = new HashSet<>();
        for (String p : new String[]{"q", "k", "v", "o"}) {
            s.add(prefix + p + "W");
            s.add(prefix + p + "xnorm");
        }
        return s;
    }

    @Test
    void equalsDl4jSelfAttentionLayerWhenBIsZero() {
        int nIn = 6, nOut = 8, heads = 2, mb = 3, t = 5;
        MultiLayerNetwork ref = TestNets.init(TestNets.base(DataType.DOUBLE).list()
                .layer(new SelfAttentionLayer.Builder().nIn(nIn).nOut(nOut).nHeads(heads).projectInput(true).build())
                .setInputType(InputType.recurrent(nIn)).build());
        MultiLayerNetwork pri = TestNets.init(TestNets.base(DataType.DOUBLE).list()
                .layer(attention(nIn, nOut, heads, 2).build()).setInputType(InputType.recurrent(nIn)).build());
        for (String p : new String[]{"q", "k", "v"}) {
            pri.getLayer(0).getParam(p + "W").assign(PriLoraSelfAttention.fromDl4jProjection(ref.getLayer(0).getParam("W" + p)));
        }
        pri.getLayer(0).getParam("oW").assign(ref.getLayer(0).getParam("Wo"));
        INDArray x = Nd4j.rand(DataType.DOUBLE, mb, nIn, t);
        INDArray mask = TestNets.randomMask(mb, t, 3, DataType.DOUBLE);
        assertThat(pri.output(x).equalsWithEps(ref.output(x), 1e-10)).isTrue();
        assertThat(pri.output(x, false, mask, null).equalsWithEps(ref.output(x, false, mask, null), 1e-10)).isTrue();
        // and the projection layout round-trips
        INDArray wq = ref.getLayer(0).getParam("Wq");
        assertThat(PriLoraSelfAttention.toDl4jProjection(PriLoraSelfAttention.fromDl4jProjection(wq), heads)).isEqualTo(wq);
    }

    @Test
    void gradientCheckMultiLayerWithAndWithoutMask() {
        int nIn = 4, mb = 2, t = 4;
        MultiLayerNetwork net = TestNets.init(TestNets.base(DataType.DOUBLE).updater(new NoOp()).list()
                .layer(new PriLoraDense.Builder().nOut(4).rank(2).adapter(AdapterSettings.builder().alpha(2).build()).activation(Activation.TANH).build())
                .layer(attention(4, 6, 2, 2).build())
                .layer(new RnnOutputLayer.Builder().nOut(3).activation(Activation.SOFTMAX).lossFunction(LossFunctions.LossFunction.MCXENT).build())
                .setInputType(InputType.recurrent(nIn)).build());
        TestNets.randomizeAdapters(net.getLayers(), 5);
        INDArray x = Nd4j.rand(DataType.DOUBLE, mb, nIn, t);
        INDArray labels = Nd4j.zeros(DataType.DOUBLE, mb, 3, t);
        for (int b = 0; b < mb; b++) for (int s = 0; s < t; s++) labels.putScalar(b, (b + s) % 3, s, 1.0);
        Set<String> ex = frozen("1_");
        ex.addAll(Set.of("0_W", "0_b", "0_xnorm"));
        INDArray mask = Nd4j.createFromArray(new double[][]{{1, 1, 1, 0}, {1, 1, 0, 0}});
        for (INDArray m : new INDArray[]{null, mask}) {
            boolean ok = GradientCheckUtil.checkGradients(new GradientCheckUtil.MLNConfig().net(net).input(x).labels(labels)
                    .inputMask(m).labelMask(m).excludeParams(ex));
            assertThat(ok).as("mask %s", m != null).isTrue();
        }
    }

    @Test
    void gradientCheckComputationGraphWithPooling() {
        ComputationGraphConfiguration conf = TestNets.base(DataType.DOUBLE).updater(new NoOp()).graphBuilder()
                .addInputs("in").setInputTypes(InputType.recurrent(4))
                .addLayer("att", attention(4, 4, 2, 2).build(), "in")
                .addLayer("pool", new GlobalPoolingLayer.Builder(PoolingType.AVG).build(), "att")
                .addLayer("out", new OutputLayer.Builder().nOut(2).activation(Activation.SOFTMAX).lossFunction(LossFunctions.LossFunction.MCXENT).build(), "pool")
                .setOutputs("out").build();
        ComputationGraph g = new ComputationGraph(conf);
        g.init();
        TestNets.randomizeAdapters(g.getLayers(), 9);
        INDArray x = Nd4j.rand(DataType.DOUBLE, 3, 4, 5);
        INDArray y = Nd4j.createFromArray(new double[][]{{1, 0}, {0, 1}, {1, 0}});
        INDArray mask = TestNets.randomMask(3, 5, 2, DataType.DOUBLE);
        boolean ok = GradientCheckUtil.checkGradients(new GradientCheckUtil.GraphConfig().net(g).inputs(new INDArray[]{x})
                .labels(new INDArray[]{y}).inputMask(new INDArray[]{mask}).excludeParams(frozen("att_")));
        assertThat(ok).isTrue();
    }

    @Test
    void trainsOnlyAdaptersAndSurvivesJsonAndModelSerializer(@TempDir File dir) throws Exception {
        MultiLayerConfiguration conf = TestNets.base(DataType.FLOAT).updater(new Adam(1e-2)).list()
                .layer(attention(4, 4, 2, 2).build())
                .layer(new RnnOutputLayer.Builder().nOut(2).activation(Activation.SOFTMAX).lossFunction(LossFunctions.LossFunction.MCXENT).build())
                .setInputType(InputType.recurrent(4)).build();
        assertThat(MultiLayerConfiguration.fromJson(conf.toJson())).isEqualTo(conf);
        MultiLayerNetwork net = TestNets.init(conf);
        INDArray wq = net.getLayer(0).getParam("qW").dup();
        INDArray x = Nd4j.rand(DataType.FLOAT, 2, 4, 3);
        INDArray y = Nd4j.zeros(DataType.FLOAT, 2, 2, 3);
        y.putScalar(0, 0, 0, 1).putScalar(0, 1, 1, 1).putScalar(0, 0, 2, 1).putScalar(1, 1, 0, 1).putScalar(1, 1, 1, 1).putScalar(1, 0, 2, 1);
        for (int i = 0; i < 3; i++) {
            net.fit(new DataSet(x, y));
        }
        assertThat(net.getLayer(0).getParam("qW")).isEqualTo(wq);
        assertThat(net.getLayer(0).getParam("oloraB").sumNumber().doubleValue()).isNotZero();
        // Adam state: 2 x (4 sites x r(nIn+nOut)) + output layer (4*2+2)
        long adapter = 4L * 2 * (4 + 4);
        assertThat(net.getUpdater().getStateViewArray().length()).isEqualTo(2 * (adapter + 10));

        File f = new File(dir, "att.zip");
        ModelSerializer.writeModel(net, f, true);
        MultiLayerNetwork back = ModelSerializer.restoreMultiLayerNetwork(f, true);
        assertThat(back.output(x)).isEqualTo(net.output(x));
        net.fit(new DataSet(x, y));
        back.fit(new DataSet(x, y));
        assertThat(back.params()).isEqualTo(net.params());
    }

    @Test
    void badConfigurationGivesClearErrors() {
        assertThatThrownBy(() -> attention(4, 7, 2, 2).build()).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("nOut").hasMessageContaining("multiple of nHeads = 2").hasMessageContaining("7");
        assertThatThrownBy(() -> attention(4, 4, 2, 2).projectInput(false).build()).hasMessageContaining("projectInput");
        assertThatThrownBy(() -> attention(4, 4, 0, 2).build()).hasMessageContaining("nHeads");
        assertThatThrownBy(() -> TestNets.init(TestNets.base(DataType.FLOAT).list().layer(attention(4, 4, 2, 5).build())
                .setInputType(InputType.recurrent(4)).build())).hasMessageContaining("rank").hasMessageContaining("5");
        MultiLayerNetwork net = TestNets.init(TestNets.base(DataType.FLOAT).list().layer(attention(4, 4, 2, 2).build())
                .setInputType(InputType.recurrent(4)).build());
        assertThatThrownBy(() -> net.output(Nd4j.rand(DataType.FLOAT, 2, 5, 3))).hasMessageContaining("[mb, 4, T]").hasMessageContaining("[2, 5, 3]");
    }
}
