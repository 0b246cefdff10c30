package org.prilora.serving;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.conf.InputPreProcessor;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.graph.vertex.GraphVertex;
import org.deeplearning4j.nn.graph.vertex.VertexIndices;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.bert.BertNaming.Projection;
import org.prilora.bert.PriLoraBertBlockRuntime;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One inference pass of the base network over a batch whose examples are grouped by adapter ({@link RowGroups}),
 * walking the network's layers itself so that every adapted layer computes the frozen product once for the whole batch
 * and adds only each group's low-rank term (the SGMV idea):
 * <ul>
 *   <li>dense layers: {@code act(u·W0 + b + Σ_g [rows of g] u_g·(A_g⊙M_g)ᵀ·s_g·B_gᵀ)};</li>
 *   <li>BERT blocks: the same term inside each of the six projections, through
 *       {@link PriLoraBertBlockRuntime#setProjectionDelta};</li>
 *   <li>saved layers (heads) and adapted layers of other types: each group through its adapter's own copy of the
 *       layer, the base layer for the other groups;</li>
 *   <li>every other layer: the base layer once for the whole batch.</li>
 * </ul>
 * Not thread-safe (it sets inputs on the base network's layers); the registry runs one pass at a time.
 */
final class GroupedForward {
    private final Model base;
    private final Map<String, Layer> baseLayers;

    GroupedForward(Model base) {
        this.base = base;
        this.baseLayers = LoadedAdapter.layers(base);
    }

    Map<String, Layer> baseLayers() {
        return baseLayers;
    }

    /**
     * The network's output for the permuted batch {@code x} (and its mask), examples in group order, detached. Every
     * intermediate array lives in one workspace reused from pass to pass (as DL4J's own {@code output} does): fresh
     * off-heap arrays per pass would cost page faults on every large activation.
     */
    INDArray run(INDArray x, INDArray maskOrNull, RowGroups groups) {
        LayerWorkspaceMgr mgr = LayerWorkspaceMgr.builder().defaultWorkspace(WORKSPACE, WORKSPACE_CONF).build();
        try (org.nd4j.linalg.api.memory.MemoryWorkspace ws = Nd4j.getWorkspaceManager().getAndActivateWorkspace(WORKSPACE_CONF, WORKSPACE)) {
            return pass(x, maskOrNull, groups, mgr).detach();
        }
    }

    private static final String WORKSPACE = "PRILORA_SERVING";
    private static final org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration WORKSPACE_CONF =
            org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration.builder()
                    .initialSize(0).overallocationLimit(0.05)
                    .policyLearning(org.nd4j.linalg.api.memory.enums.LearningPolicy.FIRST_LOOP)
                    .policyAllocation(org.nd4j.linalg.api.memory.enums.AllocationPolicy.OVERALLOCATE)
                    .policySpill(org.nd4j.linalg.api.memory.enums.SpillPolicy.REALLOCATE)
                    .policyReset(org.nd4j.linalg.api.memory.enums.ResetPolicy.BLOCK_LEFT)
                    .build();

    private INDArray pass(INDArray x, INDArray maskOrNull, RowGroups groups, LayerWorkspaceMgr mgr) {
        int mb = (int) x.size(0);
        if (base instanceof MultiLayerNetwork) {
            MultiLayerNetwork net = (MultiLayerNetwork) base;
            try {
                if (maskOrNull != null) {
                    net.setLayerMaskArrays(maskOrNull, null);
                }
                INDArray cur = x;
                List<String> names = new ArrayList<>(baseLayers.keySet());
                for (int i = 0; i < net.getnLayers(); i++) {
                    InputPreProcessor pp = net.getLayerWiseConfigurations().getInputPreProcess(i);
                    if (pp != null) {
                        cur = pp.preProcess(cur, mb, mgr);
                    }
                    cur = layer(names.get(i), net.getLayer(i), cur, mb, groups, mgr);
                }
                return cur;
            } finally {
                net.clearLayerMaskArrays();
                net.clearLayersStates();
            }
        }
        ComputationGraph g = (ComputationGraph) base;
        try {
            if (maskOrNull != null) {
                g.setLayerMaskArrays(new INDArray[]{maskOrNull}, null);
            }
            GraphVertex[] vertices = g.getVertices();
            INDArray[] outs = new INDArray[vertices.length];
            for (int idx : g.topologicalSortOrder()) {
                GraphVertex v = vertices[idx];
                if (v.isInputVertex()) {
                    outs[idx] = x;
                    continue;
                }
                VertexIndices[] in = v.getInputVertices();
                INDArray[] inputs = new INDArray[in.length];
                for (int k = 0; k < in.length; k++) {
                    inputs[k] = outs[in[k].getVertexIndex()];
                }
                if (v.hasLayer() && touches(v.getVertexName(), groups)) {
                    INDArray u = inputs[0];
                    InputPreProcessor pp = ((org.deeplearning4j.nn.graph.vertex.impl.LayerVertex) v).getLayerPreProcessor();
                    if (pp != null) {
                        u = pp.preProcess(u, mb, mgr);
                    }
                    outs[idx] = layer(v.getVertexName(), v.getLayer(), u, mb, groups, mgr);
                } else {
                    v.setInputs(inputs);
                    if (v instanceof org.deeplearning4j.nn.graph.vertex.impl.LayerVertex) {
                        ((org.deeplearning4j.nn.graph.vertex.impl.LayerVertex) v).applyPreprocessorAndSetInput(mgr);
                    }
                    outs[idx] = v.doForward(false, mgr);
                }
            }
            String out = g.getConfiguration().getNetworkOutputs().get(0);
            return outs[g.getVertex(out).getVertexIndex()];
        } finally {
            g.clearLayerMaskArrays();
            g.clearLayersStates();
        }
    }

    /** Whether any group's adapter changes layer {@code name}. */
    private static boolean touches(String name, RowGroups groups) {
        for (RowGroups.Group gr : groups.groups) {
            LoadedAdapter a = gr.adapter();
            if (a != null && (a.heads.containsKey(name) || a.fallbackLayers.containsKey(name) || a.modules.containsKey(name)
                    || hasModulePrefix(a, name))) {
                return true;
            }
        }
        return false;
    }

    private static boolean hasModulePrefix(LoadedAdapter a, String layer) {
        for (String m : a.modules.keySet()) {
            if (m.startsWith(layer + ".")) {
                return true;
            }
        }
        return false;
    }

    private INDArray layer(String name, Layer l, INDArray u, int mb, RowGroups groups, LayerWorkspaceMgr mgr) {
        if (!touches(name, groups)) {
            return l.activate(u, false, mgr);
        }
        org.deeplearning4j.nn.conf.layers.Layer conf = l.conf().getLayer();
        boolean perGroup = false;
        for (RowGroups.Group gr : groups.groups) {
            perGroup |= gr.adapter() != null && (gr.adapter().heads.containsKey(name) || gr.adapter().fallbackLayers.containsKey(name));
        }
        if (perGroup) {
            return perGroup(name, l, u, mb, groups, mgr);
        }
        if (conf.getClass() == org.deeplearning4j.nn.conf.layers.DenseLayer.class) {
            return dense(name, l, u, mb, groups);
        }
        if (l instanceof PriLoraBertBlockRuntime) {
            PriLoraBertBlockRuntime rt = (PriLoraBertBlockRuntime) l;
            rt.setProjectionDelta((Projection p, INDArray in, INDArray out, long rowsPerExample) ->
                    addLowRank(name + "." + p.siteName(), in, out, groups, rowsPerExample));
            try {
                return rt.activate(u, false, mgr);
            } finally {
                rt.setProjectionDelta(null);
            }
        }
        throw new IllegalStateException("layer '" + name + "': no shared-base kernel for " + conf.getClass().getSimpleName());
    }

    /** A plain DenseLayer: {@code act(u·W0 + b + low-rank terms)}, masked as DL4J masks feed-forward activations. */
    private static INDArray dense(String name, Layer l, INDArray u, int mb, RowGroups groups) {
        if (u.rank() != 2) {
            throw new IllegalArgumentException("layer '" + name + "': expected a 2-D input [rows, nIn], got " + java.util.Arrays.toString(u.shape()));
        }
        INDArray x = u.castTo(l.getParam("W").dataType());
        INDArray z = x.mmul(l.getParam("W"));
        if (l.getParam("b") != null) {
            z.addiRowVector(l.getParam("b"));
        }
        addLowRank(name, x, z, groups, x.size(0) / mb);
        INDArray y = l.conf().getLayer() instanceof org.deeplearning4j.nn.conf.layers.BaseLayer
                ? ((org.deeplearning4j.nn.conf.layers.BaseLayer) l.conf().getLayer()).getActivationFn().getActivation(z, false) : z;
        INDArray mask = l.getMaskArray();
        if (mask != null && mask.length() == y.size(0)) {
            y.muliColumnVector(mask.reshape(mask.length(), 1).castTo(y.dataType()));
        }
        return y;
    }

    /** {@code out[rows of g] += u[rows of g]·aT_g·sBt_g} for every group whose adapter has the module. */
    private static void addLowRank(String module, INDArray u, INDArray out, RowGroups groups, long rowsPerExample) {
        for (RowGroups.Group gr : groups.groups) {
            LoadedAdapter a = gr.adapter();
            LoadedAdapter.ModuleWeights w = a == null ? null : a.modules.get(module);
            if (w == null) {
                continue;
            }
            INDArray ug = RowGroups.rows(u, gr.start() * rowsPerExample, gr.end() * rowsPerExample);
            INDArray og = RowGroups.rows(out, gr.start() * rowsPerExample, gr.end() * rowsPerExample);
            og.addi(ug.mmul(w.aT()).mmul(w.sBt()));
        }
    }

    /** Each group through its adapter's copy of the layer (or the base layer), outputs stacked in group order. */
    private static INDArray perGroup(String name, Layer base, INDArray u, int mb, RowGroups groups, LayerWorkspaceMgr mgr) {
        long rowsPerExample = u.size(0) / mb;
        INDArray mask = base.getMaskArray();
        List<INDArray> parts = new ArrayList<>();
        for (RowGroups.Group gr : groups.groups) {
            LoadedAdapter a = gr.adapter();
            Layer l = a == null ? base : a.heads.getOrDefault(name, a.fallbackLayers.getOrDefault(name, base));
            INDArray ug = RowGroups.rows(u, gr.start() * rowsPerExample, gr.end() * rowsPerExample).dup();
            INDArray saved = l.getMaskArray();
            if (mask != null && mask.size(0) % mb == 0) {
                long mRows = mask.size(0) / mb;
                l.setMaskArray(RowGroups.rows(mask, gr.start() * mRows, gr.end() * mRows).dup());
            }
            try {
                parts.add(l.activate(ug, false, mgr).detach());
            } finally {
                if (l != base) {
                    l.setMaskArray(null);
                    l.clear();
                } else {
                    l.setMaskArray(saved);
                }
            }
        }
        return parts.size() == 1 ? parts.get(0) : Nd4j.concat(0, parts.toArray(new INDArray[0]));
    }
}
