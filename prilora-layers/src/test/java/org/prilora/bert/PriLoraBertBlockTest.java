package org.prilora.bert;

import org.prilora.config.AdapterSettings;

import org.prilora.ops.InputNormStats;
import org.prilora.PriLoraListener;
import org.prilora.config.PruningSchedule;

import org.deeplearning4j.gradientcheck.GradientCheckUtil;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.util.ModelSerializer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.NoOp;
import org.prilora.bert.BertNaming.Norm;
import org.prilora.bert.BertNaming.Projection;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.PriLoraLayer;
import org.prilora.config.PruningMode;
import org.prilora.config.RankSchedule;

import java.io.File;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The BERT layers on small random shapes: gradients, serialization, B = 0, and a plain-Java reference. */
class PriLoraBertBlockTest {

    /** hidden 16, 2 heads, 2 layers, FFN 32, vocab 50, 12 positions, 2 token types. */
    private static final BertConfig SMALL = new BertConfig(50, 16, 2, 2, 32, 12, 2, 1e-12);
    private static final int MB = 3;
    private static final int T = 5;

    @BeforeAll
    static void doublePrecision() {
        // GradientCheckUtil requires DOUBLE as the context's default type.
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    }

    private static BertEncoderFactory.Builder small(DataType dt) {
        return BertEncoderFactory.builder(SMALL).dataType(dt).seed(7);
    }

    /** Random ids [mb, 2, T] (ids, types) and a mask with each example's first token real, padding on the right. */
    private static INDArray[] batch(long seed, DataType dt) {
        Random r = new Random(seed);
        INDArray ids = Nd4j.zeros(dt, MB, T);
        INDArray types = Nd4j.zeros(dt, MB, T);
        INDArray mask = Nd4j.zeros(dt, MB, T);
        for (int b = 0; b < MB; b++) {
            int len = b == 0 ? T : 1 + r.nextInt(T);
            for (int t = 0; t < T; t++) {
                ids.putScalar(b, t, t < len ? 1 + r.nextInt(SMALL.vocabSize() - 1) : 0);
                types.putScalar(b, t, t < len && t > len / 2 ? 1 : 0);
                mask.putScalar(b, t, t < len ? 1 : 0);
            }
        }
        return new INDArray[]{BertEncoderFactory.features(ids, types, dt), mask};
    }

    private static void randomizeAdapters(MultiLayerNetwork net, long seed, double bScale) {
        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(seed);
        for (Layer l : net.getLayers()) {
            if (l.conf().getLayer() instanceof PriLoraLayer) {
                for (AdapterModule s : ((PriLoraLayer) l.conf().getLayer()).adapterModules()) {
                    INDArray a = l.getParam(s.aKey());
                    a.assign(Nd4j.randn(a.shape(), rng).castTo(a.dataType()).muli(0.5));
                    INDArray b = l.getParam(s.bKey());
                    b.assign(Nd4j.randn(b.shape(), rng).castTo(b.dataType()).muli(bScale));
                }
            }
        }
    }

    /** Also gives the frozen LayerNorms non-trivial values, so the reference and gradients see them. */
    private static void randomizeNorms(MultiLayerNetwork net, long seed) {
        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(seed);
        for (Layer l : net.getLayers()) {
            if (l.conf().getLayer() instanceof PriLoraBertBlock) {
                for (Norm n : Norm.values()) {
                    l.getParam(n.gainKey()).addi(Nd4j.randn(l.getParam(n.gainKey()).shape(), rng).muli(0.2));
                    l.getParam(n.biasKey()).assign(Nd4j.randn(l.getParam(n.biasKey()).shape(), rng).muli(0.2));
                }
            }
        }
    }

    private static Set<String> frozenParams(MultiLayerNetwork net) {
        return BertTestBatches.frozenParams(net);
    }

    private static INDArray labels(DataType dt) {
        INDArray y = Nd4j.zeros(dt, MB, 3);
        for (int b = 0; b < MB; b++) {
            y.putScalar(b, b % 3, 1.0);
        }
        return y;
    }

