package org.prilora.layers;

import org.deeplearning4j.exception.DL4JInvalidInputException;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.RNNFormat;
import org.deeplearning4j.nn.gradient.DefaultGradient;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.layers.BaseLayer;
import org.deeplearning4j.nn.workspace.ArrayType;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.activations.impl.ActivationIdentity;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.random.impl.BernoulliDistribution;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.ops.LoraLinear;
import org.prilora.ops.InputNormStats;

import java.util.Arrays;
import java.util.Map;

/**
 * Runtime of {@link PriLoraDense}. Forward: {@code z = x·W + b + s·h·Bᵀ} with {@code h = x·(A⊙M)ᵀ}.
 * Backward computes only the adapter gradients and the input gradient (the frozen W's gradient
 * {@code xᵀ·δ} is never formed), and reuses the pre-activation and {@code h} kept from the forward pass
 * instead of recomputing them. During training forward passes it also measures the batch's input norms
 * for {@link org.prilora.PriLoraListener}.
 */
public class PriLoraDenseLayer extends BaseLayer<PriLoraDense> implements AdapterStatsSource {

    private static final long serialVersionUID = 1L;

    /** What the latest training forward pass leaves for backprop (arrays live in the ACTIVATIONS workspace). */
    private INDArray fwdInput;
    private INDArray fwdPreOut;
    private INDArray fwdH;
    private INDArray fwdXa;
    private INDArray fwdDropMask;
    private INDArray fwdRowMask;

    private final MeasuredNorms measured = new MeasuredNorms();

    public PriLoraDenseLayer(NeuralNetConfiguration conf, DataType dataType) {
        super(conf, dataType);
    }

    private AdapterModule module() {
        return layerConf().adapterModules().get(0);
    }

    @Override
    public boolean hasBias() {
        return layerConf().hasBias();
    }

    @Override
    public boolean isPretrainLayer() {
        return false;
    }

    @Override
    public Type type() {
        return Type.FEED_FORWARD;
    }

    @Override
    public INDArray preOutput(boolean training, LayerWorkspaceMgr workspaceMgr) {
        INDArray z = forward(training, workspaceMgr);
        return isRnnInput() ? to3d(z, workspaceMgr, ArrayType.ACTIVATIONS) : z;
    }

    @Override
    public INDArray activate(boolean training, LayerWorkspaceMgr workspaceMgr) {
        INDArray z = forward(training, workspaceMgr);
        boolean identity = layerConf().getActivationFn() instanceof ActivationIdentity;
        INDArray y = identity || !training ? z : workspaceMgr.dup(ArrayType.ACTIVATIONS, z);
        if (training) {
            fwdPreOut = z;           // the pre-activation, kept for backprop
        }
        y = layerConf().getActivationFn().getActivation(y, training);
        if (fwdRowMask != null && maskArray != null) {
            y.muliColumnVector(fwdRowMask);
        }
        return isRnnInput() ? to3d(y, workspaceMgr, ArrayType.ACTIVATIONS) : y;
    }

    private boolean isRnnInput() {
        return input != null && input.rank() == 3;
    }

    /** The pre-activation {@code [N, nOut]} for the current input (rows = examples or examples × time steps). */
    private INDArray forward(boolean training, LayerWorkspaceMgr workspaceMgr) {
        assertInputSet(false);
        applyDropOutIfNecessary(training, workspaceMgr);

        AdapterModule s = module();
        PriLoraDense c = layerConf();
        INDArray in = input.castTo(dataType);
        validateInput(in, s.nIn());
        // Arrays kept for backprop must live in the activations workspace, which stays open until the
        // backward pass is done (working memory is closed after this layer's forward pass).
        INDArray x = in.rank() == 3 ? to2d(in, c.getRnnDataFormat(), workspaceMgr, ArrayType.ACTIVATIONS)
                : workspaceMgr.leverageTo(ArrayType.ACTIVATIONS, in);
        long n = x.size(0);
        INDArray rowMask = rowMask(in, n);
        if (rowMask != null) {
            rowMask = workspaceMgr.leverageTo(ArrayType.ACTIVATIONS, rowMask);
        }

        INDArray w = getParam(s.weightKey());
        INDArray b = s.biasKey() == null ? null : getParam(s.biasKey());
        INDArray aEff = LoraLinear.effectiveA(getParam(s.aKey()), s.maskKey() == null ? null : getParam(s.maskKey()));
        INDArray xa = x;
        INDArray dropMask = null;
        if (training && c.getAdapter().loraDropout() > 0) {
            double keep = 1.0 - c.getAdapter().loraDropout();
            dropMask = workspaceMgr.createUninitialized(ArrayType.ACTIVATIONS, dataType, x.shape(), 'c');
            Nd4j.getExecutioner().exec(new BernoulliDistribution(dropMask, keep));
            dropMask.divi(keep);
            xa = workspaceMgr.leverageTo(ArrayType.ACTIVATIONS, x.mul(dropMask));
        }
        INDArray z = workspaceMgr.createUninitialized(ArrayType.ACTIVATIONS, dataType, new long[]{n, s.nOut()}, 'c');
        INDArray h = workspaceMgr.createUninitialized(ArrayType.ACTIVATIONS, dataType, new long[]{n, s.rank()}, 'c');
        LoraLinear.forward(x, xa, w, b, aEff, getParam(s.bKey()), c.loraScale(), z, h);

        fwdRowMask = rowMask;
        if (training) {
            fwdInput = input;
            fwdPreOut = z;
            fwdH = h;
            fwdXa = xa;
            fwdDropMask = dropMask;
            // Squares in the current workspace, only the [nIn] result detached: a fresh off-heap temporary of the
            // input's size costs page faults on every step (see PriLoraBertBlockRuntime#measureNorms).
            measured.hold(Map.of(s.name(), InputNormStats.batchNorms(x, rowMask, null, s.nIn()).detach()));
        }
        return z;
    }

