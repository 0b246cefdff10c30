package org.prilora.spark;

import org.nd4j.linalg.dataset.api.MultiDataSet;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;

/**
 * One shard of a global batch that the driver holds ({@link SparkPriLoraTrainer#step(MultiDataSet)}): its rows as
 * ND4J's own MultiDataSet bytes, and where they sit in the batch.
 */
final class BatchShard implements Serializable {
    private static final long serialVersionUID = 1L;

    final int shard;
    final int firstRow;
    private final byte[] bytes;

    private BatchShard(int shard, int firstRow, byte[] bytes) {
        this.shard = shard;
        this.firstRow = firstRow;
        this.bytes = bytes;
    }

    static BatchShard of(int shard, int firstRow, MultiDataSet rows) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            rows.save(out);
        } catch (IOException e) {
            throw new UncheckedIOException("could not serialize shard " + shard + " of the batch", e);
        }
        return new BatchShard(shard, firstRow, out.toByteArray());
    }

    MultiDataSet rows() {
        org.nd4j.linalg.dataset.MultiDataSet m = new org.nd4j.linalg.dataset.MultiDataSet();
        try {
            m.load(new ByteArrayInputStream(bytes));
        } catch (IOException e) {
            throw new UncheckedIOException("could not read shard " + shard + " of the batch on an executor", e);
        }
        return m;
    }
}