    @Test
    void gradientCheckOfAdaptersThroughTwoBlocksWithMask() {
        MultiLayerNetwork net = small(DataType.DOUBLE).updater(new NoOp()).rankSchedule(RankSchedule.linear(1, 2))
                .classifier(3).build();
        randomizeAdapters(net, 11, 0.5);
        randomizeNorms(net, 12);
        INDArray[] in = batch(3, DataType.DOUBLE);
        assertThat(in[1].sumNumber().doubleValue()).isLessThan(MB * T); // the batch really is padded
        // Every SameDiff op costs ~0.2 ms here, so each score takes tens of ms: check an evenly strided subset
        // of every parameter (GradientCheckUtil's subset mode), every parameter array included.
        boolean ok = GradientCheckUtil.checkGradients(new GradientCheckUtil.MLNConfig().net(net).input(in[0])
                .labels(labels(DataType.DOUBLE)).inputMask(in[1]).excludeParams(frozenParams(net)).subset(true).maxPerParam(4));
        assertThat(ok).isTrue();
    }

    @Test
    void gradientCheckInPersistentMaskModeWithPrunedEntries() {
        MultiLayerNetwork net = BertEncoderFactory.builder(SMALL.withNumLayers(1)).dataType(DataType.DOUBLE).seed(7)
                .updater(new NoOp()).rankSchedule(RankSchedule.uniform(2))
                .adapter(AdapterSettings.builder().pruningMode(PruningMode.PERSISTENT_MASK).build()).classifier(3).build();
        randomizeAdapters(net, 21, 0.5);
        for (AdapterModule s : ((PriLoraBertBlock) net.getLayer(1).conf().getLayer()).adapterModules()) {
            INDArray m = net.getLayer(1).getParam(s.maskKey());
            m.assign(Nd4j.rand(m.shape()).gt(0.3).castTo(m.dataType())); // ~30 % pruned
        }
        INDArray[] in = batch(4, DataType.DOUBLE);
        boolean ok = GradientCheckUtil.checkGradients(new GradientCheckUtil.MLNConfig().net(net).input(in[0])
                .labels(labels(DataType.DOUBLE)).inputMask(in[1]).excludeParams(frozenParams(net)).subset(true).maxPerParam(8));
        assertThat(ok).isTrue();
    }

    @Test
    void zeroBGivesTheBaseOutputAndNonZeroBChangesIt() {
        MultiLayerNetwork net = small(DataType.DOUBLE).build();
        randomizeAdapters(net, 31, 0.0); // random A, B = 0
        INDArray[] in = batch(5, DataType.DOUBLE);
        INDArray withZeroB = net.output(in[0], false, in[1], null);
        for (int i = 1; i <= SMALL.numLayers(); i++) {
            for (AdapterModule s : ((PriLoraBertBlock) net.getLayer(i).conf().getLayer()).adapterModules()) {
                net.getLayer(i).getParam(s.aKey()).assign(0); // no adapter contribution at all
            }
        }
        INDArray base = net.output(in[0], false, in[1], null);
        assertThat(withZeroB).isEqualTo(base);
        randomizeAdapters(net, 32, 0.5);
        INDArray adapted = net.output(in[0], false, in[1], null);
        assertThat(adapted.sub(base).amaxNumber().doubleValue()).isGreaterThan(1e-3);
    }

