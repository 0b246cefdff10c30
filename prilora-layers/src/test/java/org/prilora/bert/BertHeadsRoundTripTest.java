package org.prilora.bert;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.learning.config.Adam;
import org.prilora.PriLora;
import org.prilora.PriLoraAdapters;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;
import org.prilora.heads.SentenceLabels;
import org.prilora.layers.PriLoraDense;

import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Each head through the whole PEFT workflow: {@code PriLora.adapt} with the head in modules_to_save, training with
 * pruning, the adapter file saved and loaded into the base, PEFT export/import, and {@code PriLora.merge}; outputs
 * equal at every step.
 */
class BertHeadsRoundTripTest {

    private static final BertConfig SMALL = new BertConfig(40, 8, 2, 2, 16, 12, 2, 1e-12);
    private static final int MB = 3;
    private static final int T = 6;

    /** The heads under test, with the pooling each uses. */
    enum Case {
        SEQUENCE_WEIGHTED_MEAN(BertHead.sequenceClassification(1.0, 2.0), BertPooling.MEAN),
        SEQUENCE_CLS_POOLER(BertHead.sequenceClassification(3), BertPooling.CLS_POOLER),
        REGRESSION_CLS(BertHead.regression(), BertPooling.CLS),
        TOKENS(BertHead.tokenClassification(3), null);

        final BertHead head;
        final BertPooling pooling;

        Case(BertHead head, BertPooling pooling) {
            this.head = head;
            this.pooling = pooling;
        }
    }

    @BeforeAll
    static void doublePrecision() {
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    }

    private static MultiLayerNetwork base(Case c) {
        BertEncoderFactory.Builder b = BertEncoderFactory.builder(SMALL).dataType(DataType.DOUBLE).seed(3).updater(new Adam(1e-2))
                .plain().head(c.head);
        return (c.pooling == null ? b : b.pooling(c.pooling)).build();
    }

    private static DataSet batch(Case c, long seed) {
        DataSet ds = BertTestBatches.tokenBatch(SMALL, MB, T, Math.max(2, c.head.numLabels()), seed);
        switch (c.head.kind()) {
            case REGRESSION -> ds.setLabels(SentenceLabels.regression(new double[]{0.5, -1, 2}, DataType.DOUBLE));
            case TOKEN_CLASSIFICATION -> {
                INDArray y = Nd4j.zeros(DataType.DOUBLE, MB, c.head.numLabels(), T);
                for (int b = 0; b < MB; b++) {
                    for (int t = 0; t < T; t++) {
                        y.putScalar(new long[]{b, (b + t) % c.head.numLabels(), t}, 1.0);
                    }
                }
                INDArray labelMask = ds.getFeaturesMaskArray().dup();
                labelMask.get(NDArrayIndex.all(), NDArrayIndex.point(0)).assign(0);
                return new DataSet(ds.getFeatures(), y.muli(labelMask.reshape(MB, 1, T)), ds.getFeaturesMaskArray(), labelMask);
            }
            default -> {
            }
        }
        return ds;
    }

    private static INDArray out(MultiLayerNetwork net, DataSet ds) {
        return net.output(ds.getFeatures(), false, ds.getFeaturesMaskArray(), null);
    }

    @ParameterizedTest
    @EnumSource(Case.class)
    void adaptTrainSaveLoadExportImportAndMerge(Case c, @TempDir Path dir) throws Exception {
        MultiLayerNetwork base = base(c);
        PriLoraConfig cfg = PriLoraConfig.builder().rankSchedule(RankSchedule.linear(2, 4)).alpha(8)
                .pruning(PruningSchedule.builder().fraction(0.25).interval(1).startStep(1).build())
                .modulesToSave(BertEncoderFactory.CLASSIFIER_NAME).seed(11).build();
        MultiLayerNetwork adapted = PriLora.adapt(base, cfg);
        DataSet probe = batch(c, 1);
        assertThat(out(adapted, probe).sub(out(base, probe)).amaxNumber().doubleValue()).isLessThan(1e-12);   // B = 0
        if (c.pooling == BertPooling.CLS_POOLER) {
            // the pooler is a dense layer: adapted like the projections (rank 4, the top of the schedule)
            assertThat(adapted.getLayer(BertEncoderFactory.POOLER_NAME).conf().getLayer()).isInstanceOf(PriLoraDense.class);
        }
        INDArray head0 = adapted.getLayer(BertEncoderFactory.CLASSIFIER_NAME).params().dup();
        adapted.setListeners(PriLora.listener(cfg));
        for (int i = 0; i < 2; i++) {
            adapted.fit(batch(c, 10 + i));
        }
        assertThat(adapted.getLayer(BertEncoderFactory.CLASSIFIER_NAME).params()).isNotEqualTo(head0);
        INDArray expected = out(adapted, probe);
        assertThat(out(adapted, probe).sub(out(base, probe)).amaxNumber().doubleValue()).isGreaterThan(1e-6);

        Path file = dir.resolve("adapter.prilora");
        PriLoraAdapters.save(adapted, file, cfg);
        MultiLayerNetwork loaded = PriLoraAdapters.load(base, file);
        assertThat(out(loaded, probe).sub(expected).amaxNumber().doubleValue()).isLessThan(1e-12);

        Path peft = dir.resolve("peft");
        PriLoraAdapters.exportPeft(adapted, peft, n -> n);
        Map<?, ?> json = new org.nd4j.shade.jackson.databind.ObjectMapper().readValue(peft.resolve("adapter_config.json").toFile(), Map.class);
        assertThat(json.get("modules_to_save")).isEqualTo(java.util.List.of(BertEncoderFactory.CLASSIFIER_NAME));
        Map<String, INDArray> tensors = org.prilora.io.SafeTensors.read(peft.resolve("adapter_model.safetensors"));
        assertThat(tensors).containsKey("base_model.model.classifier.weight")
                .containsKey("base_model.model.encoder.layer.1.output.dense.lora_A.weight");
        MultiLayerNetwork imported = PriLoraAdapters.importPeft(base, peft, n -> n);
        assertThat(out(imported, probe).sub(expected).amaxNumber().doubleValue()).isLessThan(1e-6);

        MultiLayerNetwork merged = PriLora.merge(loaded);
        assertThat(merged.getLayer(1).conf().getLayer().getClass()).isEqualTo(BertBlock.class);
        assertThat(out(merged, probe).sub(expected).amaxNumber().doubleValue()).isLessThan(1e-10);
    }
}
