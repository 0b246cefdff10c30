package org.prilora.bert;

import org.deeplearning4j.exception.DL4JInvalidInputException;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.gradient.DefaultGradient;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.layers.samediff.SameDiffLayer;
import org.deeplearning4j.nn.workspace.ArrayType;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.scalar.ScalarMax;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erf;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Exp;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;
import org.prilora.ops.LoraLinear;
import org.prilora.bert.BertNaming.Norm;
import org.prilora.bert.BertNaming.Projection;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.AdapterStatsSource;
import org.prilora.layers.MeasuredNorms;
import org.prilora.ops.InputNormStats;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Native runtime of {@link BertBlock} and {@link PriLoraBertBlock}: the block's forward and backward pass written directly with ND4J
 * array ops (GEMMs into preallocated outputs, batched attention matmuls, in-place element-wise ops) instead of a
 * SameDiff graph. The graph version ({@link BertBlock#defineLayer}) stays the reference it is tested
 * against. Why: a SameDiff training step runs a few hundred small ops per block through a per-op session
 * (measured: summed op time far below step time), and DL4J's SameDiffLayer recomputes the forward inside
 * backprop; here the forward keeps what the backward needs and the backward forms only the gradients that are
 * trained — with adapters, the frozen weights' {@code uᵀ·δ} is never computed, and each projection runs as one GEMM
 * with the folded weight {@code W + s·(A⊙M)ᵀ·Bᵀ} forward and backward, plus the thin GEMMs of A's and B's gradients.
 * Query, key and value share one GEMM against the concatenated weight {@code [Wq | Wk | Wv]} in both directions, and
 * every intermediate is written into workspace arrays (an allocating op outside a workspace pays for fresh off-heap
 * pages on every call).
 *
 * <p>Same parameters, keys, layouts and numbers as the graph version (masked keys get {@code -1e9} before the
 * softmax, as ND4J's {@code dot_product_attention}); the training forward pass measures each module's input
 * norms over the real rows for {@link org.prilora.PriLoraListener}.
 */
public class PriLoraBertBlockRuntime extends SameDiffLayer implements AdapterStatsSource {
    private static final long serialVersionUID = 1L;
    private static final double INV_SQRT2 = 1.0 / Math.sqrt(2.0);
    private static final double INV_SQRT_2PI = 1.0 / Math.sqrt(2.0 * Math.PI);
    /**
     * Lower bound for {@code -x²/2} before the exponential of GELU's derivative: {@code exp} of float arguments below
     * about -87.3 yields subnormal results, which the CPU computes many times slower; at -80 the dropped term
     * {@code x·φ(x)} is below 1e-33, far under float resolution next to {@code Φ(x)}.
     */
    private static final double MIN_GELU_EXPONENT = -80.0;
    private static final Projection[] QKV = {Projection.QUERY, Projection.KEY, Projection.VALUE};

    /** What the latest training forward pass keeps for backprop (arrays in the ACTIVATIONS workspace). */
    private Cache cache;
    private final MeasuredNorms measured = new MeasuredNorms();
    /** Per-row low-rank terms added to the frozen projections of a plain block (multi-adapter serving); or null. */
    private transient ProjectionDelta projectionDelta;

    /**
     * Adds terms to a plain block's projection outputs: called after {@code out = u·W + b} with the projection's
     * input {@code u [N, in]} (rows {@code b·T + t}) and output {@code out [N, out]}, which it may modify in place.
     * Used by {@code org.prilora.serving} to add each row group's own adapter {@code s·(u·(A⊙M)ᵀ)·Bᵀ} to one shared
     * {@code u·W0}.
     */
    @FunctionalInterface
    public interface ProjectionDelta {
        /** Adds to {@code out} in place; {@code rowsPerExample} is the sequence length T. */
        void addTo(Projection p, INDArray u, INDArray out, long rowsPerExample);
    }

    public PriLoraBertBlockRuntime(NeuralNetConfiguration conf, DataType dataType) {
        super(conf, dataType);
    }

    /**
     * Sets (or, with null, removes) the hook that adds per-row terms to the projections of a plain {@link BertBlock}
     * in the following forward passes; the caller sets and removes it around its own inference call.
     *
     * @throws IllegalStateException for an adapted block (its adapters are folded into its own weights)
     */
    public void setProjectionDelta(ProjectionDelta delta) {
        if (delta != null && adapted() != null) {
            throw new IllegalStateException("layer '" + layerConf().getLayerName()
                    + "': projection terms apply to a plain BertBlock, this one is a PriLoraBertBlock");
        }
        this.projectionDelta = delta;
    }

    @Override
    public MeasuredNorms measuredNorms() {
        return measured;
    }

    private BertBlock block() {
        return (BertBlock) layerConf();
    }

    /** The adapted block, or null for a plain block (every weight trained, no adapters). */
    private PriLoraBertBlock adapted() {
        return layerConf() instanceof PriLoraBertBlock ? (PriLoraBertBlock) layerConf() : null;
    }

    /** Forward intermediates of one pass. */
    private static final class Cache {
        INDArray input;       // the layer input this cache belongs to
        INDArray x;           // [N, H] block input, rows b·T + t
        INDArray rowMask;     // [N, 1] or null
        final INDArray[] h = new INDArray[Projection.values().length]; // x·(A⊙M)ᵀ per module, [N, r]
        final INDArray[] wEff = new INDArray[Projection.values().length]; // W + s·(A⊙M)ᵀ·Bᵀ per module, [in, out]
        INDArray wQkv;        // [H, 3H] (folded) query, key and value weights side by side
        INDArray qh;          // [mb, nh, T, d]
        INDArray kh;
        INDArray vh;
        INDArray probs;       // [mb, nh, T, T] softmax
        INDArray ctx;         // [N, H] attention context (heads concatenated)
        INDArray xhat1;       // [N, H] normalized residual 1
        INDArray invStd1;     // [N, 1]
        INDArray h1;          // [N, H] LayerNorm 1 output
        INDArray inter;       // [N, F] pre-GELU
        INDArray cdf;         // [N, F] Φ(inter)
        INDArray gelu;        // [N, F]
        INDArray xhat2;       // [N, H]
        INDArray invStd2;     // [N, 1]
        INDArray out;         // [N, H] block output (handed over by activate, not kept)
        long mb;
        long t;
        boolean training;     // whether backprop will follow (keep h and the folded weights)
    }

    @Override
    public INDArray activate(boolean training, LayerWorkspaceMgr workspaceMgr) {
        assertInputSet(false);
        block().validateInput(input);
        Cache c = forward(training, workspaceMgr);
        if (training) {
            cache = c;
            measured.hold(adapted() == null ? null : measureNorms(c));
        } else {
            cache = null;
        }
        INDArray y = c.out;
        c.out = null;
        return workspaceMgr.dup(ArrayType.ACTIVATIONS, y.reshape('c', c.mb, c.t, y.size(1)).permute(0, 2, 1), 'c');
    }

    private Cache forward(boolean training, LayerWorkspaceMgr mgr) {
        BertBlock conf = block();
        INDArray in = input.castTo(dataType);
        Cache c = new Cache();
        c.training = training;
        c.input = input;
        c.mb = in.size(0);
        c.t = in.size(2);
        int hidden = conf.getHidden();
        int nh = conf.getNumHeads();
        int d = hidden / nh;
        long n = c.mb * c.t;
        // Kept for backprop when training; at inference everything is scratch (ACTIVATIONS may be scoped out of any
        // workspace, for a network's last layer, and would then be fresh off-heap memory on every call).
        ArrayType keep = training ? ArrayType.ACTIVATIONS : ArrayType.FF_WORKING_MEM;

        c.x = mgr.dup(keep, in.permute(0, 2, 1), 'c').reshape('c', n, hidden);
        if (maskArray != null) {
            if (maskArray.length() != n) {
                throw new DL4JInvalidInputException(conf.getClass().getSimpleName() + " '" + conf.getLayerName() + "': expected a mask [mb, T] = ["
                        + c.mb + ", " + c.t + "], got shape " + Arrays.toString(maskArray.shape()));
            }
            c.rowMask = mgr.leverageTo(keep, maskArray.castTo(dataType).dup('c').reshape('c', n, 1));
        }

        // Attention: one GEMM for Q, K and V, then per head softmax(Q·Kᵀ/√d + mask bias)·V.
        INDArray qkv = projectQkv(c, mgr);                                             // [N, 3H]
        INDArray heads = mgr.createUninitialized(keep, dataType, new long[]{3, c.mb, nh, c.t, d}, 'c');
        heads.assign(qkv.reshape('c', c.mb, c.t, 3, nh, d).permute(2, 0, 3, 1, 4));
        c.qh = slice(heads, 0);
        c.kh = slice(heads, 1);
        c.vh = slice(heads, 2);
        INDArray scores = mgr.createUninitialized(keep, dataType, new long[]{c.mb, nh, c.t, c.t}, 'c');
        Nd4j.matmul(c.qh, c.kh, scores, false, true, false);
        scores.muli(1.0 / Math.sqrt(d));
        if (maskArray != null) {
            // ND4J's dot_product_attention: (mask - 1)·1e9 added to the scores of every query against masked keys.
            INDArray bias = maskArray.castTo(dataType).sub(1.0).muli(1e9).reshape('c', c.mb, 1, 1, c.t);
            scores.addi(bias);
        }
        c.probs = softmaxLastDim(scores, mgr);
        INDArray ctxHeads = mgr.createUninitialized(ArrayType.FF_WORKING_MEM, dataType, new long[]{c.mb, nh, c.t, d}, 'c');
        Nd4j.matmul(c.probs, c.vh, ctxHeads, false, false, false);
        c.ctx = mgr.createUninitialized(keep, dataType, new long[]{c.mb, c.t, nh, d}, 'c');
        c.ctx.assign(ctxHeads.permute(0, 2, 1, 3));
        c.ctx = c.ctx.reshape('c', n, hidden);

        INDArray attnOut = project(c, Projection.ATTENTION_OUTPUT, c.ctx, mgr, keep);
        attnOut.addi(c.x);
        c.invStd1 = mgr.createUninitialized(keep, dataType, new long[]{n, 1}, 'c');
        c.xhat1 = normalize(attnOut, c.invStd1, conf.getLayerNormEps());
        c.h1 = affine(c.xhat1, Norm.ATTENTION_OUTPUT, mgr, keep);

        // FFN: GELU(h1·Wi + bi)·Wo + bo, residual, LayerNorm.
        c.inter = project(c, Projection.INTERMEDIATE, c.h1, mgr, keep);
        c.cdf = mgr.createUninitialized(keep, dataType, c.inter.shape(), 'c');
        c.cdf.assign(c.inter).muli(INV_SQRT2);
        Nd4j.exec(new Erf(c.cdf, c.cdf));
        c.cdf.addi(1.0).muli(0.5);
        if (training) {
            c.gelu = mgr.createUninitialized(keep, dataType, c.inter.shape(), 'c');
            c.gelu.assign(c.inter).muli(c.cdf);
        } else {
            c.gelu = c.cdf.muli(c.inter); // inference keeps neither Φ nor the pre-activation
        }
        INDArray ffn = project(c, Projection.OUTPUT, c.gelu, mgr, keep);
        ffn.addi(c.h1);
        c.invStd2 = mgr.createUninitialized(keep, dataType, new long[]{n, 1}, 'c');
        c.xhat2 = normalize(ffn, c.invStd2, conf.getLayerNormEps());
        c.out = affine(c.xhat2, Norm.OUTPUT, mgr, ArrayType.FF_WORKING_MEM);
        if (!training) {
            c.probs = null;
        }
        return c;
    }

    /**
     * {@code x·[Wq | Wk | Wv] + [bq | bk | bv]} as one GEMM, {@code [N, 3H]}; with adapters each third of the weight is
     * folded ({@code W + s·(A⊙M)ᵀ·Bᵀ}) and, when training, keeps {@code h = x·(A⊙M)ᵀ} per module. Keeps the
     * concatenated weight for the input gradient when training.
     */
    private INDArray projectQkv(Cache c, LayerWorkspaceMgr mgr) {
        long h = block().getHidden();
        INDArray x = c.x;
        INDArray w = mgr.createUninitialized(c.training ? ArrayType.ACTIVATIONS : ArrayType.FF_WORKING_MEM, dataType,
                new long[]{h, 3 * h}, 'c');
        INDArray b = mgr.createUninitialized(ArrayType.FF_WORKING_MEM, dataType, new long[]{1, 3 * h}, 'c');
        PriLoraBertBlock adapted = adapted();
        for (int j = 0; j < QKV.length; j++) {
            Projection p = QKV[j];
            INDArray wp = getParam(BertBlock.weightKey(p));
            if (adapted != null) {
                AdapterModule s = adapted.module(p);
                INDArray aEff = effectiveA(s);
                // Nd4j.gemm cannot write into a column view, so the rank-r update goes into a copy of W first.
                wp = LoraLinear.foldInto(mgr.dup(ArrayType.FF_WORKING_MEM, wp, 'c'), aEff, getParam(s.bKey()), adapted.loraScale());
                if (c.training) {
                    INDArray hp = mgr.createUninitialized(ArrayType.ACTIVATIONS, dataType, new long[]{x.size(0), s.rank()}, 'c');
                    Nd4j.gemm(x, aEff, hp, false, true, 1.0, 0.0);
                    c.h[p.ordinal()] = hp;
                }
            }
            w.get(NDArrayIndex.all(), third(j, h)).assign(wp);
            b.get(NDArrayIndex.all(), third(j, h)).assign(getParam(BertBlock.biasKey(p)));
        }
        INDArray out = mgr.createUninitialized(ArrayType.FF_WORKING_MEM, dataType, new long[]{x.size(0), 3 * h}, 'c');
        Nd4j.gemm(x, w, out, false, false, 1.0, 0.0);
        out.addiRowVector(b);
        if (adapted == null && projectionDelta != null) {
            // The hook gets a contiguous [N, H] array: row views of a column view of out are not reliable in ND4J.
            INDArray part = mgr.createUninitialized(ArrayType.FF_WORKING_MEM, dataType, new long[]{x.size(0), h}, 'c');
            for (int j = 0; j < QKV.length; j++) {
                INDArray cols = out.get(NDArrayIndex.all(), third(j, h));
                part.assign(cols);
                projectionDelta.addTo(QKV[j], x, part, c.t);
                cols.assign(part);
            }
        }
        if (c.training) {
            c.wQkv = w;
        }
        return out;
    }

    /** Columns {@code [j·h, (j+1)·h)}: query, key or value in the concatenated layout. */
    private static INDArrayIndex third(int j, long h) {
        return NDArrayIndex.interval(j * h, (j + 1) * h);
    }

    /** {@code heads[j]} of a contiguous {@code [3, mb, nh, T, d]} array, as a contiguous view. */
    private static INDArray slice(INDArray heads, int j) {
        return heads.get(NDArrayIndex.point(j), NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.all());
    }

    /**
     * In place over the last dimension: {@code exp(s - max)/Σ exp(s - max)}, with the row sums as one GEMV against
     * ones (ND4J's softmax op and its sum reduction over the last axis are slower than max, exp and a GEMV).
     */
    private INDArray softmaxLastDim(INDArray scores, LayerWorkspaceMgr mgr) {
        long t = scores.size(-1);
        INDArray s2 = scores.reshape('c', scores.length() / t, t);
        s2.subiColumnVector(s2.max(true, 1));
        Nd4j.exec(new Exp(s2, s2));
        s2.diviColumnVector(rowSums(s2, mgr, ArrayType.FF_WORKING_MEM));
        return scores;
    }

    /** {@code [rows, 1]} row sums of a 2-D array as {@code m·ones}. */
    private INDArray rowSums(INDArray m, LayerWorkspaceMgr mgr, ArrayType type) {
        INDArray ones = mgr.createUninitialized(type, dataType, new long[]{m.size(1), 1}, 'c').assign(1.0);
        INDArray sums = mgr.createUninitialized(type, dataType, new long[]{m.size(0), 1}, 'c');
        Nd4j.gemm(m, ones, sums, false, false, 1.0, 0.0);
        return sums;
    }

    /** {@code u·W + b} plus the adapter term (or plain, for a plain block); keeps {@code h = u·(A⊙M)ᵀ}. */
    private INDArray project(Cache c, Projection p, INDArray u, LayerWorkspaceMgr mgr, ArrayType type) {
        INDArray w = getParam(BertBlock.weightKey(p));
        INDArray b = getParam(BertBlock.biasKey(p));
        INDArray out = mgr.createUninitialized(type, dataType, new long[]{u.size(0), block().nOut(p)}, 'c');
        PriLoraBertBlock adapted = adapted();
        if (adapted == null) {
            Nd4j.gemm(u, w, out, false, false, 1.0, 0.0);
            out.addiRowVector(b);
            if (projectionDelta != null) {
                projectionDelta.addTo(p, u, out, c.t);
            }
            return out;
        }
        // One GEMM with the folded weight W + s·(A⊙M)ᵀ·Bᵀ (a rank-r update of a copy of W, ~in·out·r flops)
        // instead of x·W plus the two thin adapter GEMMs: the adapter path then costs no extra pass over the
        // [N, out] output here, and none over the [N, in] input gradient in backprop (δ·W_effᵀ covers both paths).
        AdapterModule s = adapted.module(p);
        INDArray aEff = effectiveA(s);
        INDArray wEff = LoraLinear.foldInto(mgr.dup(c.training ? ArrayType.ACTIVATIONS : ArrayType.FF_WORKING_MEM, w, 'c'), aEff, getParam(s.bKey()), adapted.loraScale());
        Nd4j.gemm(u, wEff, out, false, false, 1.0, 0.0);
        out.addiRowVector(b);
        if (c.training) {
            // Kept for backprop: h for B's gradient, the folded weight for the input gradient.
            INDArray h = mgr.createUninitialized(ArrayType.ACTIVATIONS, dataType, new long[]{u.size(0), s.rank()}, 'c');
            Nd4j.gemm(u, aEff, h, false, true, 1.0, 0.0);
            c.h[p.ordinal()] = h;
            c.wEff[p.ordinal()] = wEff;
        }
        return out;
    }

    private INDArray effectiveA(AdapterModule s) {
        return LoraLinear.effectiveA(getParam(s.aKey()), s.maskKey() == null ? null : getParam(s.maskKey()));
    }

    /** {@code [N, H]} → contiguous {@code [mb, nh, T, d]}. */
    private INDArray toHeads(INDArray x2d, Cache c, int nh, int d, LayerWorkspaceMgr mgr, ArrayType type) {
        return mgr.dup(type, x2d.reshape('c', c.mb, c.t, nh, d).permute(0, 2, 1, 3), 'c');
    }

    /** In place: {@code r ← (r - mean)/sqrt(var + eps)} per row (biased variance); writes 1/sqrt(var + eps). */
    private static INDArray normalize(INDArray r, INDArray invStdOut, double eps) {
        r.subiColumnVector(r.mean(true, 1));
        INDArray var = r.mul(r).mean(true, 1);
        invStdOut.assign(Transforms.pow(var.addi(eps), -0.5, false));
        return r.muliColumnVector(invStdOut);
    }

    private INDArray affine(INDArray xhat, Norm n, LayerWorkspaceMgr mgr, ArrayType type) {
        INDArray y = mgr.createUninitialized(type, dataType, xhat.shape(), 'c');
        y.assign(xhat).muliRowVector(getParam(n.gainKey())).addiRowVector(getParam(n.biasKey()));
        return y;
    }

    @Override
    public Pair<Gradient, INDArray> backpropGradient(INDArray epsilon, LayerWorkspaceMgr workspaceMgr) {
        assertInputSet(true);
        if (cache == null || cache.input != input || cache.probs == null) {
            activate(true, workspaceMgr); // no training forward pass on this input yet (direct layer use)
        }
        Cache c = cache;
        BertBlock conf = block();
        int hidden = conf.getHidden();
        int nh = conf.getNumHeads();
        int d = hidden / nh;
        long n = c.mb * c.t;
        ArrayType work = ArrayType.BP_WORKING_MEM;

        INDArray dy = workspaceMgr.dup(work, epsilon.castTo(dataType).permute(0, 2, 1), 'c').reshape('c', n, hidden);
        // LayerNorm 2 → residual: d(ffn + h1)
        INDArray dr2 = normBackward(dy, c.xhat2, c.invStd2, Norm.OUTPUT);
        // Output projection (input GELU), then GELU'(inter) = Φ + inter·φ(inter).
        INDArray dGelu = projectBackward(c, Projection.OUTPUT, dr2, c.gelu, null, workspaceMgr);
        INDArray pdf = workspaceMgr.createUninitialized(work, dataType, c.inter.shape(), 'c');
        pdf.assign(c.inter).muli(c.inter).muli(-0.5);
        Nd4j.exec(new ScalarMax(pdf, MIN_GELU_EXPONENT));
        Nd4j.exec(new Exp(pdf, pdf));
        pdf.muli(INV_SQRT_2PI).muli(c.inter).addi(c.cdf);
        INDArray dInter = dGelu.muli(pdf);
        // Intermediate projection (input h1); the residual adds dr2 to h1's gradient.
        INDArray dh1 = projectBackward(c, Projection.INTERMEDIATE, dInter, c.h1, null, workspaceMgr);
        dh1.addi(dr2);
        INDArray dr1 = normBackward(dh1, c.xhat1, c.invStd1, Norm.ATTENTION_OUTPUT);
        // Attention output projection (input ctx); the residual passes dr1 to x.
        INDArray dCtx = projectBackward(c, Projection.ATTENTION_OUTPUT, dr1, c.ctx, null, workspaceMgr);
        INDArray dCtxH = toHeads(dCtx, c, nh, d, workspaceMgr, work);
        INDArray dP = workspaceMgr.createUninitialized(work, dataType, c.probs.shape(), 'c');
        Nd4j.matmul(dCtxH, c.vh, dP, false, true, false);                            // [mb, nh, T, T]
        INDArray dHeads = workspaceMgr.createUninitialized(work, dataType, new long[]{3, c.mb, nh, c.t, d}, 'c');
        Nd4j.matmul(c.probs, dCtxH, slice(dHeads, 2), true, false, false);             // dV [mb, nh, T, d]
        // Softmax backward: dS = P ⊙ (dP - Σ_j dP⊙P), then the 1/√d scale.
        long rows = c.probs.length() / c.t;
        INDArray p2 = c.probs.reshape('c', rows, c.t);
        INDArray dS2 = dP.reshape('c', rows, c.t);
        INDArray dotTerms = workspaceMgr.createUninitialized(work, dataType, new long[]{rows, c.t}, 'c').assign(dS2).muli(p2);
        dS2.subiColumnVector(rowSums(dotTerms, workspaceMgr, work)).muli(p2).muli(1.0 / Math.sqrt(d));
        Nd4j.matmul(dP, c.kh, slice(dHeads, 0), false, false, false);                 // dQ
        Nd4j.matmul(dP, c.qh, slice(dHeads, 1), true, false, false);                  // dK
        // [3, mb, nh, T, d] → [mb, T, 3, nh, d] = [N, 3H], the column layout of projectQkv's output.
        INDArray dQkv = workspaceMgr.createUninitialized(work, dataType, new long[]{c.mb, c.t, 3, nh, d}, 'c');
        dQkv.assign(dHeads.permute(1, 3, 0, 2, 4));
        INDArray dx = workspaceMgr.createUninitialized(work, dataType, new long[]{n, hidden}, 'c');
        dx.assign(dr1);
        qkvBackward(c, dQkv.reshape('c', n, 3L * hidden), dx, workspaceMgr);

        Gradient g = new DefaultGradient();
        for (String key : paramTable.keySet()) {
            g.gradientForVariable().put(key, gradTable.get(key)); // frozen keys: zero views, never written
        }
        INDArray epsOut = workspaceMgr.dup(ArrayType.ACTIVATION_GRAD, dx.reshape('c', c.mb, c.t, hidden).permute(0, 2, 1), 'c');
        cache = null;
        return new Pair<>(g, epsOut);
    }

    /**
     * Gradient through the concatenated query/key/value projection given {@code delta = dL/d(x·[Wq|Wk|Wv] + b)}
     * ({@code [N, 3H]}): writes the trained parameters' gradients and adds {@code δ·[Wq|Wk|Wv]ᵀ} to {@code dx}.
     */
    private void qkvBackward(Cache c, INDArray delta, INDArray dx, LayerWorkspaceMgr mgr) {
        long h = block().getHidden();
        PriLoraBertBlock adapted = adapted();
        if (adapted == null) {
            INDArray gw = mgr.createUninitialized(ArrayType.BP_WORKING_MEM, dataType, new long[]{h, 3 * h}, 'c');
            Nd4j.gemm(c.x, delta, gw, true, false, 1.0, 0.0);                          // xᵀ·δ
            INDArray gb = columnSums(delta);
            for (int j = 0; j < QKV.length; j++) {
                gradTable.get(BertBlock.weightKey(QKV[j])).assign(gw.get(NDArrayIndex.all(), third(j, h)));
                gradTable.get(BertBlock.biasKey(QKV[j])).assign(gb.get(NDArrayIndex.all(), third(j, h)));
            }
        } else {
            for (int j = 0; j < QKV.length; j++) {
                AdapterModule s = adapted.module(QKV[j]);
                LoraLinear.adapterGradients(delta.get(NDArrayIndex.all(), third(j, h)), c.x, c.h[QKV[j].ordinal()],
                        getParam(s.bKey()), s.maskKey() == null ? null : getParam(s.maskKey()), adapted.loraScale(),
                        gradTable.get(s.aKey()), gradTable.get(s.bKey()));
            }
        }
        Nd4j.gemm(delta, c.wQkv, dx, false, true, 1.0, 1.0);                            // δ·[Wq|Wk|Wv]ᵀ (folded)
    }

    /**
     * Gradient through one projection given {@code delta = dL/d(out)}: writes the trained parameters' gradients into
     * their views and returns {@code dL/du}, or adds it to {@code accumulate} (and returns that) when given.
     */
    private INDArray projectBackward(Cache c, Projection p, INDArray delta, INDArray u,
                                     INDArray accumulate, LayerWorkspaceMgr mgr) {
        INDArray w = getParam(BertBlock.weightKey(p));
        INDArray du = accumulate != null ? accumulate
                : mgr.createUninitialized(ArrayType.BP_WORKING_MEM, dataType, new long[]{delta.size(0), block().nIn(p)}, 'c');
        double beta = accumulate != null ? 1.0 : 0.0;
        PriLoraBertBlock adapted = adapted();
        if (adapted == null) {
            Nd4j.gemm(u, delta, gradTable.get(BertBlock.weightKey(p)), true, false, 1.0, 0.0);   // uᵀ·δ
            gradTable.get(BertBlock.biasKey(p)).assign(columnSums(delta));
            Nd4j.gemm(delta, w, du, false, true, 1.0, beta);                          // δ·Wᵀ
            return du;
        }
        AdapterModule s = adapted.module(p);
        LoraLinear.adapterGradients(delta, u, c.h[p.ordinal()], getParam(s.bKey()), s.maskKey() == null ? null : getParam(s.maskKey()),
                adapted.loraScale(), gradTable.get(s.aKey()), gradTable.get(s.bKey()));
        // δ·W_effᵀ = δ·W0ᵀ + gh·(A⊙M): both paths in one GEMM (no uᵀ·δ: W is frozen)
        Nd4j.gemm(delta, c.wEff[p.ordinal()], du, false, true, 1.0, beta);
        return du;
    }

    /** LayerNorm backward: gain/bias gradients (plain block) and {@code dL/dr} for {@code y = γ·x̂ + β}. */
    private INDArray normBackward(INDArray dy, INDArray xhat, INDArray invStd, Norm n) {
        if (adapted() == null) {
            gradTable.get(n.gainKey()).assign(columnSums(dy.mul(xhat)));
            gradTable.get(n.biasKey()).assign(columnSums(dy));
        }
        INDArray dxhat = dy.mulRowVector(getParam(n.gainKey()));
        INDArray m1 = dxhat.mean(true, 1);
        INDArray m2 = dxhat.mul(xhat).mean(true, 1);
        // dr = (dx̂ - mean(dx̂) - x̂·mean(dx̂⊙x̂)) / σ
        return dxhat.subiColumnVector(m1).subi(xhat.mulColumnVector(m2)).muliColumnVector(invStd);
    }

    /**
     * {@code [1, cols]} column sums as {@code onesᵀ·m}: ND4J's sum over dimension 0 of a [2048, 1536] float matrix
     * takes ~12 ms on the 2-core test machine, this GEMV ~1.7 ms.
     */
    private INDArray columnSums(INDArray m) {
        return Nd4j.gemm(Nd4j.ones(m.dataType(), 1, m.size(0)), m, false, false);
    }

    /**
     * Input norms of every module over the real rows. The squares are formed in the current (working-memory)
     * workspace and only the small result vectors are detached (they outlive this pass): a fresh off-heap array
     * per module costs page faults every step (measured 37 ms for one [2048, 1536] float array on the 2-core test
     * machine, ~65 ms per block, against ~1 ms for the multiply itself in reused memory).
     */
    private Map<String, INDArray> measureNorms(Cache c) {
        Map<String, INDArray> norms = new HashMap<>();
        INDArray rm = c.rowMask == null ? null : c.rowMask.reshape(c.rowMask.length());
        INDArray xNorms = null;
        PriLoraBertBlock adapted = adapted();
        for (Projection p : Projection.values()) {
            AdapterModule s = adapted.module(p);
            INDArray u;
            switch (p) {
                case QUERY:
                case KEY:
                case VALUE:
                    if (xNorms == null) {
                        xNorms = InputNormStats.batchNorms(c.x, rm, null, s.nIn()).detach();
                    }
                    norms.put(s.name(), xNorms);
                    continue;
                case ATTENTION_OUTPUT:
                    u = c.ctx;
                    break;
                case INTERMEDIATE:
                    u = c.h1;
                    break;
                default:
                    u = c.gelu;
            }
            norms.put(s.name(), InputNormStats.batchNorms(u, rm, null, s.nIn()).detach());
        }
        return norms;
    }

    @Override
    public void clear() {
        super.clear();
        cache = null;
    }
}
