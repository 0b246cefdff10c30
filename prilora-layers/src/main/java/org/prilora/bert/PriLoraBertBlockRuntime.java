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
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erf;
import org.nd4j.linalg.factory.Nd4j;
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
 *
 * <p>Same parameters, keys, layouts and numbers as the graph version (masked keys get {@code -1e9} before the
 * softmax, as ND4J's {@code dot_product_attention}); the training forward pass measures each module's input
 * norms over the real rows for {@link org.prilora.PriLoraListener}.
 */
public class PriLoraBertBlockRuntime extends SameDiffLayer implements AdapterStatsSource {
    private static final long serialVersionUID = 1L;
    private static final double INV_SQRT2 = 1.0 / Math.sqrt(2.0);
    private static final double INV_SQRT_2PI = 1.0 / Math.sqrt(2.0 * Math.PI);

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
        ArrayType keep = ArrayType.ACTIVATIONS;

        c.x = mgr.dup(keep, in.permute(0, 2, 1), 'c').reshape('c', n, hidden);
        if (maskArray != null) {
            if (maskArray.length() != n) {
                throw new DL4JInvalidInputException(conf.getClass().getSimpleName() + " '" + conf.getLayerName() + "': expected a mask [mb, T] = ["
                        + c.mb + ", " + c.t + "], got shape " + Arrays.toString(maskArray.shape()));
            }
            c.rowMask = mgr.leverageTo(keep, maskArray.castTo(dataType).dup('c').reshape('c', n, 1));
        }

        // Attention: Q, K, V projections, then per head softmax(Q·Kᵀ/√d + mask bias)·V.
        INDArray q = project(c, Projection.QUERY, c.x, mgr, ArrayType.FF_WORKING_MEM);
        INDArray k = project(c, Projection.KEY, c.x, mgr, ArrayType.FF_WORKING_MEM);
        INDArray v = project(c, Projection.VALUE, c.x, mgr, ArrayType.FF_WORKING_MEM);
        c.qh = toHeads(q, c, nh, d, mgr, keep);
        c.kh = toHeads(k, c, nh, d, mgr, keep);
        c.vh = toHeads(v, c, nh, d, mgr, keep);
        INDArray scores = mgr.createUninitialized(keep, dataType, new long[]{c.mb, nh, c.t, c.t}, 'c');
        Nd4j.matmul(c.qh, c.kh, scores, false, true, false);
        scores.muli(1.0 / Math.sqrt(d));
        if (maskArray != null) {
            // ND4J's dot_product_attention: (mask - 1)·1e9 added to the scores of every query against masked keys.
            INDArray bias = maskArray.castTo(dataType).sub(1.0).muli(1e9).reshape('c', c.mb, 1, 1, c.t);
            scores.addi(bias);
        }
        Nd4j.exec(new SoftMax(scores, scores, -1));
        c.probs = scores;
        INDArray ctxHeads = Nd4j.matmul(c.probs, c.vh, false, false, false);          // [mb, nh, T, d]
        c.ctx = mgr.dup(keep, ctxHeads.permute(0, 2, 1, 3), 'c').reshape('c', n, hidden);

        INDArray attnOut = project(c, Projection.ATTENTION_OUTPUT, c.ctx, mgr, keep);
        attnOut.addi(c.x);
        c.invStd1 = mgr.createUninitialized(keep, dataType, new long[]{n, 1}, 'c');
        c.xhat1 = normalize(attnOut, c.invStd1, conf.getLayerNormEps());
        c.h1 = affine(c.xhat1, Norm.ATTENTION_OUTPUT, mgr, keep);

        // FFN: GELU(h1·Wi + bi)·Wo + bo, residual, LayerNorm.
        c.inter = project(c, Projection.INTERMEDIATE, c.h1, mgr, keep);
        c.cdf = mgr.createUninitialized(keep, dataType, c.inter.shape(), 'c');
        Nd4j.exec(new Erf(c.inter.mul(INV_SQRT2), c.cdf));
        c.cdf.addi(1.0).muli(0.5);
        c.gelu = mgr.createUninitialized(keep, dataType, c.inter.shape(), 'c');
        c.gelu.assign(c.inter).muli(c.cdf);
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
        INDArray wEff = LoraLinear.foldInto(mgr.dup(ArrayType.ACTIVATIONS, w, 'c'), aEff, getParam(s.bKey()), adapted.loraScale());
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

    /** {@code [mb, nh, T, d]} → contiguous {@code [N, H]}. */
    private static INDArray fromHeads(INDArray heads, Cache c, LayerWorkspaceMgr mgr, ArrayType type) {
        long hidden = heads.size(1) * heads.size(3);
        return mgr.dup(type, heads.permute(0, 2, 1, 3), 'c').reshape('c', c.mb * c.t, hidden);
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
        INDArray pdf = c.inter.mul(c.inter).muli(-0.5);
        pdf = Transforms.exp(pdf, false).muli(INV_SQRT_2PI).muli(c.inter).addi(c.cdf);
        INDArray dInter = dGelu.muli(pdf);
        // Intermediate projection (input h1); the residual adds dr2 to h1's gradient.
        INDArray dh1 = projectBackward(c, Projection.INTERMEDIATE, dInter, c.h1, null, workspaceMgr);
        dh1.addi(dr2);
        INDArray dr1 = normBackward(dh1, c.xhat1, c.invStd1, Norm.ATTENTION_OUTPUT);
        // Attention output projection (input ctx); the residual passes dr1 to x.
        INDArray dCtx = projectBackward(c, Projection.ATTENTION_OUTPUT, dr1, c.ctx, null, workspaceMgr);
        INDArray dCtxH = toHeads(dCtx, c, nh, d, workspaceMgr, work);
        INDArray dP = Nd4j.matmul(dCtxH, c.vh, false, true, false);                 // [mb, nh, T, T]
        INDArray dVh = Nd4j.matmul(c.probs, dCtxH, true, false, false);             // [mb, nh, T, d]
        // Softmax backward: dS = P ⊙ (dP - Σ_j dP⊙P), then the 1/√d scale.
        INDArray rowDot = dP.mul(c.probs).sum(true, 3);
        INDArray dS = dP.subi(rowDot).muli(c.probs).muli(1.0 / Math.sqrt(d));
        INDArray dQh = Nd4j.matmul(dS, c.kh, false, false, false);
        INDArray dKh = Nd4j.matmul(dS, c.qh, true, false, false);
        INDArray dx = workspaceMgr.createUninitialized(work, dataType, new long[]{n, hidden}, 'c');
        dx.assign(dr1);
        projectBackward(c, Projection.QUERY, fromHeads(dQh, c, workspaceMgr, work), c.x, dx, workspaceMgr);
        projectBackward(c, Projection.KEY, fromHeads(dKh, c, workspaceMgr, work), c.x, dx, workspaceMgr);
        projectBackward(c, Projection.VALUE, fromHeads(dVh, c, workspaceMgr, work), c.x, dx, workspaceMgr);

        Gradient g = new DefaultGradient();
        for (String key : paramTable.keySet()) {
            g.gradientForVariable().put(key, gradTable.get(key)); // frozen keys: zero views, never written
        }
        INDArray epsOut = workspaceMgr.dup(ArrayType.ACTIVATION_GRAD, dx.reshape('c', c.mb, c.t, hidden).permute(0, 2, 1), 'c');
        cache = null;
        return new Pair<>(g, epsOut);
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
