package org.prilora.spark;

import org.apache.spark.api.java.function.Function;
import org.apache.spark.broadcast.Broadcast;
import org.prilora.parallel.FlatValues;
import org.prilora.parallel.ShardResult;
import org.prilora.parallel.ShardWorker;

/** One partition's part of a step on a driver-held batch: gradient and input-norm squares of its shard. */
final class BatchShardTask implements Function<BatchShard, ShardResult> {
    private static final long serialVersionUID = 1L;

    private final String trainerId;
    private final Broadcast<ModelBytes> model;
    private final Broadcast<FlatValues> params;
    private final int iteration;
    private final int epoch;

    BatchShardTask(String trainerId, Broadcast<ModelBytes> model, Broadcast<FlatValues> params, int iteration, int epoch) {
        this.trainerId = trainerId;
        this.model = model;
        this.params = params;
        this.iteration = iteration;
        this.epoch = epoch;
    }

    @Override
    public ShardResult call(BatchShard s) {
        ShardWorker w = WorkerPool.borrow(trainerId, model);
        try {
            return w.compute(iteration, epoch, params.value(), s.rows(),
                    r -> "shard " + s.shard + ", row " + r + " of the shard (row " + (s.firstRow + r)
                            + " of the global batch of step " + (iteration + 1) + ")",
                    r -> (long) (s.firstRow + r), s.shard);
        } finally {
            WorkerPool.release(trainerId, w);
        }
    }
}
