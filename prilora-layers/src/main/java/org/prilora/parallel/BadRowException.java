package org.prilora.parallel;

/**
 * A row of the training data that cannot be trained on (it does not convert, has another shape than the data's first
 * row, or holds NaN or infinity). The message names where it is: the partition (Spark) or worker shard (local pool),
 * the row's index there and in the data; the step it belonged to is rejected before any update, so the model is
 * unchanged.
 */
public class BadRowException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final int partition;
    private final long row;

    /**
     * @param partition the Spark partition or local shard index
     * @param row       the row's index in the data (RDD order, or position in the global batch for the local trainer)
     */
    public BadRowException(String message, int partition, long row, Throwable cause) {
        super(message, cause);
        this.partition = partition;
        this.row = row;
    }

    /** The Spark partition, or the local shard, that holds the row. */
    public int partition() {
        return partition;
    }

    /** The row's index in the data. */
    public long row() {
        return row;
    }
}
