package org.prilora.spark;

import org.apache.spark.api.java.function.Function;
import org.apache.spark.broadcast.Broadcast;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.prilora.parallel.BadRowException;
import org.prilora.parallel.FlatValues;
import org.prilora.parallel.ShardResult;
import org.prilora.parallel.ShardWorker;

import java.util.ArrayList;
import java.util.List;

/** One partition's part of one step: convert and check its rows of the batch, then gradient and input-norm squares. */
final class ShardTask<T> implements Function<ShardBlock<T>, ShardResult> {
    private static final long serialVersionUID = 1L;

    private final String trainerId;
    private final Broadcast<ModelBytes> model;
    private final Broadcast<FlatValues> params;
    private final RowConverter<T> converter;
    private final ExampleTemplate template;
    private final int iteration;
    private final int epoch;
    private final int batch;

    ShardTask(String trainerId, Broadcast<ModelBytes> model, Broadcast<FlatValues> params, RowConverter<T> converter,
              ExampleTemplate template, int iteration, int epoch, int batch) {
        this.trainerId = trainerId;
        this.model = model;
        this.params = params;
        this.converter = converter;
        this.template = template;
        this.iteration = iteration;
        this.epoch = epoch;
        this.batch = batch;
    }

    private String where(ShardBlock<T> b, int i) {
        return "partition " + b.partition + ", row " + i + " of the partition (row " + b.dataRows[i] + " of the data, global"
                + " batch " + batch + ", step " + (iteration + 1) + ")";
    }

    @Override
    public ShardResult call(ShardBlock<T> b) {
        int from = b.batchStart[batch];
        int to = b.batchStart[batch + 1];
        if (from == to) {
            return ShardResult.empty();
        }
        List<MultiDataSet> examples = new ArrayList<>(to - from);
        for (int i = from; i < to; i++) {
            MultiDataSet m;
            try {
                m = converter.toExample(b.rows.get(i));
            } catch (RuntimeException e) {
                throw new BadRowException(where(b, i) + ": the row converter failed: " + e, b.partition, b.dataRows[i], e);
            }
            template.check(m, where(b, i), b.partition, b.dataRows[i]);
            examples.add(m);
        }
        MultiDataSet shard = examples.size() == 1 ? examples.get(0) : org.nd4j.linalg.dataset.MultiDataSet.merge(examples);
        ShardWorker w = WorkerPool.borrow(trainerId, model);
        try {
            return w.compute(iteration, epoch, params.value(), shard, r -> where(b, from + r), r -> b.dataRows[from + r],
                    b.partition);
        } finally {
            WorkerPool.release(trainerId, w);
        }
    }
}
