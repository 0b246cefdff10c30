package org.prilora.spark;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.prilora.parallel.BadRowException;

import java.io.Serializable;
import java.util.Arrays;

/**
 * The shapes (without the example dimension) of the data's first example: every other row must have the same, so a
 * row of another shape is reported by name instead of failing inside a merge or a layer. When the data has a
 * features mask, the sequence length may differ between global batches (each batch padded to its own length, as a
 * length-bucketing batcher does).
 */
final class ExampleTemplate implements Serializable {
    private static final long serialVersionUID = 1L;

    private final long[][][] shapes;   // features, labels, features masks, labels masks; null entries: absent

    private ExampleTemplate(long[][][] shapes) {
        this.shapes = shapes;
    }

    static ExampleTemplate of(MultiDataSet first) {
        return new ExampleTemplate(shapesOf(first));
    }

    private static long[][][] shapesOf(MultiDataSet m) {
        return new long[][][]{tail(m.getFeatures()), tail(m.getLabels()), tail(m.getFeaturesMaskArrays()),
                tail(m.getLabelsMaskArrays())};
    }

    private static long[][] tail(INDArray[] arrays) {
        if (arrays == null) {
            return null;
        }
        long[][] out = new long[arrays.length][];
        for (int i = 0; i < arrays.length; i++) {
            out[i] = arrays[i] == null ? null : arrays[i].shape();
        }
        return out;
    }

    private static final String[] NAMES = {"features", "labels", "features mask", "labels mask"};

    /** Throws {@link BadRowException} unless {@code example} is one row shaped like the first example. */
    void check(MultiDataSet example, String where, int partition, long dataRow) {
        if (example == null || example.getFeatures() == null || example.getFeatures().length == 0) {
            throw new BadRowException(where + ": the row converter returned no features", partition, dataRow, null);
        }
        long[][][] s = shapesOf(example);
        boolean sequences = shapes[2] != null;
        for (int k = 0; k < 4; k++) {
            long[][] got = s[k];
            long[][] want = shapes[k];
            if (got == null && want == null) {
                continue;
            }
            if (got == null || want == null || got.length != want.length) {
                throw new BadRowException(where + ": " + NAMES[k] + " " + (got == null ? "absent" : got.length + " array(s)")
                        + ", expected " + (want == null ? "none" : want.length + " array(s)") + " like the data's first row",
                        partition, dataRow, null);
            }
            for (int i = 0; i < got.length; i++) {
                if (got[i] == null && want[i] == null) {
                    continue;
                }
                if (got[i] == null || want[i] == null) {
                    throw new BadRowException(where + ": " + NAMES[k] + (got.length > 1 ? " " + i : "") + " is "
                            + (got[i] == null ? "absent" : "present") + ", unlike in the data's first row", partition, dataRow, null);
                }
                // Sequences may differ in length between batches (each batch padded to its own length) when the
                // data has a features mask: the time dimension, the last one of 3-D arrays and 2-D masks, is free.
                int end = sequences && (got[i].length == 3 || (k >= 2 && got[i].length == 2)) ? got[i].length - 1 : got[i].length;
                if (got[i] == null || want[i] == null || got[i].length < 1 || got[i][0] != 1 || got[i].length != want[i].length
                        || !Arrays.equals(Arrays.copyOfRange(got[i], 1, end), Arrays.copyOfRange(want[i], 1, end))) {
                    throw new BadRowException(where + ": " + NAMES[k] + (got.length > 1 ? " " + i : "") + " of shape "
                            + (got[i] == null ? "null" : Arrays.toString(got[i])) + ", expected "
                            + (want[i] == null ? "none" : Arrays.toString(want[i])) + " like the data's first row (one example)",
                            partition, dataRow, null);
                }
            }
        }
    }
}
