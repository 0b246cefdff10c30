package org.prilora.bert;

import org.prilora.bert.BertNaming.Projection;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.prilora.PriLora;
import org.prilora.bert.BertNaming.Norm;
import org.prilora.config.PriLoraConfig;
import org.prilora.layers.AdapterModule;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@code PriLora.adapt} on a plain BERT encoder (blocks in full fine-tuning mode, as the base model) and
 * {@code PriLora.merge} back: weights carried over, ranks by depth, outputs unchanged at B = 0 and after merging.
 */
class BertAdaptAndMergeTest {

    /** hidden 16, 4 heads, 3 layers, FFN 24. */
    private static final BertConfig SMALL = new BertConfig(50, 16, 3, 4, 24, 12, 2, 1e-12);
    private static final int MB = 3;
    private static final int T = 6;

    @BeforeAll
    static void doublePrecision() {
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    }

    /** The "pretrained" plain encoder: random weights, non-trivial LayerNorms and biases. */
    private static MultiLayerNetwork base() {
        MultiLayerNetwork net = BertEncoderFactory.builder(SMALL).dataType(DataType.DOUBLE).seed(3).updater(new Adam(1e-2))
                .plain().classifier(2).build();
        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(4);
        for (Layer l : net.getLayers()) {
            if (l.conf().getLayer() instanceof BertBlock) {
                for (Norm n : Norm.values()) {
                    l.getParam(n.gainKey()).addi(Nd4j.randn(l.getParam(n.gainKey()).shape(), rng).muli(0.2));
                    l.getParam(n.biasKey()).assign(Nd4j.randn(l.getParam(n.biasKey()).shape(), rng).muli(0.2));
                }
                for (Projection p : Projection.values()) {
                    l.getParam(BertBlock.biasKey(p)).assign(Nd4j.randn(l.getParam(BertBlock.biasKey(p)).shape(), rng).muli(0.1));
                }
            }
        }
        return net;
    }

    private static DataSet batch(long seed) {
        return BertTestBatches.tokenBatch(SMALL, MB, T, 2, seed);
    }

    private static PriLoraConfig config() {
        return PriLoraConfig.builder().rankSchedule(RankSchedule.linear(2, 6)).alpha(8)
                .pruning(PruningSchedule.builder().fraction(0.25).interval(1).startStep(1).build())
                .modulesToSave(BertEncoderFactory.CLASSIFIER_NAME).seed(11).build();
    }

    private static INDArray out(MultiLayerNetwork net, DataSet ds) {
        return net.output(ds.getFeatures(), false, ds.getFeaturesMaskArray(), null);
    }

    @Test
    void adaptConvertsEveryBlockByDepthKeepsTheWeightsAndTheOutput() {
        MultiLayerNetwork base = base();
        INDArray baseParams = base.params().dup();
        DataSet ds = batch(1);
        MultiLayerNetwork adapted = PriLora.adapt(base, config());

        assertThat(base.params()).isEqualTo(baseParams);                      // the base is never modified
        int[] ranks = new int[SMALL.numLayers()];
        for (int n = 0; n < SMALL.numLayers(); n++) {
            Layer a = adapted.getLayer(1 + n);
            Layer b = base.getLayer(1 + n);
            PriLoraBertBlock conf = (PriLoraBertBlock) a.conf().getLayer();
            assertThat(conf.getAdapter().alpha()).isEqualTo(8.0);
            assertThat(a).isInstanceOf(PriLoraBertBlockRuntime.class);
            ranks[n] = conf.getRank();
            for (AdapterModule s : conf.adapterModules()) {
                assertThat(a.getParam(s.weightKey())).isEqualTo(b.getParam(s.weightKey()));
                assertThat(a.getParam(s.biasKey())).isEqualTo(b.getParam(s.biasKey()));
                assertThat(a.getParam(s.bKey()).amaxNumber().doubleValue()).isZero();
                assertThat(a.getParam(s.aKey()).amaxNumber().doubleValue()).isPositive();
                assertThat(conf.isTrainableParam(s.weightKey())).isFalse();
            }
            for (Norm nm : Norm.values()) {
                assertThat(a.getParam(nm.gainKey())).isEqualTo(b.getParam(nm.gainKey()));
            }
        }
        assertThat(ranks).containsExactly(RankSchedule.linear(2, 6).ranks(SMALL.numLayers()));
        assertThat(adapted.getLayer(0).conf().getLayer()).isInstanceOf(BertEmbeddings.class);
        assertThat(adapted.getLayer(0).params()).isEqualTo(base.getLayer(0).params());
        // B = 0: the adapted network computes exactly what the base computes.
        assertThat(out(adapted, ds).sub(out(base, ds)).amaxNumber().doubleValue()).isLessThan(1e-12);

        // Training moves only A, B and the classifier.
        INDArray w0 = adapted.getLayer(1).getParam("qW").dup();
        INDArray emb = adapted.getLayer(0).params().dup();
        INDArray head = adapted.getLayer(adapted.getLayers().length - 1).params().dup();
        adapted.setListeners(PriLora.listener(config()));
        for (int i = 0; i < 3; i++) {
            adapted.fit(batch(10 + i));
        }
        assertThat(adapted.getLayer(1).getParam("qW")).isEqualTo(w0);
        assertThat(adapted.getLayer(0).params()).isEqualTo(emb);
        assertThat(adapted.getLayer(adapted.getLayers().length - 1).params()).isNotEqualTo(head);
        assertThat(adapted.getLayer(1).getParam("qloraB").amaxNumber().doubleValue()).isPositive();
    }

    @Test
    void mergeFoldsTheAdaptersIntoPlainBlocksWithTheSameOutput() {
        MultiLayerNetwork adapted = PriLora.adapt(base(), config());
        adapted.setListeners(PriLora.listener(config()));
        for (int i = 0; i < 3; i++) {
            adapted.fit(batch(20 + i));                                     // trains B and prunes A every step
        }
        DataSet ds = batch(2);
        MultiLayerNetwork merged = PriLora.merge(adapted);
        for (int n = 0; n < SMALL.numLayers(); n++) {
            assertThat(merged.getLayer(1 + n).conf().getLayer().getClass()).isEqualTo(BertBlock.class);
        }
        double diff = out(merged, ds).sub(out(adapted, ds)).amaxNumber().doubleValue();
        assertThat(diff).as("max |merged - adapted| output").isLessThan(1e-10);
        // The merged network is a base again: it can be adapted a second time.
        assertThat(PriLora.adapt(merged, config()).getLayer(1)).isInstanceOf(PriLoraBertBlockRuntime.class);
    }

    @Test
    void adapterDropoutIsRejectedForBertBlocksWithAClearMessage() {
        PriLoraConfig withDropout = config().toBuilder().loraDropout(0.1).build();
        assertThatThrownBy(() -> PriLora.adapt(base(), withDropout))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("encoder.layer.0").hasMessageContaining("loraDropout 0, got 0.1");
    }

    @Test
    void anAlreadyAdaptedEncoderIsRejected() {
        MultiLayerNetwork adapted = PriLora.adapt(base(), config());
        assertThatThrownBy(() -> PriLora.adapt(adapted, config()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("already a PRILoRA layer");
    }
}
