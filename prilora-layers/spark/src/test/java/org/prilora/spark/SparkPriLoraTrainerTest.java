package org.prilora.spark;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.learning.config.Adam;
import org.prilora.bert.BertConfig;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.config.AdapterSettings;
import org.prilora.config.RankSchedule;
import org.prilora.layers.TestNets;
import org.prilora.parallel.Batches;
import java.util.ArrayList;
import java.util.Random;
import org.prilora.PriLoraListener;
import org.prilora.config.PruningMode;
import org.prilora.parallel.BadRowException;
import org.prilora.parallel.ParallelConfig;
import org.prilora.parallel.ParallelFixtures;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.prilora.parallel.ParallelFixtures.SCHEDULE;

/**
 * The Spark trainer on {@code local[2,2]} (two cores, every task tried up to twice), one SparkContext for the class:
 * parity with single-JVM training (a small MLP from DataSet rows, the BERT encoder from tokenized sentences), a task
 * that fails once and is retried, and bad rows.
 */
class SparkPriLoraTrainerTest {
    private static JavaSparkContext sc;
    private static final AtomicInteger FAILED_TASKS = new AtomicInteger();
    /** 23 rows, global batches of 10 (the last one 3 rows), 3 shards: 4/3/3, 4/3/3 and 1/1/1 rows per partition. */
    private static final DataSet DATA = ParallelFixtures.data(23, 1);

    @BeforeAll
    static void startSpark() {
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
        sc = new JavaSparkContext(new SparkConf().setMaster("local[2,2]").setAppName("prilora-spark-test")
                .set("spark.ui.enabled", "false").set("spark.driver.host", "127.0.0.1")
                .set("spark.driver.bindAddress", "127.0.0.1"));
        sc.sc().addSparkListener(new SparkListener() {
            @Override
            public void onTaskEnd(SparkListenerTaskEnd taskEnd) {
                if (!taskEnd.taskInfo().successful()) {
                    FAILED_TASKS.incrementAndGet();
                }
            }
        });
    }

    @AfterAll
    static void stopSpark() {
        if (sc != null) {
            sc.stop();
        }
    }

    private static JavaRDD<DataSet> rows(DataSet data) {
        return sc.parallelize(ParallelFixtures.batches(data, 1), 3);
    }

    private static MultiLayerNetwork single(MultiLayerNetwork start, int epochs) {
        MultiLayerNetwork ref = start.clone();
        ref.setListeners(new PriLoraListener(SCHEDULE));
        for (int e = 0; e < epochs; e++) {
            for (DataSet b : ParallelFixtures.batches(DATA, 10)) {
                ref.fit(b);
            }
        }
        return ref;
    }

    @ParameterizedTest
    @EnumSource(PruningMode.class)
    void matchesSingleJvmTraining(PruningMode mode) {
        MultiLayerNetwork start = ParallelFixtures.adaptedMlp(mode);
        MultiLayerNetwork ref = single(start, 2);
        MultiLayerNetwork net = start.clone();
        ShardedData<DataSet> data = ShardedData.of(rows(DATA), RowConverter.dataSets(), 10, 3);
        assertThat(data.numBatches()).isEqualTo(3);
        try (SparkPriLoraTrainer t = new SparkPriLoraTrainer(sc, net, ParallelConfig.builder().pruning(SCHEDULE).build())) {
            t.fitEpoch(data);
            t.fitEpoch(data);
        } finally {
            data.unpersist();
        }
        assertThat(net.getIterationCount()).isEqualTo(6);
        assertThat(net.getEpochCount()).isEqualTo(2);
        assertThat(ParallelFixtures.zerosInA(ref)).isPositive();
        ParallelFixtures.assertSameTraining(ref, net, 1e-6);
    }

    /** The driver makes the batches (as the main job's length bucketing does); Spark only computes the shards. */
    @ParameterizedTest
    @EnumSource(PruningMode.class)
    void batchesHeldByTheDriverMatchSingleJvmTraining(PruningMode mode) {
        MultiLayerNetwork start = ParallelFixtures.adaptedMlp(mode);
        MultiLayerNetwork ref = single(start, 2);
        MultiLayerNetwork net = start.clone();
        try (SparkPriLoraTrainer t = new SparkPriLoraTrainer(sc, net, ParallelConfig.builder().pruning(SCHEDULE).build())) {
            for (int e = 0; e < 2; e++) {
                for (DataSet b : ParallelFixtures.batches(DATA, 10)) {   // 10, 10 and 3 rows over 2 shards
                    t.step(b);
                }
                t.driver().endEpoch();
            }
        }
        assertThat(net.getIterationCount()).isEqualTo(6);
        assertThat(ParallelFixtures.zerosInA(ref)).isPositive();
        ParallelFixtures.assertSameTraining(ref, net, 1e-6);
    }

