package org.prilora.parallel;

import org.deeplearning4j.nn.api.Model;
import org.nd4j.linalg.dataset.api.DataSet;
import org.nd4j.linalg.dataset.api.MultiDataSet;

/**
 * A synchronous data-parallel trainer that takes global batches from its caller: {@link LocalParallelTrainer}
 * (threads of this JVM) or {@code org.prilora.spark.SparkPriLoraTrainer} (Spark executors). Each step splits the
 * batch into shards, sums the shards' gradients and input-norm squares and lets the {@link SyncDriver} update the
 * network, so that a training loop written against this interface runs unchanged on either. One thread drives it.
 */
public interface SyncTrainer extends AutoCloseable {

    /** One step on {@code globalBatch}: the batch as a one-input, one-output MultiDataSet. */
    default StepResult step(DataSet globalBatch) {
        return step(Batches.toMulti(globalBatch));
    }

    /** One step on {@code globalBatch} (a ComputationGraph may have several inputs and outputs). */
    StepResult step(MultiDataSet globalBatch);

    /** The driver (the trained network, its updater and the pruning core). */
    SyncDriver driver();

    /** The network being trained. */
    Model model();

    /** Releases the workers; the model stays usable. */
    @Override
    void close();
}
