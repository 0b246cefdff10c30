package org.prilora.spark;

import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.Function2;
import org.apache.spark.broadcast.Broadcast;
import org.deeplearning4j.nn.api.Model;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.prilora.parallel.Batches;
import org.prilora.parallel.BadRowException;
import org.prilora.parallel.FlatValues;
import org.prilora.parallel.ParallelConfig;
import org.prilora.parallel.ShardResult;
import org.prilora.parallel.StepResult;
import org.prilora.parallel.SyncDriver;
import org.prilora.parallel.SyncTrainer;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Synchronous data-parallel PRILoRA training on Apache Spark. The driver holds the network, DL4J's updater and the
 * PRILoRA statistics and pruning ({@link SyncDriver}); the executors only compute. The network (frozen weights
 * included) is broadcast once, when the trainer is made; each step broadcasts only the trainable parameters and
 * masks, every partition computes DL4J's {@code computeGradientAndScore} on its shard of the global batch with its
 * own network copy and returns the summed gradient and per-feature sums of squared input norms, {@code treeReduce}
 * adds them up, and the driver takes the step. The result equals single-JVM {@code fit} on the same global batches
 * (see {@link ShardedData}) up to floating-point summation order; dropout is the exception (each partition draws
 * its own masks).
 *
 * <pre>{@code
 * ShardedData<TokenizedRow> data = ShardedData.of(rowsRdd, RowConverter.tokenized(2, true, DataType.FLOAT), 32, 4);
 * try (SparkPriLoraTrainer t = new SparkPriLoraTrainer(sc, net, ParallelConfig.builder().pruning(schedule).build())) {
 *     for (int e = 0; e < epochs; e++) {
 *         t.fitEpoch(data);
 *     }
 * }
 * }</pre>
 *
 * <p>A training loop that makes its own batches on the driver (as {@code LocalParallelTrainer}'s callers do) calls
 * {@link #step(MultiDataSet)} instead: the batch is cut into {@code sc.defaultParallelism()} shards (the executor
 * cores registered at that step), which travel with the step's tasks.
 *
 * <p>A failed task is retried by Spark (up to {@code spark.task.maxFailures}); a retry recomputes the same shard from
 * the same broadcast parameters, so the step is unchanged. A row that cannot be trained on fails the step with a
 * {@link BadRowException} naming its partition and row, before any update. {@code net} is the trained model:
 * checkpoint it between steps with {@code PriLoraCheckpoints}. One thread drives a trainer.
 */
public final class SparkPriLoraTrainer implements SyncTrainer {
    private static final Pattern BAD_ROW = Pattern.compile(Pattern.quote(BadRowException.class.getName()) + ": ([^\\n]*)");

    private final JavaSparkContext sc;
    private final SyncDriver driver;
    private final String id = UUID.randomUUID().toString();
    private final Broadcast<ModelBytes> model;
    private final int treeDepth;

    public SparkPriLoraTrainer(JavaSparkContext sc, Model net, ParallelConfig config) {
        this(sc, net, config, 2);
    }

    /** @param treeDepth the depth of {@code treeReduce} (2 is Spark's default; more for hundreds of partitions) */
    public SparkPriLoraTrainer(JavaSparkContext sc, Model net, ParallelConfig config, int treeDepth) {
        this.sc = Objects.requireNonNull(sc, "sc");
        if (treeDepth < 1) {
            throw new IllegalArgumentException("treeDepth: expected >= 1, got " + treeDepth);
        }
        this.driver = new SyncDriver(net, config);
        this.model = sc.broadcast(ModelBytes.of(net));
        this.treeDepth = treeDepth;
    }

    @Override
    public SyncDriver driver() {
        return driver;
    }

    @Override
    public Model model() {
        return driver.network();
    }

    /** One step on global batch {@code batch} ({@code 0 ≤ batch < data.numBatches()}). */
    public <T> StepResult step(ShardedData<T> data, int batch) {
        if (batch < 0 || batch >= data.numBatches()) {
            throw new IllegalArgumentException("batch: expected 0 to " + (data.numBatches() - 1) + ", got " + batch);
        }
        Broadcast<FlatValues> params = sc.broadcast(driver.shippedParams());
        ShardResult total;
        try {
            total = data.blocks().map(new ShardTask<>(id, model, params, data.converter(), data.template(),
                    driver.iteration(), driver.epoch(), batch)).treeReduce(new Sum(), treeDepth);
        } catch (Exception e) {   // Spark's job failures are SparkException, a checked exception thrown from Scala
            throw badRowOr(e);
        } finally {
            params.destroy();
        }
        return driver.apply(total);
    }

    /**
     * One step on a batch the driver holds: {@code sc.defaultParallelism()} contiguous shards (sizes differ by at
     * most one row), one task each. The shard count is read at every step: on a cluster it follows the executor
     * cores registered by then (at least 2), so early steps may use fewer shards; results differ only by rounding.
     */
    @Override
    public StepResult step(MultiDataSet globalBatch) {
        int n = Batches.rows(globalBatch);
        if (n == 0) {
            return driver.apply(ShardResult.empty());   // as LocalParallelTrainer does
        }
        int[] sizes = Batches.shardSizes(n, Math.max(1, sc.defaultParallelism()));
        List<BatchShard> shards = new ArrayList<>(sizes.length);
        int from = 0;
        for (int j = 0; j < sizes.length; j++) {
            if (sizes[j] > 0) {
                shards.add(BatchShard.of(j, from, Batches.rows(globalBatch, from, from + sizes[j])));
                from += sizes[j];
            }
        }
        Broadcast<FlatValues> params = sc.broadcast(driver.shippedParams());
        ShardResult total;
        try {
            total = sc.parallelize(shards, shards.size())
                    .map(new BatchShardTask(id, model, params, driver.iteration(), driver.epoch()))
                    .treeReduce(new Sum(), treeDepth);
        } catch (Exception e) {
            throw badRowOr(e);
        } finally {
            params.destroy();
        }
        return driver.apply(total);
    }

    /** Every global batch of {@code data} in order, then the epoch count is incremented. */
    public <T> List<StepResult> fitEpoch(ShardedData<T> data) {
        List<StepResult> out = new ArrayList<>(data.numBatches());
        for (int k = 0; k < data.numBatches(); k++) {
            out.add(step(data, k));
        }
        driver.endEpoch();
        return out;
    }

    /** A job failure caused by a bad row, as a {@link BadRowException} with the executor's message; else {@code e}. */
    private static RuntimeException badRowOr(Exception e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof BadRowException) {
                BadRowException b = (BadRowException) t;
                return new BadRowException(b.getMessage(), b.partition(), b.row(), e);
            }
        }
        Matcher m = BAD_ROW.matcher(String.valueOf(e.getMessage()));
        if (m.find()) {
            return new BadRowException(m.group(1), -1, -1, e);
        }
        return e instanceof RuntimeException ? (RuntimeException) e
                : new IllegalStateException("the Spark job of this step failed (model unchanged): " + e.getMessage(), e);
    }

    /**
     * Releases the broadcast network and this JVM's worker copies. Other executor JVMs keep theirs until they end or
     * until they have served {@value WorkerPool#TRAINERS_KEPT} newer trainers.
     */
    @Override
    public void close() {
        model.destroy();
        WorkerPool.close(id);
    }

    private static final class Sum implements Function2<ShardResult, ShardResult, ShardResult> {
        private static final long serialVersionUID = 1L;

        @Override
        public ShardResult call(ShardResult a, ShardResult b) {
            return a.plus(b);
        }
    }
}