    @Test
    void aBadRowInABatchHeldByTheDriverIsNamedAndLeavesTheModelUnchanged() {
        MultiLayerNetwork net = ParallelFixtures.adaptedMlp(PruningMode.REGROW);
        DataSet nan = DATA.copy();
        nan.getFeatures().putScalar(17, 3, Double.NaN);   // batch 1, position 7 → shard 1 (rows 5..9), its row 2
        List<DataSet> batches = ParallelFixtures.batches(nan, 10);
        try (SparkPriLoraTrainer t = new SparkPriLoraTrainer(sc, net, ParallelConfig.builder().pruning(SCHEDULE).build())) {
            t.step(batches.get(0));
            INDArray before = net.params().dup();
            INDArray updater = net.getUpdater().getStateViewArray().dup();
            assertThatThrownBy(() -> t.step(batches.get(1))).isInstanceOf(BadRowException.class)
                    .hasMessageContaining("shard 1, row 2 of the shard (row 7 of the global batch of step 2)")
                    .hasMessageContaining("features hold NaN or infinity");
            assertThat(net.params()).isEqualTo(before);
            assertThat(net.getUpdater().getStateViewArray()).isEqualTo(updater);
            assertThat(net.getIterationCount()).isEqualTo(1);
        }
    }

    @Test
    void anExecutorKeepsTheNetworkCopiesOfItsLastFewTrainersOnly() {
        MultiLayerNetwork start = ParallelFixtures.adaptedMlp(PruningMode.REGROW);
        DataSet batch = ParallelFixtures.batches(DATA, 10).get(0);
        List<SparkPriLoraTrainer> open = new ArrayList<>();
        try {
            for (int i = 0; i < WorkerPool.TRAINERS_KEPT + 2; i++) {   // never closed: as on a remote executor
                SparkPriLoraTrainer t = new SparkPriLoraTrainer(sc, start.clone(),
                        ParallelConfig.builder().pruning(SCHEDULE).build());
                open.add(t);
                t.step(batch);
            }
            assertThat(WorkerPool.trainers()).isEqualTo(WorkerPool.TRAINERS_KEPT);
            open.get(0).step(batch);   // an evicted trainer still trains: its executors restore a copy again
            assertThat(WorkerPool.trainers()).isEqualTo(WorkerPool.TRAINERS_KEPT);
        } finally {
            open.forEach(SparkPriLoraTrainer::close);
        }
        assertThat(WorkerPool.trainers()).isZero();
    }