    @Override
    public Pair<Gradient, INDArray> backpropGradient(INDArray epsilon, LayerWorkspaceMgr workspaceMgr) {
        assertInputSet(true);
        if (fwdInput != input || fwdPreOut == null) {
            activate(true, workspaceMgr); // no forward pass on this input yet (direct layer use)
        }
        AdapterModule s = module();
        PriLoraDense c = layerConf();
        INDArray eps = epsilon.rank() == 3 ? to2d(epsilon, c.getRnnDataFormat(), workspaceMgr, ArrayType.ACTIVATION_GRAD) : epsilon;
        INDArray delta = c.getActivationFn().backprop(fwdPreOut, eps).getFirst();
        if (fwdRowMask != null && maskArray != null) {
            delta.muliColumnVector(fwdRowMask);
        }
        INDArray gradA = gradientViews.get(s.aKey());
        INDArray gradB = gradientViews.get(s.bKey());
        long n = delta.size(0);
        INDArray epsOut = workspaceMgr.createUninitialized(ArrayType.ACTIVATION_GRAD, dataType, new long[]{n, s.nIn()}, 'c');
        INDArray mask = s.maskKey() == null ? null : getParam(s.maskKey());
        LoraLinear.backward(delta, fwdXa, fwdH, getParam(s.weightKey()), LoraLinear.effectiveA(getParam(s.aKey()), mask),
                getParam(s.bKey()), mask, fwdDropMask, c.loraScale(), gradA, gradB, epsOut);

        Gradient g = new DefaultGradient();
        for (String key : gradientViews.keySet()) {
            g.gradientForVariable().put(key, gradientViews.get(key)); // frozen keys: zero views, never written
        }
        INDArray epsNext = input.rank() == 3 ? to3dInput(epsOut, workspaceMgr) : epsOut;
        clearForwardCache();
        epsNext = backpropDropOutIfPresent(epsNext);
        return new Pair<>(g, epsNext);
    }

    @Override
    public void clear() {
        super.clear();
        clearForwardCache();
    }

    private void clearForwardCache() {
        fwdInput = null;
        fwdPreOut = null;
        fwdH = null;
        fwdXa = null;
        fwdDropMask = null;
    }

    private void validateInput(INDArray in, long nIn) {
        RNNFormat f = layerConf().getRnnDataFormat();
        if (in.rank() == 2 && in.size(1) == nIn) {
            return;
        }
        if (in.rank() == 3 && in.size(f == RNNFormat.NCW ? 1 : 2) == nIn) {
            return;
        }
        throw new DL4JInvalidInputException("PriLoraDense " + layerId() + ": expected input [mb, " + nIn + "] or 3-D "
                + f + (f == RNNFormat.NCW ? " [mb, " + nIn + ", T]" : " [mb, T, " + nIn + "]") + ", got shape "
                + Arrays.toString(in.shape()));
    }

    /** Row mask {@code [N,1]} matching the 2-D rows, or null when there is no mask. */
    private INDArray rowMask(INDArray in, long n) {
        if (maskArray == null) {
            return null;
        }
        if (maskArray.length() != n) {
            throw new DL4JInvalidInputException("PriLoraDense " + layerId() + ": expected a mask with " + n
                    + " entries ([mb] or [mb,1] for 2-D input, [mb, T] for 3-D input of shape " + Arrays.toString(in.shape())
                    + "), got shape " + Arrays.toString(maskArray.shape()));
        }
        // [mb, T] in 'c' order lists rows as b*T + t, which is the order to2d produces.
        return maskArray.castTo(dataType).dup('c').reshape('c', n, 1);
    }

    private static INDArray to2d(INDArray x3, RNNFormat f, LayerWorkspaceMgr mgr, ArrayType type) {
        long mb = x3.size(0);
        INDArray nwc = f == RNNFormat.NCW ? x3.permute(0, 2, 1) : x3;
        INDArray c = mgr.dup(type, nwc, 'c');
        return c.reshape('c', mb * nwc.size(1), nwc.size(2));
    }

    private INDArray to3d(INDArray y2, LayerWorkspaceMgr mgr, ArrayType type) {
        return from2d(y2, input.size(0), mgr, type);
    }

    private INDArray to3dInput(INDArray e2, LayerWorkspaceMgr mgr) {
        return from2d(e2, input.size(0), mgr, ArrayType.ACTIVATION_GRAD);
    }

    private INDArray from2d(INDArray y2, long mb, LayerWorkspaceMgr mgr, ArrayType type) {
        long t = y2.size(0) / mb;
        INDArray nwc = y2.reshape('c', mb, t, y2.size(1));
        INDArray out = layerConf().getRnnDataFormat() == RNNFormat.NCW ? nwc.permute(0, 2, 1) : nwc;
        return mgr.dup(type, out, 'c');
    }

    @Override
    public MeasuredNorms measuredNorms() {
        return measured;
    }
}
