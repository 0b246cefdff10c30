package org.prilora.samediff;

import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import java.util.List;

/**
 * One matrix multiplication of a SameDiff graph that {@link SameDiffPriLora#inject} adapted: the names of
 * everything it involves and the adapter's rank, block and scale. The arrays themselves live in the graph (so
 * that {@code sd.save}/{@code SameDiff.load} keep them); the accessors taking a {@link SameDiff} return the live
 * arrays of that graph (in-place edits change the graph).
 *
 * <p>{@link #moduleName()} (the weight variable's name) is the stable key of the module, for adapter files.
 * Immutable.
 *
 * @param weightName       the frozen weight variable (a CONSTANT while adapted)
 * @param biasName         the frozen bias of an {@code xw_plus_b} op, or null
 * @param inputName        the variable multiplied by the weight (the input whose feature norms are tracked)
 * @param outputName       the output variable of the original op; the adapted output carries the same name
 * @param opKind           the kind of op that was adapted
 * @param weightTransposed whether the original op computed {@code x·Wᵀ} (weight stored {@code [nOut, nIn]})
 * @param nIn              input features
 * @param nOut             output features
 * @param block            dense block index (0 = bottom) that chose the rank
 * @param rank             adapter rank
 * @param scale            LoRA scale {@code s}
 * @param aName            trainable {@code A [r, nIn]} (VARIABLE)
 * @param bName            trainable {@code B [nOut, r]} (VARIABLE)
 * @param stateName        input-norm statistics {@code [nIn + 1]}: x̄, then the batch count (CONSTANT)
 * @param maskName         0/1 mask {@code [r, nIn]} over A (CONSTANT) in PERSISTENT_MASK mode, else null
 * @param originalWeightType the weight's variable type before injection (restored by merge)
 * @param originalBiasType   the bias's variable type before injection, or null without a bias
 * @param addedOps         names of the ops injection added for this module (removed again by merge)
 * @param addedVariables   names of the variables injection added for this module, A/B/state/mask included
 */
public record GraphModule(String weightName, String biasName, String inputName, String outputName, GraphModule.OpKind opKind,
                          boolean weightTransposed, long nIn, long nOut, int block, int rank, double scale, String aName,
                          String bName, String stateName, String maskName, VariableType originalWeightType,
                          VariableType originalBiasType, List<String> addedOps, List<String> addedVariables) {

    /** The kind of op that was adapted. */
    public enum OpKind {
        /** {@code mmul}/{@code matmul}: {@code y = x·W} (or {@code x·Wᵀ}), no bias. */
        MMUL,
        /** {@code xw_plus_b} ({@code nn.linear}): {@code y = x·W + b}. */
        XW_PLUS_B
    }

    public GraphModule {
        addedOps = List.copyOf(addedOps);
        addedVariables = List.copyOf(addedVariables);
    }

    /** Stable name of the adapted module: the frozen weight's variable name. */
    public String moduleName() {
        return weightName;
    }

    /** Shape of the weight as stored: {@code [nIn, nOut]}, or {@code [nOut, nIn]} when {@link #weightTransposed()}. */
    public long[] weightShape() {
        return weightTransposed ? new long[]{nOut, nIn} : new long[]{nIn, nOut};
    }

    // ------------------------------------------------------------------ live arrays

    /** Live {@code A [r, nIn]} of {@code sd}. */
    public INDArray a(SameDiff sd) {
        return arr(sd, aName);
    }

    /** Live {@code B [nOut, r]} of {@code sd}. */
    public INDArray b(SameDiff sd) {
        return arr(sd, bName);
    }

    /** Live statistics state vector {@code [nIn + 1]} of {@code sd}; wrap with {@code InputNormStats.wrap}. */
    public INDArray inputNormState(SameDiff sd) {
        return arr(sd, stateName);
    }

    /** Live mask {@code [r, nIn]}, or null in REGROW mode. */
    public INDArray mask(SameDiff sd) {
        return maskName == null ? null : arr(sd, maskName);
    }

    /** Live frozen weight as stored ({@code [nIn, nOut]}, or {@code [nOut, nIn]} when {@link #weightTransposed()}). */
    public INDArray storedWeight(SameDiff sd) {
        return arr(sd, weightName);
    }

    /** The frozen weight in DL4J orientation {@code [nIn, nOut]} (a transposed view when stored transposed). */
    public INDArray w0(SameDiff sd) {
        INDArray w = storedWeight(sd);
        return weightTransposed ? w.transpose() : w;
    }

    /** Live frozen bias, or null. */
    public INDArray bias(SameDiff sd) {
        return biasName == null ? null : arr(sd, biasName);
    }

    private static INDArray arr(SameDiff sd, String name) {
        if (!sd.hasVariable(name)) {
            throw new IllegalStateException("variable '" + name + "' of this PRILoRA module is not in the graph");
        }
        INDArray a = sd.getArrForVarName(name);
        if (a == null) {
            throw new IllegalStateException("variable '" + name + "' of this PRILoRA module has no array");
        }
        return a;
    }

    @Override
    public String toString() {
        return "GraphModule{" + weightName + " " + (weightTransposed ? "ᵀ " : "") + Arrays.toString(new long[]{nIn, nOut})
                + ", " + opKind + ", block " + block + ", rank " + rank + ", scale " + scale + ", input '" + inputName
                + "', output '" + outputName + "', A '" + aName + "', B '" + bName + "', state '" + stateName + "'"
                + (maskName == null ? "" : ", mask '" + maskName + "'") + "}";
    }
}
