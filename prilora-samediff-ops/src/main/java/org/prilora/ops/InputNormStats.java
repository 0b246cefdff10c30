package org.prilora.ops;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastMulOp;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.Arrays;
import java.util.Objects;

/**
 * Exponential moving average of the L2 norm of every input feature of one adapted projection,
 * taken over the real (unmasked) rows or time steps of each batch:
 * {@code n_j = ||X[:, j]||_2}, {@code x̄ ← β·x̄ + (1-β)·n}, and {@code x̄ = n} on the first batch.
 *
 * <p>All state lives in one vector of length {@code nIn + 1}: the first {@code nIn} entries are x̄,
 * the last one counts the batches seen. Because it is one array it can be a non-trainable parameter
 * view of a DL4J layer or a SameDiff variable, and is then saved with the model. The reductions run as
 * ND4J ops; one scalar (the finiteness check) is read back per update.
 *
 * <p>Not thread-safe: one instance belongs to one training loop.
 */
public final class InputNormStats {

    private final long nIn;
    private final double beta;
    private final INDArray state;
    private final INDArray norms;
    private final INDArray count;

    /** New, empty statistics for {@code nIn} features (float32). */
    public InputNormStats(long nIn, double beta) {
        this(Nd4j.zeros(DataType.FLOAT, checkNIn(nIn) + 1), beta);
    }

