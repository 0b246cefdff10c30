package org.prilora.ops;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.controlflow.compat.StopGradient;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.Objects;

/**
 * A frozen linear map with a LoRA update, as SameDiff ops and as plain ND4J math:
 * {@code y = x·W0 + b0 + s·((x·(A⊙M)ᵀ)·Bᵀ)}, with {@code W0 [nIn, nOut]} (DL4J orientation),
 * {@code A [r, nIn]}, {@code B [nOut, r]} (PEFT orientation) and an optional 0/1 mask {@code M} over A.
 *
 * <p>The frozen product is written so that no weight gradient is computed for W0 (see
 * {@link #frozenLinear}).
 */
public final class LoraLinear {

    private LoraLinear() {
    }

    /**
     * The adapted projection of a 2-D input.
     *
     * @param x          {@code [N, nIn]}
     * @param w0         frozen weight {@code [nIn, nOut]}
     * @param b0OrNull   frozen bias ({@code [1, nOut]} or {@code [nOut]}), or null
     * @param a          trainable {@code [r, nIn]}
     * @param b          trainable {@code [nOut, r]}
     * @param maskOrNull 0/1 {@code [r, nIn]} (PERSISTENT_MASK mode), or null
     * @param scale      {@code s}
     * @return {@code [N, nOut]}
     */
    public static SDVariable forward(SameDiff sd, SDVariable x, SDVariable w0, SDVariable b0OrNull,
                                     SDVariable a, SDVariable b, SDVariable maskOrNull, double scale) {
        // delta + base rather than base + delta: ND4J M2.1 sometimes flags xw_plus_b's output 'f' with c strides,
        // and an add that takes it as first operand passes that flag on (seen by the SameDiff injection tests).
        return delta(sd, x, a, b, maskOrNull, scale).add(frozenLinear(sd, x, w0, b0OrNull));
    }

    /** The LoRA term alone: {@code s·((x·(A⊙M)ᵀ)·Bᵀ)}, {@code [N, nOut]}. */
    public static SDVariable delta(SameDiff sd, SDVariable x, SDVariable a, SDVariable b, SDVariable maskOrNull,
                                   double scale) {
        SDVariable aEff = maskOrNull == null ? a : a.mul(stop(sd, maskOrNull));
        SDVariable h = sd.mmul(x, aEff, false, true, false);       // [N, r]
        SDVariable u = sd.mmul(h, b, false, true, false);          // [N, nOut]
        return u.mul(scale);
    }

    /**
     * {@code x·W + b} with the gradient flowing to x only. {@code xw_plus_b}'s backward is written as
     * separate products; the one for W feeds only a {@code StopGradient}, so SameDiff never executes it.
     * (The stock {@code mmul} backward is one op that always computes both operand gradients.)
     *
     * @param bOrNull {@code [nOut]} or {@code [1, nOut]}; null for no bias
     */
    public static SDVariable frozenLinear(SameDiff sd, SDVariable x, SDVariable w, SDVariable bOrNull) {
        SDVariable bias = bOrNull == null
                ? sd.zerosLike(w.get(org.nd4j.autodiff.samediff.SDIndex.point(0)))
                : bOrNull.reshape(-1);
        return sd.nn.linear(x, stop(sd, w), stop(sd, bias));
    }

    /** {@code v} with its gradient stopped. */
    public static SDVariable stop(SameDiff sd, SDVariable v) {
        return new StopGradient(sd, v).outputVariable();
    }

    /** {@code A ⊙ M} as a new array, or {@code a} itself when there is no mask. */
    public static INDArray effectiveA(INDArray a, INDArray maskOrNull) {
        return maskOrNull == null ? a : a.mul(maskOrNull.castTo(a.dataType()));
    }

    /**
     * Forward pass on arrays, writing into preallocated outputs: {@code out = x·W0 + b0 + s·h·Bᵀ} with
     * {@code h = xa·Aeffᵀ}. {@code xa} is the adapter path's input: {@code x} itself, or {@code x} after
     * adapter dropout.
     *
     * @param out  {@code [N, nOut]}, overwritten
     * @param hOut {@code [N, r]}, overwritten; keep it for {@link #backward}
     */
    public static void forward(INDArray x, INDArray xa, INDArray w0, INDArray b0OrNull, INDArray aEff, INDArray b,
                               double scale, INDArray out, INDArray hOut) {
        Nd4j.gemm(x, w0, out, false, false, 1.0, 0.0);
        if (b0OrNull != null) {
            out.addiRowVector(b0OrNull);
        }
        Nd4j.gemm(xa, aEff, hOut, false, true, 1.0, 0.0);
        Nd4j.gemm(hOut, b, out, false, true, scale, 1.0);
    }

