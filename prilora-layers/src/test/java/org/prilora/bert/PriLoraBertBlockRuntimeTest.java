package org.prilora.bert;

import java.util.List;

import org.prilora.bert.BertNaming.Projection;

import org.prilora.config.AdapterSettings;

import org.deeplearning4j.gradientcheck.GradientCheckUtil;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.NoOp;
import org.prilora.bert.BertNaming.Norm;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.AdapterStatsSource;
import org.prilora.layers.PriLoraSameDiffRuntime;
import org.prilora.config.PruningMode;
import org.prilora.config.RankSchedule;

import java.util.Map;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The native BERT block runtime against the SameDiff graph of the same block (the reference, written with
 * elementary graph ops and differentiated by SameDiff): outputs, every parameter gradient, the input gradient and
 * the listener's input norms, in adapter, persistent-mask and full fine-tuning modes; plus a finite-difference
 * check of full fine-tuning and whole training runs through DL4J's workspaces.
 */
class PriLoraBertBlockRuntimeTest {

    /** hidden 16, 4 heads, FFN 24. */
    private static final BertConfig SMALL = new BertConfig(50, 16, 2, 4, 24, 12, 2, 1e-12);
    private static final int MB = 3;
    private static final int T = 6;

    enum Mode { ADAPTERS, PERSISTENT_MASK, FULL_FINE_TUNE }

    @BeforeAll
    static void doublePrecision() {
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    }

    private static MultiLayerNetwork net(Mode mode, boolean graph, int layers) {
        BertEncoderFactory.Builder b = BertEncoderFactory.builder(SMALL.withNumLayers(layers)).dataType(DataType.DOUBLE).seed(7)
                .updater(new Adam(1e-2)).rankSchedule(RankSchedule.linear(2, 3))
                .adapter(AdapterSettings.builder().pruningMode(mode == Mode.PERSISTENT_MASK ? PruningMode.PERSISTENT_MASK
                        : PruningMode.REGROW).build())
                .graphRuntime(graph).classifier(3);
        return (mode == Mode.FULL_FINE_TUNE ? b.plain() : b).build();
    }

    /** Non-trivial adapters, LayerNorms and (persistent mode) ~30 % pruned mask entries in every block. */
    private static void randomize(MultiLayerNetwork net, long seed) {
        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(seed);
        for (Layer l : net.getLayers()) {
            if (!(l.conf().getLayer() instanceof BertBlock)) {
                continue;
            }
            for (Projection p : Projection.values()) {
                l.getParam(BertBlock.biasKey(p)).assign(Nd4j.randn(l.getParam(BertBlock.biasKey(p)).shape(), rng).muli(0.1));
            }
            List<AdapterModule> modules = l.conf().getLayer() instanceof PriLoraBertBlock
                    ? ((PriLoraBertBlock) l.conf().getLayer()).adapterModules() : List.of();
            for (AdapterModule s : modules) {
                l.getParam(s.aKey()).assign(Nd4j.randn(l.getParam(s.aKey()).shape(), rng).muli(0.5));
                l.getParam(s.bKey()).assign(Nd4j.randn(l.getParam(s.bKey()).shape(), rng).muli(0.5));
                if (s.maskKey() != null) {
                    INDArray m = l.getParam(s.maskKey());
                    m.assign(Nd4j.rand(rng, m.shape()).gt(0.3).castTo(m.dataType()));
                }
            }
            for (Norm n : Norm.values()) {
                l.getParam(n.gainKey()).addi(Nd4j.randn(l.getParam(n.gainKey()).shape(), rng).muli(0.2));
                l.getParam(n.biasKey()).assign(Nd4j.randn(l.getParam(n.biasKey()).shape(), rng).muli(0.2));
            }
        }
    }

    /** Hidden states [MB, 16, T] and a right-padded mask (example 0 full, the others shorter). */
    private static INDArray[] hiddenBatch(long seed) {
        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(seed);
        INDArray x = Nd4j.randn(new long[]{MB, SMALL.hidden(), T}, rng);
        INDArray mask = Nd4j.ones(DataType.DOUBLE, MB, T);
        mask.get(org.nd4j.linalg.indexing.NDArrayIndex.point(1), org.nd4j.linalg.indexing.NDArrayIndex.interval(4, T)).assign(0);
        mask.get(org.nd4j.linalg.indexing.NDArrayIndex.point(2), org.nd4j.linalg.indexing.NDArrayIndex.interval(2, T)).assign(0);
        return new INDArray[]{x, mask};
    }

    private static DataSet tokenBatch(long seed) {
        return BertTestBatches.tokenBatch(SMALL, MB, T, 3, seed);
    }

