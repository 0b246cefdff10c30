package org.prilora.layers;

import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.gradient.DefaultGradient;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.layers.samediff.DL4JSameDiffMemoryMgr;
import org.deeplearning4j.nn.layers.samediff.SameDiffLayer;
import org.deeplearning4j.nn.workspace.ArrayType;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.array.SingleThreadArrayHolder;
import org.nd4j.autodiff.samediff.internal.InferenceSession;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.ops.InputNormStats;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runtime of SameDiff-defined {@link GraphLayer}s: the PRILoRA ones ({@link PriLoraGraphLayer}) and plain ones (the
 * reference graph of the plain BERT block). Differs from DL4J's {@code SameDiffLayer} in four ways:
 * its gradients are right (DL4J M2.1's are doubled, see {@link #doInit()});
 * training forward passes also fetch each adapted projection's input and measure its per-feature norms
 * over the real rows (for the listener); backprop asks
 * SameDiff for the gradients of A, B and the input only (frozen weights, statistics and masks get none,
 * and their gradient views stay zero); and the input placeholder has every dimension but the feature one
 * dynamic, so batches of other sequence lengths run through the same graph.
 */
public class PriLoraSameDiffRuntime extends SameDiffLayer implements AdapterStatsSource {
    private static final long serialVersionUID = 1L;

    /** Placeholder for the gradient arriving from the next layer. */
    public static final String EPSILON_KEY = "prilora_epsilon";

    private final MeasuredNorms measured = new MeasuredNorms();
    private List<String> statsVariables;

    public PriLoraSameDiffRuntime(NeuralNetConfiguration conf, DataType dataType) {
        super(conf, dataType);
    }

    @Override
    public MeasuredNorms measuredNorms() {
        return measured;
    }

    private org.deeplearning4j.nn.conf.layers.samediff.SameDiffLayer graphConf() {
        return (org.deeplearning4j.nn.conf.layers.samediff.SameDiffLayer) layerConf();
    }

    private boolean isTrainable(String key) {
        return ((GraphLayer) layerConf()).isTrainableParam(key);
    }

    private Map<String, String> moduleInputs() {
        return layerConf() instanceof PriLoraGraphLayer ? ((PriLoraGraphLayer) layerConf()).moduleInputVariables() : Map.of();
    }

    @Override
    protected void doInit() {
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            org.deeplearning4j.nn.conf.layers.samediff.SameDiffLayer bl = graphConf();
            sameDiff = SameDiff.create();
            SingleThreadArrayHolder constants = new SingleThreadArrayHolder();
            sameDiff.setArrayHolders(new SingleThreadArrayHolder(), constants, false);
            Map<String, INDArray> p = paramTable();
            long[] inputShape = new long[input.rank()];
            java.util.Arrays.fill(inputShape, -1);
            inputShape[1] = input.size(1);     // features: every other dimension stays dynamic
            SDVariable inputVar = sameDiff.placeHolder(INPUT_KEY, dataType, inputShape);
            Map<String, long[]> paramShapes = bl.getLayerParams().getParamShapes();
            Map<String, SDVariable> params = new LinkedHashMap<>();
            for (String s : paramShapes.keySet()) {
                if (isTrainable(s)) {
                    params.put(s, sameDiff.var(s, dataType, paramShapes.get(s)));
                } else {
                    // Frozen weights, statistics and masks are constants backed by the live parameter views
                    // (SameDiff.constant would copy a view, so the holder gets the view afterwards): SameDiff
                    // computes no gradient for them and edits by the listener are seen at once.
                    params.put(s, sameDiff.constant(s, Nd4j.zeros(dataType, paramShapes.get(s))));
                    constants.setArray(s, p.get(s));
                }
            }
            long[] maskShape = new long[input.rank() == 3 ? 2 : 2];
            java.util.Arrays.fill(maskShape, -1);
            SDVariable mask = sameDiff.placeHolder(MASK_KEY, dataType, maskShape);
            SDVariable layerOutput = bl.defineLayer(sameDiff, inputVar, params, mask);
            outputVar = layerOutput;
            for (Map.Entry<String, INDArray> e : p.entrySet()) {
                if (isTrainable(e.getKey())) {
                    sameDiff.associateArrayWithVariable(e.getValue(), sameDiff.getVariable(e.getKey()));
                }
            }
            // DL4J M2.1 feeds the incoming gradient through an ExternalErrorsFunction, whose gradient SameDiff
            // adds to itself (an "add(out-grad, out-grad)" op in the gradient graph): every SameDiffLayer gradient,
            // DL4J's own SelfAttentionLayer included, comes out doubled. Here the loss is written out instead:
            // sum(output ⊙ ε) has exactly ε as its gradient with respect to the output.
            SDVariable eps = sameDiff.var(EPSILON_KEY, org.nd4j.autodiff.samediff.VariableType.PLACEHOLDER, null, dataType);
            layerOutput.mul(eps).sum().markAsLoss();
            outputKey = outputVar.name();
            statsVariables = new ArrayList<>(new java.util.LinkedHashSet<>(moduleInputs().values()));
        }
    }

    @Override
    public INDArray activate(boolean training, LayerWorkspaceMgr workspaceMgr) {
        assertInputSet(false);
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            if (sameDiff == null) {
                doInit();
            }
        }
        graphConf().validateInput(input);
        Map<String, INDArray> phMap = placeholders();
        String wsNameWorking = workspaceMgr.getWorkspaceName(ArrayType.FF_WORKING_MEM);
        String wsNameOutput = workspaceMgr.getWorkspaceName(ArrayType.ACTIVATIONS);
        boolean actScopedOut = workspaceMgr.isScopedOut(ArrayType.ACTIVATIONS);
        DL4JSameDiffMemoryMgr mmgr = new DL4JSameDiffMemoryMgr(wsNameWorking, wsNameOutput,
                workspaceMgr.getConfiguration(ArrayType.FF_WORKING_MEM), workspaceMgr.getConfiguration(ArrayType.ACTIVATIONS));
        InferenceSession is = sameDiff.getSessions().get(Thread.currentThread().getId());
        if (is == null) {
            is = SameDiff.getInferenceFactory().create(sameDiff);
            sameDiff.getSessions().put(Thread.currentThread().getId(), is);
        }
        is.setMmgr(mmgr);

        List<String> outputs = new ArrayList<>();
        outputs.add(outputKey);
        if (training) {
            outputs.addAll(statsVariables);
        }
        Map<String, INDArray> out = sameDiff.output(phMap, outputs.toArray(new String[0]));
        INDArray result = out.get(outputKey);
        if (!actScopedOut && !result.data().getParentWorkspace().getId().equals(wsNameOutput)) {
            result = workspaceMgr.dup(ArrayType.ACTIVATIONS, result);
        } else if (actScopedOut && result.isAttached()) {
            result = result.detach();
        }
        if (training && layerConf() instanceof PriLoraLayer) {
            measured.hold(measureNorms(out));
        }
        sameDiff.clearPlaceholders(true);
        sameDiff.clearOpInputs();
        return result;
    }

    @Override
    public Pair<Gradient, INDArray> backpropGradient(INDArray epsilon, LayerWorkspaceMgr workspaceMgr) {
        assertInputSet(true);
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            if (sameDiff == null) {
                doInit();
            }
            if (!sameDiff.hasGradientFunction()) {
                sameDiff.createGradFunction(INPUT_KEY);
            }
        }
        Map<Long, InferenceSession> sessionMap = sameDiff.getFunction("grad").getSessions();
        if (!sessionMap.containsKey(Thread.currentThread().getId())) {
            sessionMap.put(Thread.currentThread().getId(), SameDiff.getInferenceFactory().create(sameDiff.getFunction("grad")));
        }
        DL4JSameDiffMemoryMgr mmgr = new DL4JSameDiffMemoryMgr(workspaceMgr.getWorkspaceName(ArrayType.BP_WORKING_MEM),
                workspaceMgr.getWorkspaceName(ArrayType.ACTIVATION_GRAD), workspaceMgr.getConfiguration(ArrayType.BP_WORKING_MEM),
                workspaceMgr.getConfiguration(ArrayType.ACTIVATION_GRAD));
        sessionMap.get(Thread.currentThread().getId()).setMmgr(mmgr);

        Map<String, INDArray> phMap = placeholders();
        phMap.put(EPSILON_KEY, epsilon.castTo(dataType));
        List<String> required = new ArrayList<>();
        required.add(INPUT_KEY);
        for (String key : paramTable.keySet()) {
            if (isTrainable(key)) {
                required.add(key);
            }
        }
        Map<String, INDArray> m = sameDiff.calculateGradients(phMap, required);
        Gradient g = new DefaultGradient();
        for (String key : paramTable.keySet()) {
            INDArray view = gradTable.get(key);
            if (isTrainable(key)) {
                view.assign(m.get(key));
            }
            g.gradientForVariable().put(key, view);
        }
        INDArray dLdIn = m.get(INPUT_KEY);
        sameDiff.clearPlaceholders(true);
        sameDiff.clearOpInputs();
        return new Pair<>(g, workspaceMgr.dup(ArrayType.ACTIVATION_GRAD, dLdIn));
    }

    /** Input norms of every module over the real rows, computed outside workspaces (they outlive this pass). */
    private Map<String, INDArray> measureNorms(Map<String, INDArray> out) {
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            Map<String, INDArray> byVariable = new HashMap<>();
            Map<String, INDArray> norms = new HashMap<>();
            Map<String, String> inputs = moduleInputs();
            for (AdapterModule s : ((PriLoraLayer) layerConf()).adapterModules()) {
                String v = inputs.get(s.name());
                INDArray x = v == null ? null : out.get(v);
                if (x == null) {
                    continue;
                }
                INDArray rowMask = null;
                if (maskArray != null && maskArray.length() == x.size(0)) {
                    rowMask = maskArray.castTo(x.dataType()).dup('c').reshape(x.size(0));
                }
                final INDArray rm = rowMask;
                norms.put(s.name(), byVariable.computeIfAbsent(v, k -> InputNormStats.batchNorms(x, rm, null, s.nIn())));
            }
            return norms;
        }
    }

    private Map<String, INDArray> placeholders() {
        Map<String, INDArray> phMap = new HashMap<>();
        phMap.put(INPUT_KEY, input);
        phMap.put(MASK_KEY, maskArray != null ? maskArray.castTo(dataType) : graphConf().onesMaskForInput(input));
        return phMap;
    }

}
