package org.prilora.parallel;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.api.DataSet;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.function.IntFunction;

/** Row ranges of batches, shard sizes and the row checks of the data-parallel trainers. */
public final class Batches {
    private Batches() {
    }

    /**
     * Sizes of {@code shards} contiguous shards of {@code n} rows: the first {@code n % shards} get one row more, so
     * sizes differ by at most one; a shard is empty when {@code n < shards}.
     */
    public static int[] shardSizes(int n, int shards) {
        if (shards < 1) {
            throw new IllegalArgumentException("shards: expected >= 1, got " + shards);
        }
        if (n < 0) {
            throw new IllegalArgumentException("n: expected >= 0, got " + n);
        }
        int[] s = new int[shards];
        for (int i = 0; i < shards; i++) {
            s[i] = n / shards + (i < n % shards ? 1 : 0);
        }
        return s;
    }

    /** A DataSet as a one-input, one-output MultiDataSet (same arrays, masks kept). */
    public static MultiDataSet toMulti(DataSet ds) {
        return new org.nd4j.linalg.dataset.MultiDataSet(
                new INDArray[]{ds.getFeatures()}, new INDArray[]{ds.getLabels()},
                ds.getFeaturesMaskArray() == null ? null : new INDArray[]{ds.getFeaturesMaskArray()},
                ds.getLabelsMaskArray() == null ? null : new INDArray[]{ds.getLabelsMaskArray()});
    }

    /** Number of examples (rows of the first input). */
    public static int rows(MultiDataSet mds) {
        return (int) mds.getFeatures(0).size(0);
    }

    /** Rows {@code [from, to)} of every array (copies). */
    public static MultiDataSet rows(MultiDataSet mds, int from, int to) {
        return new org.nd4j.linalg.dataset.MultiDataSet(slice(mds.getFeatures(), from, to), slice(mds.getLabels(), from, to),
                slice(mds.getFeaturesMaskArrays(), from, to), slice(mds.getLabelsMaskArrays(), from, to));
    }

    private static INDArray[] slice(INDArray[] arrays, int from, int to) {
        if (arrays == null) {
            return null;
        }
        INDArray[] out = new INDArray[arrays.length];
        for (int i = 0; i < arrays.length; i++) {
            out[i] = arrays[i] == null ? null : slice(arrays[i], from, to);
        }
        return out;
    }

    private static INDArray slice(INDArray a, int from, int to) {
        INDArrayIndex[] idx = new INDArrayIndex[a.rank()];
        idx[0] = NDArrayIndex.interval(from, to);
        for (int i = 1; i < idx.length; i++) {
            idx[i] = NDArrayIndex.all();
        }
        return a.get(idx).dup(a.ordering());
    }

    /**
     * Checks that every array of the batch is finite and has as many rows as the first input. On failure throws
     * {@link BadRowException} with {@code where.apply(row)} (the row's description) and what is wrong.
     */
    static void requireFinite(MultiDataSet mds, IntFunction<String> where, IntFunction<Long> dataRow, int partition) {
        int n = rows(mds);
        check("features", mds.getFeatures(), n, where, dataRow, partition);
        check("labels", mds.getLabels(), n, where, dataRow, partition);
        check("features mask", mds.getFeaturesMaskArrays(), n, where, dataRow, partition);
        check("labels mask", mds.getLabelsMaskArrays(), n, where, dataRow, partition);
    }

    private static void check(String what, INDArray[] arrays, int n, IntFunction<String> where, IntFunction<Long> dataRow,
                              int partition) {
        if (arrays == null) {
            return;
        }
        for (int k = 0; k < arrays.length; k++) {
            INDArray a = arrays[k];
            if (a == null) {
                continue;
            }
            String name = arrays.length == 1 ? what : what + " " + k;
            if (a.size(0) != n) {
                throw new IllegalArgumentException(name + ": expected " + n + " rows like the first input, got shape "
                        + java.util.Arrays.toString(a.shape()));
            }
            if (!a.dataType().isFPType() || Double.isFinite(a.sumNumber().doubleValue())) {
                continue;
            }
            for (int r = 0; r < n; r++) {
                if (!Double.isFinite(slice(a, r, r + 1).sumNumber().doubleValue())) {
                    throw new BadRowException(where.apply(r) + ": " + name + " hold NaN or infinity; the step was rejected"
                            + " before any update (model unchanged)", partition, dataRow.apply(r), null);
                }
            }
        }
    }
}