    @Test
    void matchesPlainJavaReferenceForEmbeddingsAndOneBlock() {
        BertConfig one = SMALL.withNumLayers(1);
        MultiLayerNetwork net = BertEncoderFactory.builder(one).dataType(DataType.DOUBLE).rankSchedule(RankSchedule.uniform(3))
                .adapter(AdapterSettings.builder().alpha(6).build()).build();
        randomizeAdapters(net, 41, 0.3);
        randomizeNorms(net, 42);
        INDArray[] in = batch(6, DataType.DOUBLE);
        INDArray out = net.output(in[0], false, in[1], null); // [mb, H, T]

        Layer emb = net.getLayer(0);
        int[][] ids = toInt(in[0], 0);
        int[][] types = toInt(in[0], 1);
        double[][][] x = BertReference.embeddings(ids, types, emb.getParam(BertEmbeddings.WORD).toDoubleMatrix(),
                emb.getParam(BertEmbeddings.POSITION).toDoubleMatrix(), emb.getParam(BertEmbeddings.TOKEN_TYPE).toDoubleMatrix(),
                emb.getParam(BertEmbeddings.LN_GAIN).toDoubleVector(), emb.getParam(BertEmbeddings.LN_BIAS).toDoubleVector(),
                one.layerNormEps());
        Layer blk = net.getLayer(1);
        PriLoraBertBlock conf = (PriLoraBertBlock) blk.conf().getLayer();
        List<AdapterModule> sites = conf.adapterModules();
        BertReference.Linear[] lin = new BertReference.Linear[6];
        for (Projection p : Projection.values()) {
            AdapterModule s = sites.get(p.ordinal());
            lin[p.ordinal()] = new BertReference.Linear(blk.getParam(s.weightKey()).toDoubleMatrix(),
                    blk.getParam(s.biasKey()).toDoubleVector(), blk.getParam(s.aKey()).toDoubleMatrix(),
                    blk.getParam(s.bKey()).toDoubleMatrix(), 6.0 / 3);
        }
        BertReference.Block p = new BertReference.Block(lin[0], lin[1], lin[2], lin[3], lin[4], lin[5],
                blk.getParam(Norm.ATTENTION_OUTPUT.gainKey()).toDoubleVector(), blk.getParam(Norm.ATTENTION_OUTPUT.biasKey()).toDoubleVector(),
                blk.getParam(Norm.OUTPUT.gainKey()).toDoubleVector(), blk.getParam(Norm.OUTPUT.biasKey()).toDoubleVector(),
                one.numHeads(), one.layerNormEps());
        double[][][] ref = BertReference.block(x, in[1].toDoubleMatrix(), p);

        double max = 0;
        for (int b = 0; b < MB; b++) {
            for (int t = 0; t < T; t++) {
                for (int h = 0; h < one.hidden(); h++) {
                    max = Math.max(max, Math.abs(out.getDouble(b, h, t) - ref[b][t][h]));
                }
            }
        }
        assertThat(max).as("max |DL4J - reference|").isLessThan(1e-9);
    }

    private static int[][] toInt(INDArray features, int channel) {
        int[][] r = new int[(int) features.size(0)][(int) features.size(2)];
        for (int b = 0; b < r.length; b++) {
            for (int t = 0; t < r[b].length; t++) {
                r[b][t] = features.getInt(b, channel, t);
            }
        }
        return r;
    }

    @Test
    void ranksFollowTheScheduleAndSiteNamesAreHuggingFaceModules() {
        MultiLayerNetwork net = BertEncoderFactory.builder(SMALL.withNumLayers(2)).rankSchedule(RankSchedule.linear(2, 4)).build();
        assertThat(((PriLoraBertBlock) net.getLayer(1).conf().getLayer()).getRank()).isEqualTo(2);
        assertThat(((PriLoraBertBlock) net.getLayer(2).conf().getLayer()).getRank()).isEqualTo(4);
        PriLoraBertBlock top = (PriLoraBertBlock) net.getLayer(2).conf().getLayer();
        assertThat(top.getLayerName()).isEqualTo("encoder.layer.1");
        assertThat(top.adapterModules()).extracting(s -> top.getLayerName() + "." + s.name())
                .containsExactlyElementsOf(BertNaming.peftModules(1));
        assertThat(top.adapterModules().get(Projection.OUTPUT.ordinal()).nIn()).isEqualTo(SMALL.intermediate());
        for (String key : net.getLayer(2).paramTable().keySet()) {
            assertThat(key).as("DL4J splits gradient keys at the last '_'").doesNotContain("_");
        }
        for (String key : net.getLayer(0).paramTable().keySet()) {
            assertThat(key).doesNotContain("_");
        }
    }

