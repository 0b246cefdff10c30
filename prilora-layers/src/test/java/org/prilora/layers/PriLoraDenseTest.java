package org.prilora.layers;

import org.prilora.config.AdapterSettings;

import org.deeplearning4j.gradientcheck.GradientCheckUtil;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.RNNFormat;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.RnnOutputLayer;
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
import org.prilora.config.PruningMode;

import java.io.File;
import java.util.HashSet;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PriLoraDenseTest {

    @BeforeAll
    static void doublePrecision() {
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    }

    private static PriLoraDense.Builder dense(int nIn, int nOut, int rank) {
        return new PriLoraDense.Builder().nIn(nIn).nOut(nOut).rank(rank).adapter(AdapterSettings.builder().alpha(Math.max(1, 2 * rank)).build())
                .activation(Activation.TANH);
    }

    /** Frozen params excluded from gradient checks: their numerical gradient is non-zero by design. */
    private static Set<String> frozen(int layerIndex, boolean mask) {
        Set<String> s = new HashSet<>(Set.of(layerIndex + "_W", layerIndex + "_b", layerIndex + "_xnorm"));
        if (mask) {
            s.add(layerIndex + "_loraM");
        }
        return s;
    }

    @Test
    void equalsDl4jDenseLayerWhenBIsZero() {
        for (boolean bias : new boolean[]{true, false}) {
            MultiLayerNetwork ref = TestNets.init(TestNets.base(DataType.DOUBLE).list()
                    .layer(new DenseLayer.Builder().nIn(5).nOut(4).hasBias(bias).activation(Activation.SIGMOID).build()).build());
            MultiLayerNetwork pri = TestNets.init(TestNets.base(DataType.DOUBLE).list()
                    .layer(new PriLoraDense.Builder().nIn(5).nOut(4).hasBias(bias).rank(2).activation(Activation.SIGMOID).build()).build());
            pri.getLayer(0).getParam("W").assign(ref.getLayer(0).getParam("W"));
            if (bias) {
                pri.getLayer(0).getParam("b").assign(Nd4j.rand(1, 4));
                ref.getLayer(0).getParam("b").assign(pri.getLayer(0).getParam("b"));
            }
            INDArray x = Nd4j.rand(DataType.DOUBLE, 6, 5);
            assertThat(pri.output(x)).isEqualTo(ref.output(x));
        }
    }

    @Test
    void recurrentInputIsAppliedPerTimeStepInBothLayouts() {
        INDArray xNcw = Nd4j.rand(DataType.DOUBLE, 3, 5, 7);
        for (RNNFormat f : RNNFormat.values()) {
            MultiLayerNetwork pri = TestNets.init(TestNets.base(DataType.DOUBLE).list()
                    .layer(dense(5, 4, 2).build()).setInputType(InputType.recurrent(5, f)).build());
            TestNets.randomizeAdapters(pri.getLayers(), 1);
            INDArray x = f == RNNFormat.NCW ? xNcw : xNcw.permute(0, 2, 1).dup();
            INDArray y = pri.output(x);
            // reference: the same layer on each time step as a 2-D batch
            for (int t = 0; t < 7; t++) {
                INDArray xt = xNcw.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.all(),
                        org.nd4j.linalg.indexing.NDArrayIndex.point(t));
                INDArray yt = pri.getLayer(0).activate(xt.dup(), false, org.deeplearning4j.nn.workspace.LayerWorkspaceMgr.noWorkspaces());
                INDArray got = f == RNNFormat.NCW
                        ? y.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.point(t))
                        : y.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.point(t), org.nd4j.linalg.indexing.NDArrayIndex.all());
                assertThat(got.equalsWithEps(yt, 1e-12)).as("format %s step %d", f, t).isTrue();
            }
        }
    }

    @Test
    void gradientCheckFeedForwardWithAndWithoutMaskAndPersistentMask() {
        for (PruningMode mode : PruningMode.values()) {
            for (double dropout : new double[]{0.0}) {
                MultiLayerNetwork net = TestNets.init(TestNets.base(DataType.DOUBLE).updater(new NoOp()).list()
                        .layer(new DenseLayer.Builder().nIn(4).nOut(6).activation(Activation.TANH).build())
                        .layer(dense(6, 5, 3).adapter(AdapterSettings.builder().alpha(6).pruningMode(mode).loraDropout(dropout).build()).build())
                        .layer(new OutputLayer.Builder().nIn(5).nOut(3).activation(Activation.SOFTMAX).lossFunction(LossFunctions.LossFunction.MCXENT).build())
                        .build());
                TestNets.randomizeAdapters(net.getLayers(), 7);
                if (mode == PruningMode.PERSISTENT_MASK) {
                    net.getLayer(1).getParam("loraM").assign(Nd4j.rand(DataType.DOUBLE, 3, 6).gt(0.3).castTo(DataType.DOUBLE));
                }
                INDArray x = Nd4j.rand(DataType.DOUBLE, 8, 4);
                INDArray y = Nd4j.zeros(DataType.DOUBLE, 8, 3);
                for (int i = 0; i < 8; i++) y.putScalar(i, i % 3, 1.0);
                for (INDArray mask : new INDArray[]{null, Nd4j.createFromArray(1.0, 1, 0, 1, 1, 0, 1, 1).reshape(8, 1)}) {
                    boolean ok = GradientCheckUtil.checkGradients(new GradientCheckUtil.MLNConfig().net(net).input(x).labels(y)
                            .inputMask(mask).labelMask(mask).excludeParams(frozen(1, mode == PruningMode.PERSISTENT_MASK)));
                    assertThat(ok).as("mode %s mask %s", mode, mask != null).isTrue();
                }
            }
        }
    }

    @Test
    void gradientCheckRecurrentNcwAndNwcWithMask() {
        for (RNNFormat f : RNNFormat.values()) {
            MultiLayerNetwork net = TestNets.init(TestNets.base(DataType.DOUBLE).updater(new NoOp()).list()
                    .layer(new PriLoraDense.Builder().nOut(5).rank(2).adapter(AdapterSettings.builder().alpha(3).build()).activation(Activation.TANH).build())
                    .layer(new PriLoraDense.Builder().nOut(4).rank(3).adapter(AdapterSettings.builder().alpha(3).build()).activation(Activation.SOFTSIGN).build())
                    .layer(new RnnOutputLayer.Builder().nOut(3).activation(Activation.SOFTMAX).lossFunction(LossFunctions.LossFunction.MCXENT).dataFormat(f).build())
                    .setInputType(InputType.recurrent(4, f)).build());
            TestNets.randomizeAdapters(net.getLayers(), 3);
            int mb = 3, t = 5;
            INDArray x = f == RNNFormat.NCW ? Nd4j.rand(DataType.DOUBLE, mb, 4, t) : Nd4j.rand(DataType.DOUBLE, mb, t, 4);
            INDArray labels = Nd4j.zeros(DataType.DOUBLE, f == RNNFormat.NCW ? new long[]{mb, 3, t} : new long[]{mb, t, 3});
            for (int b = 0; b < mb; b++) for (int s = 0; s < t; s++) {
                if (f == RNNFormat.NCW) labels.putScalar(b, (b + s) % 3, s, 1.0); else labels.putScalar(b, s, (b + s) % 3, 1.0);
            }
            INDArray mask = TestNets.randomMask(mb, t, 5, DataType.DOUBLE);
            Set<String> ex = new HashSet<>(frozen(0, false));
            ex.addAll(frozen(1, false));
            for (INDArray m : new INDArray[]{null, mask}) {
                boolean ok = GradientCheckUtil.checkGradients(new GradientCheckUtil.MLNConfig().net(net).input(x).labels(labels)
                        .inputMask(m).labelMask(m).excludeParams(ex));
                assertThat(ok).as("format %s, mask %s", f, m != null).isTrue();
            }
        }
    }

    @Test
    void gradientCheckInComputationGraph() {
        ComputationGraphConfiguration conf = TestNets.base(DataType.DOUBLE).updater(new NoOp()).graphBuilder()
                .addInputs("in")
                .addLayer("pre", new DenseLayer.Builder().nIn(4).nOut(5).activation(Activation.TANH).build(), "in")
                .addLayer("lora", dense(5, 6, 2).build(), "pre")
                .addLayer("out", new OutputLayer.Builder().nIn(6).nOut(2).activation(Activation.SOFTMAX).lossFunction(LossFunctions.LossFunction.MCXENT).build(), "lora")
                .setOutputs("out").build();
        ComputationGraph g = new ComputationGraph(conf);
        g.init();
        TestNets.randomizeAdapters(g.getLayers(), 11);
        INDArray x = Nd4j.rand(DataType.DOUBLE, 6, 4);
        INDArray y = Nd4j.zeros(DataType.DOUBLE, 6, 2);
        for (int i = 0; i < 6; i++) y.putScalar(i, i % 2, 1.0);
        boolean ok = GradientCheckUtil.checkGradients(new GradientCheckUtil.GraphConfig().net(g).inputs(new INDArray[]{x})
                .labels(new INDArray[]{y}).excludeParams(Set.of("lora_W", "lora_b", "lora_xnorm")));
        assertThat(ok).isTrue();
    }

    @Test
    void adamTrainsOnlyAAndBAndKeepsNoStateForFrozenParams() {
        MultiLayerNetwork net = TestNets.init(TestNets.base(DataType.FLOAT).updater(new Adam(1e-2)).l2(1e-3).list()
                .layer(new PriLoraDense.Builder().nIn(6).nOut(5).rank(2).activation(Activation.RELU).build())
                .layer(new OutputLayer.Builder().nIn(5).nOut(2).activation(Activation.SOFTMAX).lossFunction(LossFunctions.LossFunction.MCXENT).build())
                .build());
        INDArray w = net.getLayer(0).getParam("W").dup();
        INDArray b = net.getLayer(0).getParam("b").dup();
        INDArray a = net.getLayer(0).getParam("loraA").dup();
        INDArray bb = net.getLayer(0).getParam("loraB").dup();
        INDArray x = Nd4j.rand(DataType.FLOAT, 16, 6);
        INDArray y = Nd4j.zeros(DataType.FLOAT, 16, 2);
        for (int i = 0; i < 16; i++) y.putScalar(i, i % 2, 1.0);
        for (int i = 0; i < 5; i++) {
            net.fit(new DataSet(x, y));
        }
        assertThat(net.getLayer(0).getParam("W")).isEqualTo(w);
        assertThat(net.getLayer(0).getParam("b")).isEqualTo(b);
        assertThat(net.getLayer(0).getParam("loraA")).isNotEqualTo(a);
        assertThat(net.getLayer(0).getParam("loraB")).isNotEqualTo(bb);
        long adapterEntries = 2 * 6 + 5 * 2;
        long headParams = 5 * 2 + 2;
        assertThat(net.getUpdater().getStateViewArray().length()).isEqualTo(2 * (adapterEntries + headParams));
    }

    @Test
    void jsonAndModelSerializerRoundTripsGiveIdenticalOutputsAndTraining(@TempDir File dir) throws Exception {
        MultiLayerConfiguration conf = TestNets.base(DataType.FLOAT).updater(new Adam(1e-2)).list()
                .layer(dense(4, 6, 3).adapter(AdapterSettings.builder().pruningMode(PruningMode.PERSISTENT_MASK).alpha(5).build()).build())
                .layer(new OutputLayer.Builder().nIn(6).nOut(2).activation(Activation.SOFTMAX).lossFunction(LossFunctions.LossFunction.MCXENT).build())
                .build();
        MultiLayerConfiguration back = MultiLayerConfiguration.fromJson(conf.toJson());
        assertThat(back).isEqualTo(conf);
        PriLoraDense d = (PriLoraDense) back.getConf(0).getLayer();
        assertThat(d.getRank()).isEqualTo(3);
        assertThat(d.getAdapter().alpha()).isEqualTo(5.0);
        assertThat(d.getAdapter().pruningMode()).isEqualTo(PruningMode.PERSISTENT_MASK);

        MultiLayerNetwork net = TestNets.init(conf);
        INDArray x = Nd4j.rand(DataType.FLOAT, 8, 4);
        INDArray y = Nd4j.zeros(DataType.FLOAT, 8, 2);
        for (int i = 0; i < 8; i++) y.putScalar(i, i % 2, 1.0);
        net.fit(new DataSet(x, y));
        File f = new File(dir, "net.zip");
        ModelSerializer.writeModel(net, f, true);
        MultiLayerNetwork restored = ModelSerializer.restoreMultiLayerNetwork(f, true);
        assertThat(restored.output(x)).isEqualTo(net.output(x));
        for (int i = 0; i < 3; i++) {
            net.fit(new DataSet(x, y));
            restored.fit(new DataSet(x, y));
        }
        assertThat(restored.params()).isEqualTo(net.params());
    }

    @Test
    void badConfigurationAndInputGiveClearErrors() {
        assertThatThrownBy(() -> dense(4, 6, 0).build()).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("rank").hasMessageContaining("0");
        assertThatThrownBy(() -> dense(4, 6, 5).build()).hasMessageContaining("rank").hasMessageContaining("min(nIn, nOut) = 4")
                .hasMessageContaining("5");
        assertThatThrownBy(() -> dense(4, 6, 2).adapter(AdapterSettings.builder().alpha(0).build()).build()).hasMessageContaining("alpha");
        assertThatThrownBy(() -> dense(4, 6, 2).adapter(AdapterSettings.builder().loraDropout(1.0).build()).build()).hasMessageContaining("loraDropout").hasMessageContaining("[0, 1)");
        // rank checked again once nIn is known from the input type
        assertThatThrownBy(() -> TestNets.init(TestNets.base(DataType.FLOAT).list()
                .layer(new PriLoraDense.Builder().nOut(8).rank(6).build()).setInputType(InputType.feedForward(3)).build()))
                .hasMessageContaining("rank").hasMessageContaining("3");
        MultiLayerNetwork net = TestNets.init(TestNets.base(DataType.FLOAT).list().layer(dense(4, 6, 2).build()).build());
        assertThatThrownBy(() -> net.output(Nd4j.rand(DataType.FLOAT, 3, 5)))
                .hasMessageContaining("expected input [mb, 4]").hasMessageContaining("[3, 5]");
        assertThatThrownBy(() -> net.output(Nd4j.rand(DataType.FLOAT, 2, 3, 4, 4)))
                .hasMessageContaining("[2, 3, 4, 4]");
    }
}
