package org.prilora.spark;

import java.io.Serializable;
import java.util.List;

/**
 * Everything one partition holds of a sharded data set: its rows sorted by their index in the data, and for every
 * global batch k the range {@code [batchStart[k], batchStart[k+1])} of its rows that form its shard of that batch.
 */
final class ShardBlock<T> implements Serializable {
    private static final long serialVersionUID = 1L;

    final int partition;
    final long[] dataRows;
    final List<T> rows;
    final int[] batchStart;

    ShardBlock(int partition, long[] dataRows, List<T> rows, int[] batchStart) {
        this.partition = partition;
        this.dataRows = dataRows;
        this.rows = rows;
        this.batchStart = batchStart;
    }
}