    @Test
    void trainsOnlyAdaptersAndHeadAndSurvivesJsonAndModelSerializer(@TempDir File dir) throws Exception {
        MultiLayerConfiguration conf = small(DataType.FLOAT).updater(new Adam(1e-2)).rankSchedule(RankSchedule.linear(2, 4))
                .classifier(3).configuration();
        MultiLayerConfiguration back = MultiLayerConfiguration.fromJson(conf.toJson());
        assertThat(back).isEqualTo(conf);
        assertThat(back.getConf(1).getLayer()).isInstanceOf(PriLoraBertBlock.class);
        assertThat(((PriLoraBertBlock) back.getConf(2).getLayer()).getRank()).isEqualTo(4);
        assertThat(((BertEmbeddings) back.getConf(0).getLayer()).getInputChannels()).isEqualTo(2);

        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        randomizeAdapters(net, 51, 0.3);
        INDArray[] in = batch(7, DataType.FLOAT);
        INDArray y = labels(DataType.FLOAT);
        MultiLayerNetwork fromJson = new MultiLayerNetwork(back);
        fromJson.init(net.params().dup(), false);
        assertThat(fromJson.output(in[0], false, in[1], null)).isEqualTo(net.output(in[0], false, in[1], null));

        Map<String, INDArray> before = net.paramTable();
        Map<String, INDArray> frozenBefore = new java.util.HashMap<>();
        for (String k : frozenParams(net)) {
            frozenBefore.put(k, before.get(k).dup());
        }
        INDArray aBefore = net.getLayer(1).getParam("qloraA").dup();
        DataSet ds = new DataSet(in[0], y, in[1], null);
        for (int i = 0; i < 3; i++) {
            net.fit(ds);
        }
        for (Map.Entry<String, INDArray> e : frozenBefore.entrySet()) {
            assertThat(net.paramTable().get(e.getKey())).as(e.getKey()).isEqualTo(e.getValue());
        }
        assertThat(net.getLayer(1).getParam("qloraA")).isNotEqualTo(aBefore);
        // Adam state (2 arrays) only for adapters (6 sites × r·(in+out)) and the classifier (16·3 + 3).
        long adapters = 0;
        for (int i = 1; i <= 2; i++) {
            for (AdapterModule s : ((PriLoraBertBlock) net.getLayer(i).conf().getLayer()).adapterModules()) {
                adapters += s.adapterParams();
            }
        }
        assertThat(net.getUpdater().getStateViewArray().length()).isEqualTo(2 * (adapters + 16 * 3 + 3));

        File f = new File(dir, "bert.zip");
        ModelSerializer.writeModel(net, f, true);
        MultiLayerNetwork restored = ModelSerializer.restoreMultiLayerNetwork(f, true);
        assertThat(restored.params()).isEqualTo(net.params());
        assertThat(restored.output(in[0], false, in[1], null)).isEqualTo(net.output(in[0], false, in[1], null));
        net.fit(ds);
        restored.fit(ds);
        assertThat(restored.params()).isEqualTo(net.params());
    }

