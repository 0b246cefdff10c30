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
 * <p>{@link #moduleName()} (the weight variable's name) is the stable key of the site, for adapter files.
 * Immutable.
 */
public final class GraphModule {

    /** The kind of op that was adapted. */
    public enum OpKind {
        /** {@code mmul}/{@code matmul}: {@code y = x·W} (or {@code x·Wᵀ}), no bias. */
        MMUL,
        /** {@code xw_plus_b} ({@code nn.linear}): {@code y = x·W + b}. */
        XW_PLUS_B
    }

    private final String weightName;
    private final String biasName;
    private final String inputName;
    private final String outputName;
    private final OpKind opKind;
    private final boolean weightTransposed;
    private final long nIn;
    private final long nOut;
    private final int block;
    private final int rank;
    private final double scale;
    private final String aName;
    private final String bName;
    private final String stateName;
    private final String maskName;
    private final VariableType weightType;
    private final VariableType biasType;
    private final List<String> addedOps;
    private final List<String> addedVariables;

    GraphModule(String weightName, String biasName, String inputName, String outputName, OpKind opKind,
                boolean weightTransposed, long nIn, long nOut, int block, int rank, double scale, String aName,
                String bName, String stateName, String maskName, VariableType weightType, VariableType biasType,
                List<String> addedOps, List<String> addedVariables) {
        this.weightName = weightName;
        this.biasName = biasName;
        this.inputName = inputName;
        this.outputName = outputName;
        this.opKind = opKind;
        this.weightTransposed = weightTransposed;
        this.nIn = nIn;
        this.nOut = nOut;
        this.block = block;
        this.rank = rank;
        this.scale = scale;
        this.aName = aName;
        this.bName = bName;
        this.stateName = stateName;
        this.maskName = maskName;
        this.weightType = weightType;
        this.biasType = biasType;
        this.addedOps = List.copyOf(addedOps);
        this.addedVariables = List.copyOf(addedVariables);
    }

    /** Stable name of the adapted module: the frozen weight's variable name. */
    public String moduleName() {
        return weightName;
    }

    /** The frozen weight variable (a CONSTANT while adapted). */
    public String weightName() {
        return weightName;
    }

    /** The frozen bias of an {@code xw_plus_b} op, or null. */
    public String biasName() {
        return biasName;
    }

    /** The variable multiplied by the weight (the input whose feature norms are tracked). */
    public String inputName() {
        return inputName;
    }

    /** The output variable of the original op; the adapted output carries the same name. */
    public String outputName() {
        return outputName;
    }

    public OpKind opKind() {
        return opKind;
    }

    /** Whether the original op computed {@code x·Wᵀ} (weight stored {@code [nOut, nIn]}). */
    public boolean weightTransposed() {
        return weightTransposed;
    }

    /** Shape of the weight as stored: {@code [nIn, nOut]}, or {@code [nOut, nIn]} when {@link #weightTransposed()}. */
    public long[] weightShape() {
        return weightTransposed ? new long[]{nOut, nIn} : new long[]{nIn, nOut};
    }

    public long nIn() {
        return nIn;
    }

    public long nOut() {
        return nOut;
    }

    /** Dense block index (0 = bottom) that chose the rank. */
    public int block() {
        return block;
    }

    public int rank() {
        return rank;
    }

    /** LoRA scale {@code s}. */
    public double scale() {
        return scale;
    }

    /** Trainable {@code A [r, nIn]} (VARIABLE). */
    public String aName() {
        return aName;
    }

    /** Trainable {@code B [nOut, r]} (VARIABLE). */
    public String bName() {
        return bName;
    }

    /** Input-norm statistics {@code [nIn + 1]}: x̄, then the batch count (CONSTANT; see InputNormStats). */
    public String stateName() {
        return stateName;
    }

    /** 0/1 mask {@code [r, nIn]} over A (CONSTANT) in PERSISTENT_MASK mode, else null. */
    public String maskName() {
        return maskName;
    }

    /** The weight's variable type before injection (restored by merge). */
    public VariableType originalWeightType() {
        return weightType;
    }

    /** The bias's variable type before injection, or null without a bias. */
    public VariableType originalBiasType() {
        return biasType;
    }

    /** Names of the ops injection added for this site (removed again by merge). */
    public List<String> addedOps() {
        return addedOps;
    }

    /** Names of the variables injection added for this site, A/B/state/mask included. */
    public List<String> addedVariables() {
        return addedVariables;
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
            throw new IllegalStateException("variable '" + name + "' of this PRILoRA site is not in the graph");
        }
        INDArray a = sd.getArrForVarName(name);
        if (a == null) {
            throw new IllegalStateException("variable '" + name + "' of this PRILoRA site has no array");
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
