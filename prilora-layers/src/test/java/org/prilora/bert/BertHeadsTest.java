package org.prilora.bert;

import org.deeplearning4j.gradientcheck.GradientCheckUtil;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.learning.config.NoOp;
import org.prilora.config.RankSchedule;
import org.prilora.heads.SentenceLabels;
import org.prilora.heads.SubWordLabels;
import org.prilora.heads.TokenLabels;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.PriLoraLayer;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The task heads of {@link BertEncoderFactory}: gradient checks in double precision through adapters, pooling and
 * head; the token loss mask; configuration round trips; clear errors.
 */
class BertHeadsTest {

    /** hidden 8, 2 heads, 1 block, FFN 16: every score costs little, so whole parameters can be checked. */
    private static final BertConfig TINY = new BertConfig(40, 8, 1, 2, 16, 12, 2, 1e-12);
    private static final int MB = 3;
    private static final int T = 6;

    @BeforeAll
    static void doublePrecision() {
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    }

    private static BertEncoderFactory.Builder factory() {
        return BertEncoderFactory.builder(TINY).dataType(DataType.DOUBLE).seed(5).updater(new NoOp()).rankSchedule(RankSchedule.uniform(2));
    }

    /** B random (A already is), so every adapter gradient is non-trivial. */
    private static MultiLayerNetwork withRandomAdapters(MultiLayerNetwork net) {
        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(9);
        for (Layer l : net.getLayers()) {
            if (l.conf().getLayer() instanceof PriLoraLayer p) {
                for (AdapterModule m : p.adapterModules()) {
                    INDArray b = l.getParam(m.bKey());
                    b.assign(Nd4j.randn(b.shape(), rng).muli(0.5));
                }
            }
        }
        return net;
    }

    /**
     * Checks the head's parameters in full and, of the block below (whose own gradients {@code PriLoraBertBlockTest}
     * checks), the query's A and the output projection's B: the gradient has to pass back through pooling to reach them.
     */
    private static boolean gradientsOk(MultiLayerNetwork net, DataSet ds) {
        java.util.Set<String> skip = new java.util.HashSet<>(BertTestBatches.frozenParams(net));
        int block = BertEncoderFactory.blockLayerIndex(0);
        for (String key : net.getLayer(block).paramTable().keySet()) {
            if (!key.equals("qloraA") && !key.equals("oloraB")) {
                skip.add(block + "_" + key);
            }
        }
        return GradientCheckUtil.checkGradients(new GradientCheckUtil.MLNConfig().net(net).input(ds.getFeatures())
                .labels(ds.getLabels()).inputMask(ds.getFeaturesMaskArray()).labelMask(ds.getLabelsMaskArray())
                .excludeParams(skip).subset(true).maxPerParam(16));
    }

    @Test
    void gradientCheckOfAClassWeightedSequenceClassifierOnMeanPooling() {
        MultiLayerNetwork net = withRandomAdapters(factory().head(BertHead.sequenceClassification(1.0, 3.0, 0.5)).build());
        assertThat(gradientsOk(net, BertTestBatches.tokenBatch(TINY, MB, T, 3, 1))).isTrue();
    }

    @Test
    void gradientCheckOfRegressionOnClsPooling() {
        MultiLayerNetwork net = withRandomAdapters(factory().pooling(BertPooling.CLS).head(BertHead.regression()).build());
        DataSet ds = BertTestBatches.tokenBatch(TINY, MB, T, 2, 2);
        ds.setLabels(SentenceLabels.regression(new double[]{0.3, -1.2, 2.5}, DataType.DOUBLE));
        assertThat(gradientsOk(net, ds)).isTrue();
    }

    @Test
    void gradientCheckOfAClassifierOnTheCheckpointsPooler() {
        MultiLayerNetwork net = withRandomAdapters(factory().pooling(BertPooling.CLS_POOLER).classifier(2).build());
        assertThat(net.getLayer(BertEncoderFactory.POOLER_NAME).conf().getLayer())
                .isInstanceOf(org.deeplearning4j.nn.conf.layers.DenseLayer.class);
        assertThat(gradientsOk(net, BertTestBatches.tokenBatch(TINY, MB, T, 2, 3))).isTrue();
    }

    @Test
    void gradientCheckOfTokenClassificationWithALabelMask() {
        MultiLayerNetwork net = withRandomAdapters(factory().head(BertHead.tokenClassification(1.0, 2.0, 1.5)).build());
        DataSet ds = tokenDataSet(4);
        assertThat(ds.getLabelsMaskArray().sumNumber().doubleValue()).isLessThan(ds.getFeaturesMaskArray().sumNumber().doubleValue());
        assertThat(gradientsOk(net, ds)).isTrue();
    }

