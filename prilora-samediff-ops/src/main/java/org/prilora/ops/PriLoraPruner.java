package org.prilora.ops;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.Arrays;
import java.util.Objects;

/**
 * Importance-based pruning of a LoRA A matrix (PRILoRA, spec section 3): scores
 * {@code S = |A| ⊙ x̄} (x̄ broadcast over rows) and zeroes, in every row, the
 * {@code floor(γ · nIn)} entries with the smallest score, ties going to the lowest column index.
 *
 * <p>Everything runs as ND4J ops on the array's device: a per-row {@code nth_element} finds the
 * threshold score, a compare selects the entries strictly below it, and a cumulative sum over the
 * entries equal to it picks the tied ones from the left. (ND4J M2.1's {@code topK} passes its
 * arguments in the wrong order, so it is not used.)
 */
public final class PriLoraPruner {

    private PriLoraPruner() {
    }

    /** Entries pruned per row of an A with {@code nIn} columns: floor(fraction · nIn), robust to binary rounding. */
    public static int prunedPerRow(double fraction, long nIn) {
        return (int) Math.floor(fraction * nIn + 1e-9);
    }

    /**
     * Prunes {@code a} in place.
     *
     * @param a          the adapter's A, {@code [r, nIn]}
     * @param inputNorms x̄, length {@code nIn} (any vector shape)
     * @param fraction   γ in [0, 1)
     * @param maskOrNull null in REGROW mode; in PERSISTENT_MASK mode the 0/1 mask {@code [r, nIn]}: entries
     *                   already masked count as the lowest scores (so they stay pruned), and on return the
     *                   mask holds exactly the pruned entries as 0
     * @return the number of entries zeroed ({@code r · floor(γ·nIn)})
     */
    public static long prune(INDArray a, INDArray inputNorms, double fraction, INDArray maskOrNull) {
        Objects.requireNonNull(a, "a");
        Objects.requireNonNull(inputNorms, "inputNorms");
        if (a.rank() != 2) {
            throw new IllegalArgumentException("a: expected a 2-D matrix [r, nIn], got shape " + Arrays.toString(a.shape()));
        }
        long r = a.size(0);
        long nIn = a.size(1);
        if (!inputNorms.isVector() && !(inputNorms.isScalar() && nIn == 1) || inputNorms.length() != nIn) {
            throw new IllegalArgumentException("inputNorms: expected a vector of length nIn = " + nIn + ", got shape "
                    + Arrays.toString(inputNorms.shape()));
        }
        if (!(fraction >= 0.0 && fraction < 1.0)) {
            throw new IllegalArgumentException("fraction: expected a value in [0, 1), got " + fraction);
        }
        if (maskOrNull != null && !Arrays.equals(maskOrNull.shape(), a.shape())) {
            throw new IllegalArgumentException("mask: expected the shape of a " + Arrays.toString(a.shape()) + ", got "
                    + Arrays.toString(maskOrNull.shape()));
        }
        int k = prunedPerRow(fraction, nIn);
        if (k == 0) {
            return 0;
        }
        INDArray keep = keepMask(a, inputNorms, k, maskOrNull);
        a.muli(keep.castTo(a.dataType()));
        if (maskOrNull != null) {
            maskOrNull.assign(keep.castTo(maskOrNull.dataType()));
        }
        return r * k;
    }

    /**
     * The 0/1 matrix (in A's floating type, shape of A) that keeps every entry except the k lowest-scoring
     * of each row. Does not modify its inputs.
     */
    public static INDArray keepMask(INDArray a, INDArray inputNorms, int k, INDArray maskOrNull) {
        long nIn = a.size(1);
        DataType dt = a.dataType();
        // Scores in double: exact ties in float scores must stay exact ties, and |a|·x̄ never loses order this way.
        INDArray scores = Transforms.abs(a.castTo(DataType.DOUBLE), true);
        scores.muliRowVector(inputNorms.reshape(1, nIn).castTo(DataType.DOUBLE));
        if (maskOrNull != null) {
            // Already-masked entries score -1, below every real score (which is >= 0), so they are pruned first.
            INDArray m = maskOrNull.castTo(DataType.DOUBLE);
            scores.muli(m).subi(m.rsub(1.0));
        }
        INDArray threshold = kthSmallestPerRow(scores, k).reshape(-1, 1);      // [r,1]
        // Row-wise compares as broadcast subtractions (INDArray.broadcast() copies element by element and is slow);
        // x - t is exactly 0 iff x == t, and negative iff x < t.
        INDArray diff = scores.subColumnVector(threshold);
        INDArray belowD = diff.lt(0.0).castTo(DataType.DOUBLE);
        INDArray equalD = diff.eq(0.0).castTo(DataType.DOUBLE);
        INDArray quota = belowD.sum(true, 1).rsubi((double) k).addi(0.5);     // [r,1]: ties to take, + 0.5
        INDArray tieRank = equalD.cumsum(1);                                     // 1-based position among ties
        INDArray takeTie = tieRank.subColumnVector(quota).lt(0.0).castTo(DataType.DOUBLE).muli(equalD);
        INDArray pruned = belowD.addi(takeTie);
        return pruned.rsubi(1.0).castTo(dt);
    }

    /** The k-th smallest value (1-based k) of every row of a matrix, via ND4J's nth_element. */
    private static INDArray kthSmallestPerRow(INDArray scores, int k) {
        DynamicCustomOp op = DynamicCustomOp.builder("nth_element")
                .addInputs(scores, Nd4j.scalar(DataType.INT, k - 1))
                .addIntegerArguments(0)
                .build();
        INDArray[] out = Nd4j.getExecutioner().exec(op);
        return out[0];
    }
}
