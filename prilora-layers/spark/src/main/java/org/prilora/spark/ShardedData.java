package org.prilora.spark;

import org.apache.spark.HashPartitioner;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.Function2;
import org.apache.spark.api.java.function.PairFunction;
import org.apache.spark.storage.StorageLevel;
import org.prilora.parallel.Batches;
import scala.Tuple2;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;

/**
 * An RDD of training rows laid out for synchronous data-parallel steps. Global batch {@code k} is rows
 * {@code [k·B, (k+1)·B)} of the RDD in its order ({@code zipWithIndex}), the last one possibly short, exactly the
 * batches a single JVM would take from the same rows in the same order. Each batch is cut into {@code shards}
 * contiguous shards of near-equal size (they differ by at most one row); partition {@code j} holds shard {@code j}
 * of every batch, so each step every partition works. The layout is built with one shuffle and cached
 * ({@link StorageLevel#MEMORY_AND_DISK}); a lost partition is rebuilt from the lineage, which gives the same layout
 * as long as the source RDD's order is deterministic.
 *
 * @param <T> the row type
 */
public final class ShardedData<T> {
    private final JavaRDD<ShardBlock<T>> blocks;
    private final RowConverter<T> converter;
    private final ExampleTemplate template;
    private final long rows;
    private final int globalBatch;
    private final int shards;
    private final int numBatches;

    private ShardedData(JavaRDD<ShardBlock<T>> blocks, RowConverter<T> converter, ExampleTemplate template, long rows,
                        int globalBatch, int shards, int numBatches) {
        this.blocks = blocks;
        this.converter = converter;
        this.template = template;
        this.rows = rows;
        this.globalBatch = globalBatch;
        this.shards = shards;
        this.numBatches = numBatches;
    }

    /**
     * Lays out {@code rows} (one shuffle, then cached).
     *
     * @param globalBatch rows per optimizer step, over all shards (&ge; 1)
     * @param shards      partitions working on each step (&ge; 1); usually the number of executor cores
     */
    public static <T> ShardedData<T> of(JavaRDD<T> rows, RowConverter<T> converter, int globalBatch, int shards) {
        Objects.requireNonNull(rows, "rows");
        Objects.requireNonNull(converter, "converter");
        if (globalBatch < 1) {
            throw new IllegalArgumentException("globalBatch: expected >= 1, got " + globalBatch);
        }
        if (shards < 1) {
            throw new IllegalArgumentException("shards: expected >= 1, got " + shards);
        }
        long n = rows.count();
        if (n == 0) {
            throw new IllegalArgumentException("rows: the RDD is empty");
        }
        long batches = (n + globalBatch - 1) / globalBatch;
        if (batches > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("rows: " + n + " rows make " + batches + " batches of " + globalBatch
                    + ", more than " + Integer.MAX_VALUE);
        }
        T first = rows.first();
        ExampleTemplate template;
        try {
            template = ExampleTemplate.of(converter.toExample(first));
        } catch (RuntimeException e) {
            throw new org.prilora.parallel.BadRowException("row 0 of the data (the template for every other row): the row"
                    + " converter failed: " + e, -1, 0, e);
        }
        JavaRDD<ShardBlock<T>> blocks = rows.zipWithIndex()
                .mapToPair(new AssignShard<T>(n, globalBatch, shards))
                .partitionBy(new HashPartitioner(shards))
                .mapPartitionsWithIndex(new BuildBlock<T>(globalBatch, (int) batches), true)
                .persist(StorageLevel.MEMORY_AND_DISK());
        long built = blocks.count();
        if (built != shards) {
            throw new IllegalStateException("expected one block per shard (" + shards + "), got " + built);
        }
        return new ShardedData<>(blocks, converter, template, n, globalBatch, shards, (int) batches);
    }

    /** Global batches (steps per epoch). */
    public int numBatches() {
        return numBatches;
    }

    /** Rows in the data. */
    public long rows() {
        return rows;
    }

    public int globalBatch() {
        return globalBatch;
    }

    public int shards() {
        return shards;
    }

    /** Releases the cached layout. */
    public void unpersist() {
        blocks.unpersist(false);
    }

    JavaRDD<ShardBlock<T>> blocks() {
        return blocks;
    }

    RowConverter<T> converter() {
        return converter;
    }

    ExampleTemplate template() {
        return template;
    }

    /** Row index → (shard, (index, row)): the shard of the row's position within its batch. */
    private static final class AssignShard<T> implements PairFunction<Tuple2<T, Long>, Integer, Tuple2<Long, T>> {
        private static final long serialVersionUID = 1L;
        private final long n;
        private final int batch;
        private final int shards;

        AssignShard(long n, int batch, int shards) {
            this.n = n;
            this.batch = batch;
            this.shards = shards;
        }

        @Override
        public Tuple2<Integer, Tuple2<Long, T>> call(Tuple2<T, Long> t) {
            long idx = t._2();
            long k = idx / batch;
            int q = (int) (idx - k * batch);
            int size = (int) Math.min(batch, n - k * batch);
            int[] sizes = Batches.shardSizes(size, shards);
            int j = 0;
            int end = sizes[0];
            while (q >= end) {
                j++;
                end += sizes[j];
            }
            return new Tuple2<>(j, new Tuple2<>(idx, t._1()));
        }
    }

    /** The rows of one partition, sorted by index, as one {@link ShardBlock}. */
    private static final class BuildBlock<T>
            implements Function2<Integer, Iterator<Tuple2<Integer, Tuple2<Long, T>>>, Iterator<ShardBlock<T>>> {
        private static final long serialVersionUID = 1L;
        private final int batch;
        private final int batches;

        BuildBlock(int batch, int batches) {
            this.batch = batch;
            this.batches = batches;
        }

        @Override
        public Iterator<ShardBlock<T>> call(Integer partition, Iterator<Tuple2<Integer, Tuple2<Long, T>>> it) {
            List<Tuple2<Long, T>> rows = new ArrayList<>();
            while (it.hasNext()) {
                rows.add(it.next()._2());
            }
            rows.sort((a, b) -> Long.compare(a._1(), b._1()));
            long[] idx = new long[rows.size()];
            List<T> values = new ArrayList<>(rows.size());
            int[] start = new int[batches + 1];
            for (int i = 0; i < rows.size(); i++) {
                idx[i] = rows.get(i)._1();
                values.add(rows.get(i)._2());
                start[(int) (idx[i] / batch) + 1]++;
            }
            for (int k = 0; k < batches; k++) {
                start[k + 1] += start[k];
            }
            return List.of(new ShardBlock<>(partition, idx, values, start)).iterator();
        }
    }
}