    @Test
    void idsOnlyInputEqualsTypeZeroInput() {
        INDArray[] in = batch(8, DataType.FLOAT);
        INDArray ids = in[0].get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.point(0),
                org.nd4j.linalg.indexing.NDArrayIndex.all());
        MultiLayerNetwork two = small(DataType.FLOAT).build();
        MultiLayerNetwork one = small(DataType.FLOAT).tokenTypes(false).build();
        one.setParams(two.params());
        INDArray zeros = Nd4j.zeros(DataType.FLOAT, ids.shape());
        assertThat(one.output(BertEncoderFactory.features(ids, null, DataType.FLOAT), false, in[1], null))
                .isEqualTo(two.output(BertEncoderFactory.features(ids, zeros, DataType.FLOAT), false, in[1], null));
        // other sequence lengths run through the same graphs
        INDArray shorter = BertEncoderFactory.features(ids.get(org.nd4j.linalg.indexing.NDArrayIndex.all(),
                org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 3)).dup(), null, DataType.FLOAT);
        assertThat(one.output(shorter).shape()).containsExactly(MB, SMALL.hidden(), 3);
    }

    @Test
    void listenerGetsMaskedInputNormsOfAllSixSitesAndPrunes() {
        MultiLayerNetwork net = small(DataType.FLOAT).updater(new Adam(1e-2)).rankSchedule(RankSchedule.uniform(4))
                .classifier(3).build();
        net.setListeners(new org.prilora.PriLoraListener(org.prilora.config.PruningSchedule.builder()
                .fraction(0.25).interval(2).startStep(2).build()));
        INDArray[] in = batch(10, DataType.FLOAT);
        // the query/key/value input is the embeddings' output; its per-feature norm over the real tokens only
        INDArray embOut = net.feedForward(in[0], in[1], null).get(1);
        INDArray expected = org.prilora.ops.InputNormStats.batchNorms(embOut, in[1], org.prilora.ops.SequenceLayout.NCW,
                SMALL.hidden());
        DataSet ds = new DataSet(in[0], labels(DataType.FLOAT), in[1], null);
        net.fit(ds);
        for (int i = 1; i <= SMALL.numLayers(); i++) {
            Layer l = net.getLayer(i);
            for (AdapterModule s : ((PriLoraBertBlock) l.conf().getLayer()).adapterModules()) {
                org.prilora.ops.InputNormStats st = org.prilora.ops.InputNormStats.wrap(l.getParam(s.statsKey()), 0.9);
                assertThat(st.batchesSeen()).as("%s %s", l.conf().getLayer().getLayerName(), s.name()).isEqualTo(1);
                assertThat(st.norms().minNumber().doubleValue()).as(s.name()).isGreaterThan(0);
            }
        }
        Layer first = net.getLayer(1);
        INDArray queryNorms = org.prilora.ops.InputNormStats.wrap(first.getParam("qxnorm"), 0.9).norms();
        assertThat(queryNorms.reshape(expected.shape()).sub(expected).amaxNumber().doubleValue()).isLessThan(1e-4);
        net.fit(ds); // step 2 prunes 25 % of each row of every A
        for (int i = 1; i <= SMALL.numLayers(); i++) {
            for (AdapterModule s : ((PriLoraBertBlock) net.getLayer(i).conf().getLayer()).adapterModules()) {
                INDArray a = net.getLayer(i).getParam(s.aKey());
                long zeros = a.length() - a.neq(0).castTo(DataType.INT).sumNumber().longValue();
                assertThat(zeros).as(s.name()).isGreaterThanOrEqualTo(a.size(0) * (a.size(1) / 4));
            }
        }
    }

    @Test
    void badInputsAndConfigurationsGiveClearErrors() {
        MultiLayerNetwork net = small(DataType.FLOAT).build();
        INDArray[] in = batch(9, DataType.FLOAT);
        INDArray bad = in[0].dup();
        bad.putScalar(1, 0, 2, SMALL.vocabSize());
        assertThatThrownBy(() -> net.output(bad)).hasMessageContaining("token id").hasMessageContaining("[0, 49]")
                .hasMessageContaining("50.0");
        INDArray badType = in[0].dup();
        badType.putScalar(0, 1, 0, 2);
        assertThatThrownBy(() -> net.output(badType)).hasMessageContaining("token type id").hasMessageContaining("[0, 1]");
        assertThatThrownBy(() -> net.output(Nd4j.zeros(DataType.FLOAT, 2, 2, SMALL.maxPositions() + 1)))
                .hasMessageContaining("maxPositions = 12").hasMessageContaining("T = 13");
        assertThatThrownBy(() -> net.output(Nd4j.zeros(DataType.FLOAT, 2, 3, 4))).hasMessageContaining("[mb, 2, T]")
                .hasMessageContaining("[2, 3, 4]");
        assertThatThrownBy(() -> new BertConfig(50, 16, 2, 3, 32, 12, 2, 1e-12)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("hidden").hasMessageContaining("numHeads = 3").hasMessageContaining("16");
        assertThatThrownBy(() -> new PriLoraBertBlock.Builder().hidden(16).numHeads(2).intermediate(32).rank(17).build())
                .hasMessageContaining("rank").hasMessageContaining("17");
        assertThatThrownBy(() -> new org.deeplearning4j.nn.conf.NeuralNetConfiguration.Builder().list()
                .layer(new BertEmbeddings.Builder().config(SMALL).build()).setInputType(InputType.recurrent(3)).build())
                .hasMessageContaining("InputType.recurrent(2)").hasMessageContaining("3");
        assertThatThrownBy(() -> new org.deeplearning4j.nn.conf.NeuralNetConfiguration.Builder().list()
                .layer(new PriLoraBertBlock.Builder().config(SMALL).rank(2).build()).setInputType(InputType.recurrent(8)).build())
                .hasMessageContaining("hidden = 16").hasMessageContaining("8");
    }
}