    @Test
    void nativeRuntimeIsTheDefaultAndTheGraphRuntimeIsAvailable() {
        assertThat(net(Mode.ADAPTERS, false, 1).getLayer(1)).isInstanceOf(PriLoraBertBlockRuntime.class);
        assertThat(net(Mode.ADAPTERS, true, 1).getLayer(1)).isInstanceOf(PriLoraSameDiffRuntime.class);
        PriLoraBertBlock block = new PriLoraBertBlock.Builder().config(SMALL).rank(2).build();
        assertThat(block.isGraphRuntime()).isFalse();
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void nativeBlockMatchesTheSameDiffGraphInOutputGradientsAndStatistics(Mode mode) {
        MultiLayerNetwork nat = net(mode, false, 1);
        randomize(nat, 5);
        MultiLayerNetwork ref = net(mode, true, 1);
        ref.setParams(nat.params().dup());
        nat.initGradientsView(); // gradient views, as fit() would create them
        ref.initGradientsView();
        Layer a = nat.getLayer(1);
        Layer b = ref.getLayer(1);
        INDArray[] in = hiddenBatch(9);
        INDArray eps = Nd4j.randn(new long[]{MB, SMALL.hidden(), T}, Nd4j.getRandomFactory().getNewRandomInstance(10));

        LayerWorkspaceMgr mgr = LayerWorkspaceMgr.noWorkspaces();
        Pair<INDArray, Pair<Gradient, INDArray>> ra = run(a, in, eps, mgr);
        Map<String, INDArray> normsA = ((AdapterStatsSource) a).takeBatchNorms();
        Pair<INDArray, Pair<Gradient, INDArray>> rb = run(b, in, eps, mgr);
        Map<String, INDArray> normsB = ((AdapterStatsSource) b).takeBatchNorms();

        assertClose("output", ra.getFirst(), rb.getFirst(), 1e-10);
        assertClose("input gradient", ra.getSecond().getSecond(), rb.getSecond().getSecond(), 1e-9);
        BertBlock conf = (BertBlock) a.conf().getLayer();
        for (String key : a.paramTable().keySet()) {
            INDArray ga = ra.getSecond().getFirst().getGradientFor(key);
            INDArray gb = rb.getSecond().getFirst().getGradientFor(key);
            assertClose("gradient of " + key, ga, gb, 1e-9);
            if (!conf.isTrainableParam(key)) {
                assertThat(ga.amaxNumber().doubleValue()).as("frozen " + key + " gets no gradient").isZero();
            } else {
                assertThat(ga.amaxNumber().doubleValue()).as("trained " + key + " gets a gradient").isPositive();
            }
        }
        assertThat(normsA.keySet()).hasSize(mode == Mode.FULL_FINE_TUNE ? 0 : 6).isEqualTo(normsB.keySet());
        normsA.forEach((site, v) -> assertClose("input norms of " + site, v, normsB.get(site), 1e-10));
    }

    private static Pair<INDArray, Pair<Gradient, INDArray>> run(Layer l, INDArray[] in, INDArray eps, LayerWorkspaceMgr mgr) {
        l.setInput(in[0].dup(), mgr);
        l.setMaskArray(in[1].dup());
        INDArray out = l.activate(true, mgr).dup();
        Pair<Gradient, INDArray> g = l.backpropGradient(eps.dup(), mgr);
        Gradient copy = new org.deeplearning4j.nn.gradient.DefaultGradient();
        g.getFirst().gradientForVariable().forEach((k, v) -> copy.setGradientFor(k, v.dup()));
        return new Pair<>(out, new Pair<>(copy, g.getSecond().dup()));
    }

    private static void assertClose(String what, INDArray actual, INDArray expected, double relTol) {
        assertThat(actual.shape()).as(what + " shape").isEqualTo(expected.shape());
        double scale = Math.max(1.0, expected.amaxNumber().doubleValue());
        double diff = actual.sub(expected).amaxNumber().doubleValue();
        assertThat(diff / scale).as(what + ": max |native - graph| / max(1, max |graph|)").isLessThan(relTol);
    }

    @Test
    void gradientCheckOfFullFineTuningThroughTheNativeBlock() {
        MultiLayerNetwork net = BertEncoderFactory.builder(SMALL.withNumLayers(1)).dataType(DataType.DOUBLE).seed(7)
                .updater(new NoOp()).plain().classifier(3).build();
        randomize(net, 6);
        Set<String> exclude = BertTestBatches.frozenParams(net); // the frozen embeddings
        assertThat(exclude).contains("0_" + BertEmbeddings.WORD).doesNotContain("1_qW", "1_ln1g");
        DataSet ds = tokenBatch(3);
        boolean ok = GradientCheckUtil.checkGradients(new GradientCheckUtil.MLNConfig().net(net).input(ds.getFeatures())
                .labels(ds.getLabels()).inputMask(ds.getFeaturesMaskArray()).excludeParams(exclude).subset(true).maxPerParam(6));
        assertThat(ok).isTrue();
    }

    @ParameterizedTest
    @EnumSource(Mode.class)
    void trainingThroughDl4jWorkspacesMatchesTheGraphRuntime(Mode mode) {
        MultiLayerNetwork nat = net(mode, false, 2);
        randomize(nat, 8);
        MultiLayerNetwork ref = net(mode, true, 2);
        ref.setParams(nat.params().dup());
        for (int step = 0; step < 3; step++) {
            DataSet ds = tokenBatch(20 + step);
            nat.fit(ds);
            ref.fit(ds);
        }
        assertClose("parameters after 3 Adam steps", nat.params(), ref.params(), 1e-9);
        DataSet ds = tokenBatch(30);
        assertClose("inference output", nat.output(ds.getFeatures(), false, ds.getFeaturesMaskArray(), null),
                ref.output(ds.getFeatures(), false, ds.getFeaturesMaskArray(), null), 1e-10);
    }
}
