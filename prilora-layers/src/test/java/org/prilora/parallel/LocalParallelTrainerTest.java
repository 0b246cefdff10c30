package org.prilora.parallel;

import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.PriLoraCheckpoints;
import org.prilora.PriLoraListener;
import org.prilora.config.PruningMode;

import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.prilora.parallel.ParallelFixtures.SCHEDULE;

/**
 * The local thread-pool trainer against single-JVM {@code fit} with a {@link PriLoraListener} on the same global
 * batches: ragged shards (23 rows on 3 workers, a short last batch of 3 rows, so one worker gets none), both pruning
 * modes, MultiLayerNetwork and ComputationGraph, double precision.
 */
class LocalParallelTrainerTest {

    /** Batches of 10, 10, 3 rows (shards 4/3/3, 4/3/3, 1/1/1); two epochs are 6 steps, the last one a pruning step. */
    private static final List<DataSet> BATCHES = ParallelFixtures.batches(ParallelFixtures.data(23, 1), 10);

    @BeforeAll
    static void doublePrecision() {
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    }

    private static MultiLayerNetwork trainSingle(MultiLayerNetwork start, int epochs) {
        MultiLayerNetwork ref = start.clone();
        ref.setListeners(new PriLoraListener(SCHEDULE));
        for (int e = 0; e < epochs; e++) {
            for (DataSet b : BATCHES) {
                ref.fit(b);
            }
        }
        return ref;
    }

    @ParameterizedTest
    @EnumSource(PruningMode.class)
    void multiLayerNetworkMatchesSingleJvmTraining(PruningMode mode) {
        MultiLayerNetwork start = ParallelFixtures.adaptedMlp(mode);
        MultiLayerNetwork ref = trainSingle(start, 2);
        MultiLayerNetwork net = start.clone();
        net.setListeners(new PriLoraListener(SCHEDULE));   // the trainer takes the schedule from it
        try (LocalParallelTrainer t = new LocalParallelTrainer(net, ParallelConfig.builder().workers(3).build())) {
            for (int e = 0; e < 2; e++) {
                for (DataSet b : BATCHES) {
                    StepResult r = t.step(b);
                    assertThat(r.examples()).isEqualTo(b.numExamples());
                }
            }
            assertThat(t.driver().engine().progress().pruningStepsDone()).isEqualTo(3);
        }
        assertThat(net.getIterationCount()).isEqualTo(ref.getIterationCount()).isEqualTo(6);
        assertThat(ParallelFixtures.zerosInA(ref)).isPositive();
        ParallelFixtures.assertSameTraining(ref, net, 1e-6);
        assertThat(net.score()).isCloseTo(ref.score(), org.assertj.core.api.Assertions.within(1e-9));
    }

    @Test
    void computationGraphMatchesSingleJvmTraining() {
        ComputationGraph start = ParallelFixtures.adaptedGraph(PruningMode.PERSISTENT_MASK);
        ComputationGraph ref = start.clone();
        ref.setListeners(new PriLoraListener(SCHEDULE));
        ComputationGraph net = start.clone();
        try (LocalParallelTrainer t = new LocalParallelTrainer(net,
                ParallelConfig.builder().workers(2).pruning(SCHEDULE).build())) {
            for (int e = 0; e < 2; e++) {
                for (DataSet b : BATCHES) {
                    ref.fit(b);
                    t.step(b);
                }
            }
        }
        assertThat(ParallelFixtures.zerosInA(ref)).isPositive();
        ParallelFixtures.assertSameTraining(ref, net, 1e-6);
    }

    @Test
    void aBadRowIsNamedAndLeavesTheModelUnchanged() {
        MultiLayerNetwork net = ParallelFixtures.adaptedMlp(PruningMode.REGROW);
        DataSet bad = BATCHES.get(0).copy();
        bad.getFeatures().putScalar(7, 2, Double.NaN);   // global row 7: worker 2's shard (rows 7..9), its row 0
        try (LocalParallelTrainer t = new LocalParallelTrainer(net, ParallelConfig.builder().workers(3).pruning(SCHEDULE).build())) {
            t.step(BATCHES.get(1));
            INDArray before = net.params().dup();
            INDArray updaterBefore = net.getUpdater().getStateViewArray().dup();
            assertThatThrownBy(() -> t.step(bad)).isInstanceOf(BadRowException.class)
                    .hasMessageContaining("worker 2, row 0 of its shard (row 7 of the global batch of step 2)")
                    .hasMessageContaining("features hold NaN or infinity")
                    .satisfies(e -> assertThat(((BadRowException) e).row()).isEqualTo(7));
            assertThat(net.params()).isEqualTo(before);
            assertThat(net.getUpdater().getStateViewArray()).isEqualTo(updaterBefore);
            assertThat(net.getIterationCount()).isEqualTo(1);
            t.step(BATCHES.get(1));                          // training goes on
            assertThat(net.getIterationCount()).isEqualTo(2);
        }
    }

