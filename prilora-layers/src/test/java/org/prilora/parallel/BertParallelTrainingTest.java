package org.prilora.parallel;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.prilora.PriLoraListener;
import org.prilora.bert.BertConfig;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.config.AdapterSettings;
import org.prilora.config.PruningMode;
import org.prilora.config.RankSchedule;
import org.prilora.layers.TestNets;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.prilora.parallel.ParallelFixtures.SCHEDULE;

/**
 * The BERT encoder (embeddings, PRILoRA blocks on the native runtime, masked mean pooling, classifier) trained by two
 * local workers equals single-JVM training: right-padded token batches of 5, 5 and 2 sentences (shards 3/2, 3/2,
 * 1/1), so padding masks and ragged shards meet in the input statistics of all six projections of every block.
 */
class BertParallelTrainingTest {
    private static final BertConfig SMALL = new BertConfig(50, 16, 2, 4, 24, 12, 2, 1e-12);
    private static final int T = 6;

    @BeforeAll
    static void doublePrecision() {
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    }

    /** Random token ids, row 0 full length and the others right-padded, with the mask and one-hot labels. */
    static DataSet tokens(int mb, long seed) {
        java.util.Random r = new java.util.Random(seed);
        INDArray ids = Nd4j.zeros(DataType.DOUBLE, mb, T);
        INDArray mask = Nd4j.zeros(DataType.DOUBLE, mb, T);
        INDArray labels = Nd4j.zeros(DataType.DOUBLE, mb, 2);
        for (int b = 0; b < mb; b++) {
            int len = b == 0 ? T : 2 + r.nextInt(T - 2);
            for (int i = 0; i < len; i++) {
                ids.putScalar(b, i, 1 + r.nextInt(SMALL.vocabSize() - 1));
                mask.putScalar(b, i, 1);
            }
            labels.putScalar(b, r.nextInt(2), 1);
        }
        return new DataSet(BertEncoderFactory.features(ids, Nd4j.zeros(DataType.DOUBLE, mb, T), DataType.DOUBLE), labels, mask, null);
    }

    static MultiLayerNetwork encoder(PruningMode mode) {
        MultiLayerNetwork net = BertEncoderFactory.builder(SMALL).dataType(DataType.DOUBLE).seed(3).updater(new Adam(1e-2))
                .rankSchedule(RankSchedule.linear(2, 4)).adapter(AdapterSettings.builder().pruningMode(mode).build())
                .classifier(2).build();
        TestNets.randomizeAdapters(net.getLayers(), 9);
        return net;
    }

    @ParameterizedTest
    @EnumSource(PruningMode.class)
    void bertEncoderMatchesSingleJvmTraining(PruningMode mode) {
        List<DataSet> batches = List.of(tokens(5, 1), tokens(5, 2), tokens(2, 3));
        MultiLayerNetwork start = encoder(mode);
        MultiLayerNetwork ref = start.clone();
        ref.setListeners(new PriLoraListener(SCHEDULE));
        MultiLayerNetwork net = start.clone();
        try (LocalParallelTrainer t = new LocalParallelTrainer(net, ParallelConfig.builder().workers(2).pruning(SCHEDULE).build())) {
            for (int e = 0; e < 2; e++) {
                for (DataSet b : batches) {
                    ref.fit(b);
                    t.step(b);
                }
            }
        }
        assertThat(net.getIterationCount()).isEqualTo(6);
        assertThat(ParallelFixtures.zerosInA(ref)).isPositive();
        ParallelFixtures.assertSameTraining(ref, net, 1e-6);
    }
}