    /** Per-token labels {@code [mb, 3, T]}; the label mask leaves out position 0 ([CLS]) and every padded position. */
    private static DataSet tokenDataSet(long seed) {
        DataSet ds = BertTestBatches.tokenBatch(TINY, MB, T, 2, seed);
        INDArray mask = ds.getFeaturesMaskArray();
        INDArray labelMask = mask.dup();
        labelMask.get(NDArrayIndex.all(), NDArrayIndex.point(0)).assign(0);
        INDArray labels = Nd4j.zeros(DataType.DOUBLE, MB, 3, T);
        java.util.Random r = new java.util.Random(seed);
        for (int b = 0; b < MB; b++) {
            for (int t = 0; t < T; t++) {
                if (labelMask.getDouble(b, t) > 0) {
                    labels.putScalar(new long[]{b, r.nextInt(3), t}, 1.0);
                }
            }
        }
        return new DataSet(ds.getFeatures(), labels, mask, labelMask);
    }

    @Test
    void theTokenLossIgnoresWhateverLabelsSitUnderTheMask() {
        MultiLayerNetwork net = withRandomAdapters(factory().head(BertHead.tokenClassification(3)).build());
        DataSet ds = tokenDataSet(5);
        DataSet changed = ds.copy();
        INDArray mask = ds.getLabelsMaskArray();
        for (int b = 0; b < MB; b++) {
            for (int t = 0; t < T; t++) {
                if (mask.getDouble(b, t) == 0) {           // padding and the special position: any label at all
                    changed.getLabels().putScalar(new long[]{b, 0, t}, 1.0);
                    changed.getLabels().putScalar(new long[]{b, 2, t}, 7.0);
                }
            }
        }
        net.setInput(ds.getFeatures());
        net.setLayerMaskArrays(ds.getFeaturesMaskArray(), ds.getLabelsMaskArray());
        net.setLabels(ds.getLabels());
        net.computeGradientAndScore();
        double score = net.score();
        INDArray grad = net.gradient().gradient().dup();
        net.setLabels(changed.getLabels());
        net.computeGradientAndScore();
        assertThat(net.score()).isEqualTo(score);
        assertThat(net.gradient().gradient()).isEqualTo(grad);
        // while a label at a real position does change the loss
        DataSet real = ds.copy();
        real.getLabels().get(NDArrayIndex.point(0), NDArrayIndex.all(), NDArrayIndex.point(1)).assign(Nd4j.createFromArray(1.0, 0, 0));
        real.getLabels().get(NDArrayIndex.point(0), NDArrayIndex.all(), NDArrayIndex.point(2)).assign(Nd4j.createFromArray(0, 1.0, 0));
        net.setLabels(real.getLabels());
        net.computeGradientAndScore();
        assertThat(net.score()).isNotEqualTo(score);
    }