    private InputNormStats(INDArray state, double beta) {
        if (!(beta >= 0.0 && beta < 1.0)) {
            throw new IllegalArgumentException("beta: expected a value in [0, 1), got " + beta);
        }
        this.state = state;
        this.nIn = state.length() - 1;
        this.beta = beta;
        if (state.elementWiseStride() != 1) {
            throw new IllegalArgumentException("state: expected a contiguous vector, got shape "
                    + Arrays.toString(state.shape()) + " with strides " + Arrays.toString(state.stride()));
        }
        INDArray flat = state.rank() == 1 ? state : state.reshape(state.length());
        this.norms = flat.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, nIn));
        this.count = flat.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(nIn, nIn + 1));
    }

    /**
     * Statistics backed by an existing state array of length {@code nIn + 1} (for example a layer's
     * parameter view); updates write through to it.
     */
    public static InputNormStats wrap(INDArray state, double beta) {
        Objects.requireNonNull(state, "state");
        if (state.length() < 2 || !state.isVector() || !state.dataType().isFPType()) {
            throw new IllegalArgumentException("state: expected a floating-point vector of length nIn + 1 >= 2, got shape "
                    + Arrays.toString(state.shape()) + " of " + state.dataType());
        }
        return new InputNormStats(state, beta);
    }

    private static long checkNIn(long nIn) {
        if (nIn < 1) {
            throw new IllegalArgumentException("nIn: expected >= 1, got " + nIn);
        }
        return nIn;
    }

    /** Updates from a 2-D batch {@code [mb, nIn]}; {@code mask} ({@code [mb]} or {@code [mb,1]}) may be null. */
    public void update(INDArray activations, INDArray maskOrNull) {
        update(activations, maskOrNull, null);
    }

    /**
     * Updates from one batch. If the batch holds NaN or infinity among its real rows, throws
     * {@link NonFiniteInputException} and leaves the statistics unchanged.
     *
     * @param activations {@code [mb, nIn]} when {@code format} is null, otherwise 3-D: NCW {@code [mb, nIn, T]}
     *                    or NWC {@code [mb, T, nIn]}
     * @param maskOrNull  1 for real rows/time steps, 0 for padding: {@code [mb]}/{@code [mb,1]} for 2-D input,
     *                    {@code [mb, T]} for 3-D input; null when every row is real
     * @param format      null for 2-D input, else the sequence layout
     */
    public void update(INDArray activations, INDArray maskOrNull, SequenceLayout format) {
        updateFromBatchNorms(batchNorms(activations, maskOrNull, format, nIn));
    }

    /**
     * Folds one batch's per-feature norms (from {@link #batchNorms}) into the EMA. If they hold NaN or
     * infinity, throws {@link NonFiniteInputException} and leaves the statistics unchanged.
     */
    public void updateFromBatchNorms(INDArray batchNorms) {
        if (batchNorms.length() != nIn) {
            throw new IllegalArgumentException("batchNorms: expected a vector of length nIn = " + nIn + ", got shape "
                    + Arrays.toString(batchNorms.shape()));
        }
        // Norms are >= 0, so the sum is finite exactly when every entry is.
        double total = batchNorms.sumNumber().doubleValue();
        if (!Double.isFinite(total)) {
            throw new NonFiniteInputException("activations: expected finite values, got NaN or infinity in the batch (norm sum "
                    + total + "); input statistics left unchanged");
        }
        // x̄ = n + c·(x̄ - n) with c = β once a batch has been seen, 0 on the first one.
        double c = count.getDouble(0) > 0 ? beta : 0.0;
        INDArray n = batchNorms.castTo(norms.dataType()).reshape(norms.shape());
        norms.subi(n).muli(c).addi(n);
        count.addi(1.0);
    }

    /**
     * L2 norm of each feature over the real rows/time steps of one batch, as a new vector of length
     * {@code nIn}. Shapes are validated; the result is in the activations' data type. Values at masked (padding)
     * positions never reach the result, not even NaN or infinity: x̄ is defined over real tokens only, so a batch
     * is non-finite for PRILoRA only when a real position is.
     */
    public static INDArray batchNorms(INDArray activations, INDArray maskOrNull, SequenceLayout format, long expectedNIn) {
        INDArray norms = maskedNorms(activations, maskOrNull, format, expectedNIn);
        if (maskOrNull != null && !Double.isFinite(norms.sumNumber().doubleValue())) {
            // Rare path: the mask multiplies squares, and NaN·0 is NaN, so zero the padding positions first.
            norms = maskedNorms(zeroMasked(activations, maskOrNull, format), maskOrNull, format, expectedNIn);
        }
        return norms;
    }

    /** A copy of {@code activations} with every masked row (2-D) or time step (3-D) set to 0. */
    private static INDArray zeroMasked(INDArray activations, INDArray mask, SequenceLayout format) {
        INDArray x = activations.dup('c');
        double[] m = mask.castTo(DataType.DOUBLE).dup('c').data().asDouble();
        long t = format == null ? 1 : activations.size(format == SequenceLayout.NCW ? 2 : 1);
        for (int i = 0; i < m.length; i++) {
            if (m[i] != 0) {
                continue;
            }
            if (format == null) {
                x.getRow(i).assign(0);
            } else {
                org.nd4j.linalg.indexing.INDArrayIndex b = org.nd4j.linalg.indexing.NDArrayIndex.point(i / t);
                org.nd4j.linalg.indexing.INDArrayIndex step = org.nd4j.linalg.indexing.NDArrayIndex.point(i % t);
                org.nd4j.linalg.indexing.INDArrayIndex all = org.nd4j.linalg.indexing.NDArrayIndex.all();
                (format == SequenceLayout.NCW ? x.get(b, all, step) : x.get(b, step, all)).assign(0);
            }
        }
        return x;
    }

    private static INDArray maskedNorms(INDArray activations, INDArray maskOrNull, SequenceLayout format, long expectedNIn) {
        Objects.requireNonNull(activations, "activations");
        INDArray sq;
        int[] reduceDims;
        if (format == null) {
            if (activations.rank() != 2 || activations.size(1) != expectedNIn) {
                throw new IllegalArgumentException("activations: expected 2-D [mb, " + expectedNIn + "] (no RNN format given), got shape "
                        + Arrays.toString(activations.shape()));
            }
            long mb = activations.size(0);
            if (maskOrNull != null && maskOrNull.length() != mb) {
                throw new IllegalArgumentException("mask: expected [" + mb + "] or [" + mb + ",1] for a 2-D batch of "
                        + mb + " rows, got shape " + Arrays.toString(maskOrNull.shape()));
            }
            sq = activations.mul(activations);
            // Column sums as a matrix-vector product (mask or ones)ᵀ·sq: ND4J's sum over dimension 0 of a
            // [2048, 1536] float matrix takes ~12 ms on the 2-core test machine, the GEMV ~1.7 ms.
            INDArray weights = maskOrNull != null ? maskOrNull.castTo(sq.dataType()).reshape(1, mb)
                    : Nd4j.ones(sq.dataType(), 1, mb);
            INDArray sums = Nd4j.gemm(weights, sq, false, false);
            return Transforms.sqrt(sums, false).reshape(expectedNIn);
        } else {
            int featureDim = format == SequenceLayout.NCW ? 1 : 2;
            int timeDim = format == SequenceLayout.NCW ? 2 : 1;
            if (activations.rank() != 3 || activations.size(featureDim) != expectedNIn) {
                String expected = format == SequenceLayout.NCW ? "[mb, " + expectedNIn + ", T]" : "[mb, T, " + expectedNIn + "]";
                throw new IllegalArgumentException("activations: expected 3-D " + format + " " + expected + ", got shape "
                        + Arrays.toString(activations.shape()));
            }
            sq = activations.mul(activations);
            if (maskOrNull != null) {
                long mb = activations.size(0);
                long t = activations.size(timeDim);
                if (maskOrNull.rank() != 2 || maskOrNull.size(0) != mb || maskOrNull.size(1) != t) {
                    throw new IllegalArgumentException("mask: expected [" + mb + ", " + t + "] for a " + format
                            + " batch of shape " + Arrays.toString(activations.shape()) + ", got shape "
                            + Arrays.toString(maskOrNull.shape()));
                }
                Nd4j.getExecutioner().exec(new BroadcastMulOp(sq, maskOrNull.castTo(sq.dataType()), sq, 0, timeDim));
            }
            reduceDims = new int[]{0, timeDim};
        }
        return Transforms.sqrt(sq.sum(reduceDims), false);
    }

    /** The current x̄ (a live view of length nIn; copy it to keep a snapshot). */
    public INDArray norms() {
        return norms;
    }

    /** Number of batches seen so far. */
    public long batchesSeen() {
        return count.getLong(0);
    }

    /** Whether at least one batch has been seen. */
    public boolean isInitialized() {
        return count.getDouble(0) > 0;
    }

    /** The whole state vector (x̄ then the batch count), live; save it to save the statistics. */
    public INDArray state() {
        return state;
    }

    public long nIn() {
        return nIn;
    }

    public double beta() {
        return beta;
    }
}