    @Test
    void anEmptyBatchHeldByTheDriverIsRejectedAsByTheLocalTrainer() {
        MultiLayerNetwork net = ParallelFixtures.adaptedMlp(PruningMode.REGROW);
        INDArray before = net.params().dup();
        DataSet empty = new DataSet(Nd4j.zeros(DataType.DOUBLE, 0, 10), Nd4j.zeros(DataType.DOUBLE, 0, 3));
        try (SparkPriLoraTrainer t = new SparkPriLoraTrainer(sc, net, ParallelConfig.builder().pruning(SCHEDULE).build())) {
            assertThatThrownBy(() -> t.step(empty)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("the global batch has no examples");
        }
        assertThat(net.params()).isEqualTo(before);
    }

    @Test
    void computationGraphMatchesSingleJvmTraining() {
        org.deeplearning4j.nn.graph.ComputationGraph start = ParallelFixtures.adaptedGraph(PruningMode.REGROW);
        org.deeplearning4j.nn.graph.ComputationGraph ref = start.clone();
        ref.setListeners(new PriLoraListener(SCHEDULE));
        for (DataSet b : ParallelFixtures.batches(DATA, 10)) {
            ref.fit(b);
        }
        org.deeplearning4j.nn.graph.ComputationGraph net = start.clone();
        ShardedData<DataSet> data = ShardedData.of(rows(DATA), RowConverter.dataSets(), 10, 2);
        try (SparkPriLoraTrainer t = new SparkPriLoraTrainer(sc, net, ParallelConfig.builder().pruning(SCHEDULE).build())) {
            t.fitEpoch(data);
        } finally {
            data.unpersist();
        }
        assertThat(net.getIterationCount()).isEqualTo(3);
        ParallelFixtures.assertSameTraining(ref, net, 1e-6);
    }

    /** Throws once, the first time any row is converted while {@code marker} does not exist (and creates it). */
    record FailOnce(String marker) implements RowConverter<DataSet> {
        @Override
        public org.nd4j.linalg.dataset.api.MultiDataSet toExample(DataSet row) {
            Path p = Path.of(marker);
            try {
                if (Files.notExists(p)) {
                    Files.createFile(p);
                    throw new IllegalStateException("injected executor failure");
                }
            } catch (java.nio.file.FileAlreadyExistsException e) {
                // another task created it first: this one goes on
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return org.prilora.parallel.Batches.toMulti(row);
        }
    }

    @Test
    void aTaskThatFailsOnceIsRetriedAndTheResultIsUnchanged(@TempDir Path dir) {
        MultiLayerNetwork start = ParallelFixtures.adaptedMlp(PruningMode.PERSISTENT_MASK);
        ParallelConfig cfg = ParallelConfig.builder().pruning(SCHEDULE).build();
        MultiLayerNetwork clean = start.clone();
        ShardedData<DataSet> cleanData = ShardedData.of(rows(DATA), RowConverter.dataSets(), 10, 3);
        try (SparkPriLoraTrainer t = new SparkPriLoraTrainer(sc, clean, cfg)) {
            t.fitEpoch(cleanData);
        }
        Path marker = dir.resolve("failed-once");
        MultiLayerNetwork retried = start.clone();
        // the data's first row converts on the driver (the shape template) while the marker exists; then it is armed
        ShardedData<DataSet> data;
        try {
            Files.createFile(marker);
            data = ShardedData.of(rows(DATA), new FailOnce(marker.toString()), 10, 3);
            Files.delete(marker);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        int failedBefore = FAILED_TASKS.get();
        try (SparkPriLoraTrainer t = new SparkPriLoraTrainer(sc, retried, cfg)) {
            t.fitEpoch(data);
        }
        assertThat(Files.exists(marker)).isTrue();
        assertThat(FAILED_TASKS.get() - failedBefore).isEqualTo(1);
        assertThat(retried.getIterationCount()).isEqualTo(3);
        // same shards, same parameters: only the order in which treeReduce adds partitions may differ
        ParallelFixtures.assertSameTraining(clean, retried, 1e-12);
        ParallelFixtures.assertSameTraining(single(start, 1), retried, 1e-6);
    }

    @Test
    void aBadRowIsNamedByPartitionAndRowAndLeavesTheModelUnchanged() {
        MultiLayerNetwork net = ParallelFixtures.adaptedMlp(PruningMode.REGROW);
        DataSet nan = DATA.copy();
        nan.getFeatures().putScalar(17, 3, Double.NaN);   // batch 1, position 7 → shard 2, its 4th row overall
        ShardedData<DataSet> data = ShardedData.of(rows(nan), RowConverter.dataSets(), 10, 3);
        try (SparkPriLoraTrainer t = new SparkPriLoraTrainer(sc, net, ParallelConfig.builder().pruning(SCHEDULE).build())) {
            t.step(data, 0);
            INDArray before = net.params().dup();
            INDArray updater = net.getUpdater().getStateViewArray().dup();
            assertThatThrownBy(() -> t.step(data, 1)).isInstanceOf(BadRowException.class)
                    .hasMessageContaining("partition 2, row 3 of the partition (row 17 of the data, global batch 1, step 2)")
                    .hasMessageContaining("features hold NaN or infinity");
            assertThat(net.params()).isEqualTo(before);
            assertThat(net.getUpdater().getStateViewArray()).isEqualTo(updater);
            assertThat(net.getIterationCount()).isEqualTo(1);
        } finally {
            data.unpersist();
        }
    }

    @Test
    void aRowOfAnotherShapeIsNamed() {
        List<DataSet> list = new java.util.ArrayList<>(ParallelFixtures.batches(DATA, 1));
        list.set(4, new DataSet(Nd4j.zeros(DataType.DOUBLE, 1, 9), list.get(4).getLabels()));
        ShardedData<DataSet> data = ShardedData.of(sc.parallelize(list, 2), RowConverter.dataSets(), 10, 3);
        MultiLayerNetwork net = ParallelFixtures.adaptedMlp(PruningMode.REGROW);
        INDArray before = net.params().dup();
        try (SparkPriLoraTrainer t = new SparkPriLoraTrainer(sc, net, ParallelConfig.builder().pruning(SCHEDULE).build())) {
            assertThatThrownBy(() -> t.step(data, 0)).isInstanceOf(BadRowException.class)
                    .hasMessageContaining("partition 1, row 0 of the partition (row 4 of the data, global batch 0, step 1)")
                    .hasMessageContaining("features of shape [1, 9], expected [1, 10]");
        } finally {
            data.unpersist();
        }
        assertThat(net.params()).isEqualTo(before);
    }

    private static final BertConfig SMALL = new BertConfig(50, 16, 2, 4, 24, 12, 2, 1e-12);
    private static final int T = 6;

    private static List<TokenizedRow> sentences(int n, long seed) {
        Random r = new Random(seed);
        List<TokenizedRow> out = new ArrayList<>();
        for (int s = 0; s < n; s++) {
            int t = T - (s / 4) % 2;                       // each batch of 4 padded to its own length: 6, 5, 6
            int len = s % 4 == 0 ? t : 2 + r.nextInt(t - 2);
            int[] ids = new int[t];
            int[] mask = new int[t];
            for (int i = 0; i < len; i++) {
                ids[i] = 1 + r.nextInt(SMALL.vocabSize() - 1);
                mask[i] = 1;
            }
            out.add(new TokenizedRow(ids, mask, r.nextInt(2)));
        }
        return out;
    }

    /**
     * The BERT encoder from an RDD of tokenized, right-padded sentences ({@link TokenizedRow}): 11 sentences, batches
     * of 4 (the last one 3) padded to lengths 6, 5 and 6 (as a length-bucketing batcher does), 2 shards.
     */
    @Test
    void tokenizedSentencesTrainTheEncoderLikeASingleJvm() {
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
        MultiLayerNetwork start = BertEncoderFactory.builder(SMALL).dataType(DataType.DOUBLE).seed(3).updater(new Adam(1e-2))
                .rankSchedule(RankSchedule.linear(2, 4))
                .adapter(AdapterSettings.builder().pruningMode(PruningMode.PERSISTENT_MASK).build()).classifier(2).build();
        TestNets.randomizeAdapters(start.getLayers(), 9);
        List<TokenizedRow> rows = sentences(11, 4);
        RowConverter<TokenizedRow> conv = RowConverter.tokenized(2, true, DataType.DOUBLE);

        MultiLayerNetwork ref = start.clone();
        ref.setListeners(new PriLoraListener(SCHEDULE));
        List<DataSet> batches = new ArrayList<>();
        for (int from = 0; from < rows.size(); from += 4) {
            List<MultiDataSet> ex = new ArrayList<>();
            for (TokenizedRow row : rows.subList(from, Math.min(rows.size(), from + 4))) {
                ex.add(conv.toExample(row));
            }
            MultiDataSet b = org.nd4j.linalg.dataset.MultiDataSet.merge(ex);
            batches.add(new DataSet(b.getFeatures(0), b.getLabels(0), b.getFeaturesMaskArray(0), null));
        }
        for (DataSet b : batches) {
            ref.fit(b);
        }

        MultiLayerNetwork net = start.clone();
        ShardedData<TokenizedRow> data = ShardedData.of(sc.parallelize(rows, 2), conv, 4, 2);
        try (SparkPriLoraTrainer t = new SparkPriLoraTrainer(sc, net, ParallelConfig.builder().pruning(SCHEDULE).build())) {
            t.fitEpoch(data);
        } finally {
            data.unpersist();
        }
        assertThat(net.getIterationCount()).isEqualTo(3);
        assertThat(ParallelFixtures.zerosInA(ref)).isPositive();
        ParallelFixtures.assertSameTraining(ref, net, 1e-6);
        assertThat(Batches.shardSizes(3, 2)).containsExactly(2, 1);

        MultiLayerNetwork fed = start.clone();   // the same padded batches, made on the driver
        try (SparkPriLoraTrainer t = new SparkPriLoraTrainer(sc, fed, ParallelConfig.builder().pruning(SCHEDULE).build())) {
            for (DataSet b : batches) {
                t.step(b);
            }
        }
        ParallelFixtures.assertSameTraining(ref, fed, 1e-6);
    }
}