    @Test
    void tokenLabelsFromARealTokenizerMaskSpecialTokensPaddingAndLaterPieces() throws Exception {
        try (BertTokenizer tok = BertTokenizer.fromClasspath(BertTokenizerTest.RESOURCE, 16, false)) {
            // "tokenization" is two pieces (token ##ization); "hello world" is two words of one piece each
            BertTokenizer.Batch b = tok.encode(List.of("hello tokenization", "world"));
            List<int[]> words = List.of(new int[]{1, 2}, new int[]{TokenLabels.IGNORE});
            TokenLabels first = TokenLabels.fromWordLabels(b, words, 3, SubWordLabels.FIRST_PIECE, DataType.DOUBLE);
            // [CLS] hello token ##ization [SEP] / [CLS] world [SEP] [PAD] [PAD]
            assertThat(first.mask().toDoubleMatrix()).isDeepEqualTo(new double[][]{{0, 1, 1, 0, 0}, {0, 0, 0, 0, 0}});
            assertThat(first.labels().getDouble(0, 1, 1)).isEqualTo(1.0);
            assertThat(first.labels().getDouble(0, 2, 2)).isEqualTo(1.0);
            assertThat(first.labels().sumNumber().doubleValue()).isEqualTo(2.0);
            TokenLabels every = TokenLabels.fromWordLabels(b, words, 3, SubWordLabels.EVERY_PIECE, DataType.DOUBLE);
            assertThat(every.mask().toDoubleMatrix()).isDeepEqualTo(new double[][]{{0, 1, 1, 1, 0}, {0, 0, 0, 0, 0}});
            assertThat(every.labels().getDouble(0, 2, 3)).isEqualTo(1.0);
            // character spans: "tokenization" starts at 6; a span over "ization" marks the whole word
            assertThat(TokenLabels.wordsInSpans(b, 0, List.of(new int[]{11, 18}), 1, 0)).containsExactly(0, 1);

            INDArray out = Nd4j.zeros(DataType.DOUBLE, 2, 3, b.length());
            out.putScalar(new long[]{0, 2, 1}, 1.0);   // hello -> 2
            out.putScalar(new long[]{0, 1, 2}, 1.0);   // token -> 1 (##ization says 0: the first piece decides)
            assertThat(TokenLabels.wordPredictions(b, out).get(0)).containsExactly(2, 1);

            assertThatThrownBy(() -> TokenLabels.fromWordLabels(b, List.of(new int[]{1}, new int[]{0}), 3, SubWordLabels.FIRST_PIECE))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("wordLabels[0]: expected 2 labels")
                    .hasMessageContaining("got 1");
            assertThatThrownBy(() -> TokenLabels.fromWordLabels(b, List.of(new int[]{1, 3}, new int[]{0}), 3, SubWordLabels.FIRST_PIECE))
                    .hasMessageContaining("wordLabels[0][1]").hasMessageContaining("[0, 2]").hasMessageContaining("got 3");
            assertThatThrownBy(() -> TokenLabels.fromWordLabels(b, List.of(new int[]{1, 0}), 3, SubWordLabels.FIRST_PIECE))
                    .hasMessageContaining("one label array per sentence of the batch (2), got 1");
            assertThatThrownBy(() -> TokenLabels.fromWordLabels(tok.encodePairs(List.of("a"), List.of("b")),
                    List.of(new int[]{0}), 2, SubWordLabels.FIRST_PIECE)).hasMessageContaining("is a pair");
        }
    }

    @Test
    void sentenceLabelsRejectAClassIndexOutOfRange() {
        assertThat(SentenceLabels.oneHot(new int[]{2, 0}, 3, DataType.DOUBLE).toDoubleMatrix())
                .isDeepEqualTo(new double[][]{{0, 0, 1}, {1, 0, 0}});
        assertThatThrownBy(() -> SentenceLabels.oneHot(new int[]{0, 3}, 3, DataType.DOUBLE))
                .hasMessageContaining("labels[1]").hasMessageContaining("[0, 2]").hasMessageContaining("got 3");
        assertThatThrownBy(() -> SentenceLabels.regression(new double[]{Double.NaN}, DataType.DOUBLE)).hasMessageContaining("targets[0]");
    }

    @Test
    void headsAndPoolingSurviveTheJsonRoundTripAndBadSettingsAreNamed() {
        for (BertEncoderFactory.Builder b : List.of(factory().pooling(BertPooling.CLS_POOLER).head(BertHead.sequenceClassification(1, 2)),
                factory().head(BertHead.tokenClassification(4)), factory().plain().pooling(BertPooling.CLS).head(BertHead.regression()),
                factory().pooling(BertPooling.CLS))) {
            MultiLayerConfiguration conf = b.configuration();
            assertThat(MultiLayerConfiguration.fromJson(conf.toJson())).isEqualTo(conf);
        }
        MultiLayerNetwork embed = factory().pooling(BertPooling.CLS).build();   // no head: the pooled vector
        DataSet ds = BertTestBatches.tokenBatch(TINY, MB, T, 2, 6);
        INDArray hidden = factory().build().output(ds.getFeatures(), false, ds.getFeaturesMaskArray(), null);
        INDArray cls = embed.output(ds.getFeatures(), false, ds.getFeaturesMaskArray(), null);
        assertThat(cls).isEqualTo(hidden.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.point(0)));

        assertThatThrownBy(() -> factory().pooling(BertPooling.CLS).head(BertHead.tokenClassification(2)).configuration())
                .hasMessageContaining("takes no pooling").hasMessageContaining("CLS");
        assertThatThrownBy(() -> BertHead.sequenceClassification(1.0, -2.0)).hasMessageContaining("classWeights[1]")
                .hasMessageContaining("-2.0");
        assertThatThrownBy(() -> BertHead.tokenClassification(1)).hasMessageContaining("numLabels: expected >= 2, got 1");
        BertWeights noPooler = new BertWeights(TINY, java.util.Map.of(), java.util.Map.of());
        assertThatThrownBy(() -> factory().pooling(BertPooling.CLS_POOLER).classifier(2).build(noPooler))
                .hasMessageContaining("no pooler").hasMessageContaining("pooler.dense.weight").hasMessageContaining("BertPooling.CLS");
    }
}