    @Test
    void resumeFromACheckpointEqualsTrainingWithoutAStop(@TempDir Path dir) throws Exception {
        MultiLayerNetwork start = ParallelFixtures.adaptedMlp(PruningMode.PERSISTENT_MASK);
        ParallelConfig cfg = ParallelConfig.builder().workers(2).pruning(SCHEDULE).build();
        MultiLayerNetwork uninterrupted = start.clone();
        try (LocalParallelTrainer t = new LocalParallelTrainer(uninterrupted, cfg)) {
            for (int e = 0; e < 2; e++) {
                t.fit(new org.deeplearning4j.datasets.iterator.ExistingDataSetIterator(BATCHES));
            }
        }
        MultiLayerNetwork first = start.clone();
        Path file;
        try (LocalParallelTrainer t = new LocalParallelTrainer(first, cfg)) {
            t.fit(new org.deeplearning4j.datasets.iterator.ExistingDataSetIterator(BATCHES));
            file = PriLoraCheckpoints.saveTo(dir, t.model(), 2);
        }
        MultiLayerNetwork resumed = PriLoraCheckpoints.restoreMultiLayerNetwork(file);
        try (LocalParallelTrainer t = new LocalParallelTrainer(resumed, cfg)) {
            t.fit(new org.deeplearning4j.datasets.iterator.ExistingDataSetIterator(BATCHES));
        }
        assertThat(resumed.getIterationCount()).isEqualTo(uninterrupted.getIterationCount()).isEqualTo(6);
        assertThat(resumed.getEpochCount()).isEqualTo(2);
        assertThat(resumed.params()).isEqualTo(uninterrupted.params());
        assertThat(resumed.getUpdater().getStateViewArray()).isEqualTo(uninterrupted.getUpdater().getStateViewArray());
    }

    @Test
    void layoutShipsOnlyTrainableParametersAndMasks() {
        MultiLayerNetwork net = ParallelFixtures.adaptedMlp(PruningMode.PERSISTENT_MASK);
        ParamLayout layout = ParamLayout.of(net);
        long trainable = 0;
        long masks = 0;
        for (org.deeplearning4j.nn.api.Layer l : net.getLayers()) {
            for (String k : l.paramTable().keySet()) {
                if (ParamLayout.isTrainable(l, k)) {
                    trainable += l.getParam(k).length();
                } else if (k.equals(org.prilora.layers.AdapterKeys.MASK) || k.endsWith("loraM")) {
                    masks += l.getParam(k).length();
                }
            }
        }
        assertThat(layout.trainableLength()).isEqualTo(trainable).isLessThan((int) net.numParams());
        assertThat(layout.shippedLength()).isEqualTo(trainable + masks);
        assertThat(masks).isPositive();
        MultiLayerNetwork other = net.clone();
        other.params().assign(0);
        layout.unpackShipped(other, layout.packShipped(net));
        assertThat(layout.packShipped(other).copy().get(3)).isEqualTo(layout.packShipped(net).get(3));
        assertThat(ParamLayout.of(other).packShipped(other).length()).isEqualTo(layout.shippedLength());
    }

    @Test
    void shardSizesDifferByAtMostOne() {
        assertThat(Batches.shardSizes(10, 3)).containsExactly(4, 3, 3);
        assertThat(Batches.shardSizes(2, 3)).containsExactly(1, 1, 0);
        assertThatThrownBy(() -> Batches.shardSizes(4, 0)).hasMessageContaining("shards: expected >= 1, got 0");
        assertThatThrownBy(() -> ParallelConfig.builder().workers(0).build()).hasMessageContaining("workers: expected 1 to 1024, got 0");
    }
}