    /**
     * Backward pass on arrays for the adapted map, given {@code delta = dL/dout} ({@code [N, nOut]}). Computes
     * the gradients of A and B and the input gradient; never the frozen weight's gradient.
     *
     * @param xa             adapter-path input used in the forward pass {@code [N, nIn]}
     * @param h              {@code xa·Aeffᵀ} from the forward pass {@code [N, r]}
     * @param maskOrNull     persistent mask: A's gradient is masked like A
     * @param dropMaskOrNull adapter dropout multiplier applied to {@code x} in the forward pass, or null
     * @param gradA          {@code [r, nIn]}, overwritten
     * @param gradB          {@code [nOut, r]}, overwritten
     * @param epsOut         {@code dL/dx} {@code [N, nIn]}, overwritten
     */
    public static void backward(INDArray delta, INDArray xa, INDArray h, INDArray w0, INDArray aEff, INDArray b,
                                INDArray maskOrNull, INDArray dropMaskOrNull, double scale,
                                INDArray gradA, INDArray gradB, INDArray epsOut) {
        INDArray gh = adapterGradients(delta, xa, h, b, maskOrNull, scale, gradA, gradB);
        Nd4j.gemm(delta, w0, epsOut, false, true, 1.0, 0.0);                 // δ·W0ᵀ
        if (dropMaskOrNull == null) {
            Nd4j.gemm(gh, aEff, epsOut, false, false, 1.0, 1.0);             // + gh·Aeff
        } else {
            epsOut.addi(Nd4j.gemm(gh, aEff, false, false).muli(dropMaskOrNull));
        }
    }

    /**
     * The gradients of A and B given {@code delta = dL/dout}: {@code gradB = s·δᵀ·h}, {@code gradA = (s·δ·B)ᵀ·xa}
     * (masked like A). Returns {@code gh = s·δ·B} ({@code [N, r]}), the adapter path's share of the input gradient
     * before {@code ·(A⊙M)}.
     *
     * @param gradA {@code [r, nIn]}, overwritten
     * @param gradB {@code [nOut, r]}, overwritten
     */
    public static INDArray adapterGradients(INDArray delta, INDArray xa, INDArray h, INDArray b, INDArray maskOrNull,
                                            double scale, INDArray gradA, INDArray gradB) {
        Nd4j.gemm(delta, h, gradB, true, false, scale, 0.0);                 // s·δᵀ·h
        INDArray gh = Nd4j.gemm(delta, b, false, false).muli(scale);         // s·δ·B      [N, r]
        Nd4j.gemm(gh, xa, gradA, true, false, 1.0, 0.0);                      // ghᵀ·xa     [r, nIn]
        if (maskOrNull != null) {
            gradA.muli(maskOrNull.castTo(gradA.dataType()));
        }
        return gh;
    }

    /**
     * In place: {@code w ← w + s·Aeffᵀ·Bᵀ}, a rank-r update of {@code w} ({@code [nIn, nOut]}, 'c' order; pass a copy
     * of W0 to get the folded weight without allocating the {@code [nIn, nOut]} delta).
     */
    public static INDArray foldInto(INDArray w, INDArray aEff, INDArray b, double scale) {
        Nd4j.gemm(aEff, b, w, true, true, scale, 1.0);
        return w;
    }

    /** The folded weight {@code W0 + s·((A⊙M)ᵀ·Bᵀ)}, {@code [nIn, nOut]}, as a new array. */
    public static INDArray mergedWeight(INDArray w0, INDArray a, INDArray b, INDArray maskOrNull, double scale) {
        checkShapes(w0, a, b, maskOrNull);
        return w0.add(deltaWeight(a, b, maskOrNull, scale));
    }

    /** {@code s·((A⊙M)ᵀ·Bᵀ)}, {@code [nIn, nOut]}, as a new array. */
    public static INDArray deltaWeight(INDArray a, INDArray b, INDArray maskOrNull, double scale) {
        INDArray aEff = effectiveA(a, maskOrNull);
        return aEff.transpose().mmul(b.transpose()).muli(scale);
    }

    /** Validates {@code W0 [nIn,nOut]}, {@code A [r,nIn]}, {@code B [nOut,r]} and the mask against each other. */
    public static void checkShapes(INDArray w0, INDArray a, INDArray b, INDArray maskOrNull) {
        Objects.requireNonNull(w0, "w0");
        Objects.requireNonNull(a, "a");
        Objects.requireNonNull(b, "b");
        if (w0.rank() != 2) {
            throw new IllegalArgumentException("w0: expected [nIn, nOut], got shape " + Arrays.toString(w0.shape()));
        }
        long nIn = w0.size(0);
        long nOut = w0.size(1);
        if (a.rank() != 2 || a.size(1) != nIn) {
            throw new IllegalArgumentException("a: expected [r, " + nIn + "], got shape " + Arrays.toString(a.shape()));
        }
        long r = a.size(0);
        if (b.rank() != 2 || b.size(0) != nOut || b.size(1) != r) {
            throw new IllegalArgumentException("b: expected [" + nOut + ", " + r + "], got shape " + Arrays.toString(b.shape()));
        }
        if (maskOrNull != null && !Arrays.equals(maskOrNull.shape(), a.shape())) {
            throw new IllegalArgumentException("mask: expected " + Arrays.toString(a.shape()) + ", got shape "
                    + Arrays.toString(maskOrNull.shape()));
        }
    }
}
