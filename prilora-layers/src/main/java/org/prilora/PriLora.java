package org.prilora;

import org.prilora.bert.BertNaming;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.graph.GraphVertex;
import org.deeplearning4j.nn.conf.graph.LayerVertex;
import org.deeplearning4j.nn.conf.layers.BaseOutputLayer;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.LossLayer;
import org.deeplearning4j.nn.conf.layers.SelfAttentionLayer;
import org.deeplearning4j.nn.conf.layers.misc.FrozenLayerWithBackprop;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.NoOp;
import org.prilora.ops.LoraLinear;
import org.prilora.config.PriLoraConfig;
import org.prilora.bert.BertEmbeddings;
import org.prilora.bert.PriLoraBertBlock;
import org.prilora.layers.AbstractPriLoraSameDiffLayer;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.PriLoraDense;
import org.prilora.layers.PriLoraLayer;
import org.prilora.layers.PriLoraRanks;
import org.prilora.layers.PriLoraSelfAttention;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.ToIntFunction;

/**
 * The one-call entry points, in PEFT's spirit: {@link #adapt} (PEFT's {@code get_peft_model}) turns a
 * trained network into one whose target layers carry PRILoRA adapters, {@link #merge} (PEFT's
 * {@code merge_and_unload}) folds the adapters back into plain DL4J layers, and {@link #summary} reports
 * trainable parameters (PEFT's {@code print_trainable_parameters}) and per-layer ranks and sparsity.
 *
 * <pre>{@code
 * PriLoraConfig cfg = PriLoraConfig.builder().rankSchedule(RankSchedule.linear(4, 12)).alpha(16)
 *         .modulesToSave("output").build();
 * MultiLayerNetwork adapted = PriLora.adapt(pretrained, cfg);        // outputs unchanged (B = 0)
 * adapted.setListeners(new PriLoraListener(cfg.pruning()));
 * adapted.fit(trainData, 3);
 * PriLoraAdapters.save(adapted, Path.of("adapter.prilora"));
 * MultiLayerNetwork deployable = PriLora.merge(adapted);             // stock DenseLayer / SelfAttentionLayer
 * }</pre>
 *
 * <p>Targets: DL4J {@code DenseLayer} and {@code SelfAttentionLayer} (with {@code projectInput}); selected by
 * {@link PriLoraConfig#targetTypes()} and/or {@link PriLoraConfig#targetModules()}. Every other layer with
 * parameters is frozen ({@code FrozenLayerWithBackprop}, so gradients still reach earlier adapters) unless it is
 * listed in {@link PriLoraConfig#modulesToSave()}. The input networks are never modified.
 */
public final class PriLora {

    private PriLora() {
    }

    // ------------------------------------------------------------------ adapt

    /** Adapts a MultiLayerNetwork; every target layer is its own block for the rank schedule. */
    public static MultiLayerNetwork adapt(MultiLayerNetwork base, PriLoraConfig cfg) {
        return adapt(base, cfg, null);
    }

    /**
     * Adapts a MultiLayerNetwork.
     *
     * @param blockOf block index of a target layer by name (for models whose blocks hold several targets), or null
     */
    public static MultiLayerNetwork adapt(MultiLayerNetwork base, PriLoraConfig cfg, ToIntFunction<String> blockOf) {
        Objects.requireNonNull(base, "base");
        Objects.requireNonNull(cfg, "cfg");
        MultiLayerConfiguration conf = base.getLayerWiseConfigurations().clone();
        List<org.deeplearning4j.nn.conf.layers.Layer> layerConfs = new ArrayList<>();
        for (NeuralNetConfiguration c : conf.getConfs()) {
            layerConfs.add(c.getLayer());
        }
        Plan plan = plan(layerConfs, cfg, blockOf);
        for (int i = 0; i < layerConfs.size(); i++) {
            NeuralNetConfiguration c = conf.getConf(i);
            c.setLayer(plan.replacement.get(i));
            c.clearVariables();
        }
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        for (int i = 0; i < layerConfs.size(); i++) {
            copyParams(base.getLayer(i), net.getLayer(i));
        }
        initAdapters(net.getLayers(), cfg.seed());
        return net;
    }

    /** Adapts a ComputationGraph; every target layer is its own block (topological order). */
    public static ComputationGraph adapt(ComputationGraph base, PriLoraConfig cfg) {
        return adapt(base, cfg, null);
    }

    /** Adapts a ComputationGraph with a block index per target vertex name (or null). */
    public static ComputationGraph adapt(ComputationGraph base, PriLoraConfig cfg, ToIntFunction<String> blockOf) {
        Objects.requireNonNull(base, "base");
        Objects.requireNonNull(cfg, "cfg");
        ComputationGraphConfiguration conf = base.getConfiguration().clone();
        List<String> names = new ArrayList<>();
        List<org.deeplearning4j.nn.conf.layers.Layer> layerConfs = new ArrayList<>();
        for (String v : PriLoraRanks.topologicalOrder(conf)) {
            GraphVertex gv = conf.getVertices().get(v);
            if (gv instanceof LayerVertex) {
                names.add(v);
                org.deeplearning4j.nn.conf.layers.Layer l = ((LayerVertex) gv).getLayerConf().getLayer();
                if (l.getLayerName() == null) {
                    l.setLayerName(v);
                }
                layerConfs.add(l);
            }
        }
        Plan plan = plan(layerConfs, cfg, blockOf);
        for (int i = 0; i < names.size(); i++) {
            NeuralNetConfiguration c = ((LayerVertex) conf.getVertices().get(names.get(i))).getLayerConf();
            c.setLayer(plan.replacement.get(i));
            c.clearVariables();
        }
        ComputationGraph net = new ComputationGraph(conf);
        net.init();
        for (String n : names) {
            copyParams(base.getLayer(n), net.getLayer(n));
        }
        initAdapters(net.getLayers(), cfg.seed());
        return net;
    }

    /** Which layers become what. */
    private static final class Plan {
        final List<org.deeplearning4j.nn.conf.layers.Layer> replacement = new ArrayList<>();
    }

    private static Plan plan(List<org.deeplearning4j.nn.conf.layers.Layer> layers, PriLoraConfig cfg, ToIntFunction<String> blockOf) {
        List<Integer> targets = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            org.deeplearning4j.nn.conf.layers.Layer l = layers.get(i);
            if (isPlainBertBlock(l)) {
                if (cfg.isTarget(l.getLayerName(), l.getClass().getSimpleName())) {
                    targets.add(i);
                }
            } else if (l instanceof PriLoraLayer) {
                problems.add("layer '" + l.getLayerName() + "' is already a PRILoRA layer");
            } else if (cfg.isTarget(l.getLayerName(), l.getClass().getSimpleName())) {
                if (l instanceof DenseLayer || l instanceof SelfAttentionLayer) {
                    targets.add(i);
                } else if (cfg.targetModules() != null) {
                    problems.add("layer '" + l.getLayerName() + "' matches targetModules but its type " + l.getClass().getSimpleName()
                            + " cannot be adapted (expected DenseLayer, SelfAttentionLayer or a plain PriLoraBertBlock)");
                }
            }
        }
        for (String m : cfg.modulesToSave()) {
            if (layers.stream().noneMatch(l -> m.equals(l.getLayerName()))) {
                problems.add("modulesToSave names '" + m + "', which is not a layer of this network");
            }
        }
        if (targets.isEmpty()) {
            problems.add("no layer matches targetTypes " + cfg.targetTypes() + (cfg.targetModules() == null ? "" : " and targetModules '" + cfg.targetModules() + "'"));
        }
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException("PriLora.adapt: " + String.join("; ", problems));
        }
        int numBlocks;
        int[] block = new int[targets.size()];
        if (blockOf == null) {
            for (int i = 0; i < block.length; i++) {
                block[i] = i;
            }
            numBlocks = block.length;
        } else {
            int max = -1;
            for (int i = 0; i < block.length; i++) {
                String name = layers.get(targets.get(i)).getLayerName();
                block[i] = blockOf.applyAsInt(name);
                if (block[i] < 0) {
                    throw new IllegalArgumentException("blockOf: expected a block index >= 0 for layer '" + name + "', got " + block[i]);
                }
                max = Math.max(max, block[i]);
            }
            numBlocks = max + 1;
        }
        Plan plan = new Plan();
        int t = 0;
        for (int i = 0; i < layers.size(); i++) {
            org.deeplearning4j.nn.conf.layers.Layer l = layers.get(i);
            if (t < targets.size() && targets.get(t) == i) {
                plan.replacement.add(toPriLora(l, cfg.rankSchedule().rankFor(block[t], numBlocks), cfg));
                t++;
            } else if (cfg.modulesToSave().contains(l.getLayerName()) || l.initializer().numParams(l) == 0
                    || l instanceof BertEmbeddings) {
                // BertEmbeddings is frozen by construction (NoOp updaters, no gradients): kept as it is.
                plan.replacement.add(l);
            } else if (l instanceof BaseOutputLayer || l instanceof LossLayer) {
                throw new IllegalArgumentException("PriLora.adapt: output layer '" + l.getLayerName()
                        + "' has parameters but is not in modulesToSave; list it there (DL4J cannot freeze a loss layer)");
            } else {
                plan.replacement.add(new FrozenLayerWithBackprop(l));
            }
        }
        return plan;
    }

    /**
     * A BERT block in full fine-tuning mode is the plain pretrained block (every weight trainable, adapters
     * bypassed): {@code BertEncoderFactory.builder(config).fullFineTune(true)} builds the base model that way.
     */
    private static boolean isPlainBertBlock(org.deeplearning4j.nn.conf.layers.Layer l) {
        return l instanceof PriLoraBertBlock && ((PriLoraBertBlock) l).isFullFineTune();
    }

    private static org.deeplearning4j.nn.conf.layers.Layer toPriLora(org.deeplearning4j.nn.conf.layers.Layer l, int rank, PriLoraConfig cfg) {
        if (l instanceof PriLoraBertBlock) {
            PriLoraBertBlock b = (PriLoraBertBlock) l;
            if (cfg.loraDropout() > 0) {
                throw new IllegalArgumentException("PriLora.adapt: layer '" + b.getLayerName() + "' is a PriLoraBertBlock, which has no "
                        + "adapter dropout; expected loraDropout 0, got " + cfg.loraDropout());
            }
            PriLoraBertBlock out = new PriLoraBertBlock.Builder().hidden(b.getHidden()).numHeads(b.getNumHeads())
                    .intermediate(b.getIntermediate()).layerNormEps(b.getLayerNormEps()).graphRuntime(b.isGraphRuntime())
                    .rank(rank).alpha(cfg.alpha()).scalingMode(cfg.scalingMode()).pruningMode(cfg.pruning().mode())
                    .adapterInit(cfg.init()).name(b.getLayerName()).build();
            out.setUpdater(b.getUpdater());
            out.setRegularization(b.getRegularization());
            return out;
        }
        if (l instanceof DenseLayer) {
            DenseLayer d = (DenseLayer) l;
            if (d.hasLayerNorm()) {
                throw new IllegalArgumentException("PriLora.adapt: layer '" + d.getLayerName() + "' uses DenseLayer.hasLayerNorm, which PriLoraDense does not support");
            }
            PriLoraDense.Builder b = new PriLoraDense.Builder().nIn(d.getNIn()).nOut(d.getNOut()).activation(d.getActivationFn())
                    .hasBias(d.hasBias()).rank(rank).alpha(cfg.alpha()).scalingMode(cfg.scalingMode())
                    .pruningMode(cfg.pruning().mode()).adapterInit(cfg.init()).loraDropout(cfg.loraDropout());
            b.name(d.getLayerName());
            PriLoraDense out = b.build();
            copyTrainingSettings(d, out);
            return out;
        }
        SelfAttentionLayer s = (SelfAttentionLayer) l;
        if (!s.isProjectInput()) {
            throw new IllegalArgumentException("PriLora.adapt: layer '" + s.getLayerName() + "' is a SelfAttentionLayer without projectInput: it has no projections to adapt");
        }
        PriLoraSelfAttention out = new PriLoraSelfAttention.Builder().nIn(s.getNIn()).nOut(s.getNOut()).nHeads(s.getNHeads())
                .headSize(s.getHeadSize()).rank(rank).alpha(cfg.alpha()).scalingMode(cfg.scalingMode())
                .pruningMode(cfg.pruning().mode()).adapterInit(cfg.init()).name(s.getLayerName()).build();
        out.setUpdater(s.getUpdater());
        out.setRegularization(s.getRegularization());
        return out;
    }

    private static void copyTrainingSettings(org.deeplearning4j.nn.conf.layers.BaseLayer from, org.deeplearning4j.nn.conf.layers.BaseLayer to) {
        to.setIUpdater(from.getIUpdater());
        to.setRegularization(from.getRegularization());
        to.setGradientNormalization(from.getGradientNormalization());
        to.setGradientNormalizationThreshold(from.getGradientNormalizationThreshold());
        to.setIDropout(from.getIDropout());
        to.setWeightInitFn(from.getWeightInitFn());
        to.setBiasInit(from.getBiasInit());
        to.setBiasUpdater(from.getBiasUpdater());
        to.setRegularizationBias(from.getRegularizationBias());
    }

    /** Copies the base layer's parameters into the new layer (as frozen W/b for converted layers). */
    private static void copyParams(Layer from, Layer to) {
        org.deeplearning4j.nn.conf.layers.Layer toConf = to.conf().getLayer();
        if (toConf instanceof PriLoraDense) {
            AdapterModule s = ((PriLoraDense) toConf).adapterModules().get(0);
            to.getParam(s.weightKey()).assign(from.getParam("W"));
            if (s.biasKey() != null) {
                to.getParam(s.biasKey()).assign(from.getParam("b"));
            }
        } else if (toConf instanceof PriLoraBertBlock) {
            // The pretrained weights, biases and LayerNorms, by key; A, B, masks and statistics start fresh (their
            // shapes follow the new rank).
            for (Map.Entry<String, INDArray> e : from.paramTable().entrySet()) {
                String k = e.getKey();
                if (!(AbstractPriLoraSameDiffLayer.isTrainableKey(k) || k.endsWith("loraM") || k.endsWith("xnorm"))) {
                    to.getParam(k).assign(e.getValue());
                }
            }
        } else if (toConf instanceof PriLoraSelfAttention) {
            to.getParam("qW").assign(PriLoraSelfAttention.fromDl4jProjection(from.getParam("Wq")));
            to.getParam("kW").assign(PriLoraSelfAttention.fromDl4jProjection(from.getParam("Wk")));
            to.getParam("vW").assign(PriLoraSelfAttention.fromDl4jProjection(from.getParam("Wv")));
            to.getParam("oW").assign(from.getParam("Wo"));
        } else {
            for (Map.Entry<String, INDArray> e : from.paramTable().entrySet()) {
                to.getParam(e.getKey()).assign(e.getValue());
            }
        }
    }

    /** Seeded A initialisation per site (independent of the global RNG state); B = 0, mask = 1, statistics = 0. */
    static void initAdapters(Layer[] layers, long seed) {
        long k = 0;
        for (Layer l : layers) {
            if (l.conf().getLayer() instanceof PriLoraLayer) {
                PriLoraLayer p = (PriLoraLayer) l.conf().getLayer();
                for (AdapterModule s : p.adapterModules()) {
                    p.getAdapterInit().initA(l.getParam(s.aKey()), Nd4j.getRandomFactory().getNewRandomInstance(seed * 1_000_003L + k++));
                    l.getParam(s.bKey()).assign(0);
                    if (s.maskKey() != null) {
                        l.getParam(s.maskKey()).assign(1);
                    }
                    l.getParam(s.statsKey()).assign(0);
                }
            }
        }
    }

    // ------------------------------------------------------------------ merge

    /** A plain MultiLayerNetwork (stock layers) with every adapter folded into its weight: {@code W = W0 + s·(A⊙M)ᵀBᵀ}. */
    public static MultiLayerNetwork merge(MultiLayerNetwork adapted) {
        Objects.requireNonNull(adapted, "adapted");
        MultiLayerConfiguration conf = adapted.getLayerWiseConfigurations().clone();
        for (int i = 0; i < conf.getConfs().size(); i++) {
            NeuralNetConfiguration c = conf.getConf(i);
            c.setLayer(plainLayer(c.getLayer()));
            c.clearVariables();
        }
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        for (int i = 0; i < conf.getConfs().size(); i++) {
            mergeParams(adapted.getLayer(i), net.getLayer(i));
        }
        return net;
    }

    /** A plain ComputationGraph with every adapter folded into its weight. */
    public static ComputationGraph merge(ComputationGraph adapted) {
        Objects.requireNonNull(adapted, "adapted");
        ComputationGraphConfiguration conf = adapted.getConfiguration().clone();
        List<String> names = new ArrayList<>();
        for (Map.Entry<String, GraphVertex> e : conf.getVertices().entrySet()) {
            if (e.getValue() instanceof LayerVertex) {
                NeuralNetConfiguration c = ((LayerVertex) e.getValue()).getLayerConf();
                c.setLayer(plainLayer(c.getLayer()));
                c.clearVariables();
                names.add(e.getKey());
            }
        }
        ComputationGraph net = new ComputationGraph(conf);
        net.init();
        for (String n : names) {
            mergeParams(adapted.getLayer(n), net.getLayer(n));
        }
        return net;
    }

    private static org.deeplearning4j.nn.conf.layers.Layer plainLayer(org.deeplearning4j.nn.conf.layers.Layer l) {
        if (l instanceof FrozenLayerWithBackprop) {
            return ((FrozenLayerWithBackprop) l).getUnderlying();
        }
        if (l instanceof PriLoraDense) {
            PriLoraDense p = (PriLoraDense) l;
            DenseLayer d = new DenseLayer.Builder().nIn(p.getNIn()).nOut(p.getNOut()).activation(p.getActivationFn())
                    .hasBias(p.hasBias()).name(p.getLayerName()).build();
            copyTrainingSettings(p, d);
            return d;
        }
        if (l instanceof PriLoraSelfAttention) {
            PriLoraSelfAttention p = (PriLoraSelfAttention) l;
            SelfAttentionLayer s = new SelfAttentionLayer.Builder().nIn((int) p.getNIn()).nOut((int) p.getNOut()).nHeads(p.getNHeads())
                    .headSize((int) p.getHeadSize()).projectInput(true).name(p.getLayerName()).build();
            s.setUpdater(p.getUpdater());
            s.setRegularization(p.getRegularization());
            return s;
        }
        if (l instanceof PriLoraBertBlock && !((PriLoraBertBlock) l).isFullFineTune()) {
            // The plain block: full fine-tuning mode bypasses the (rank-1, unused) adapters.
            PriLoraBertBlock b = (PriLoraBertBlock) l;
            PriLoraBertBlock plain = new PriLoraBertBlock.Builder().hidden(b.getHidden()).numHeads(b.getNumHeads())
                    .intermediate(b.getIntermediate()).layerNormEps(b.getLayerNormEps()).graphRuntime(b.isGraphRuntime())
                    .rank(1).fullFineTune(true).name(b.getLayerName()).build();
            plain.setUpdater(b.getUpdater());
            plain.setRegularization(b.getRegularization());
            return plain;
        }
        if (l instanceof PriLoraLayer) {
            throw new IllegalArgumentException("PriLora.merge: layer '" + l.getLayerName() + "' of type " + l.getClass().getSimpleName()
                    + " has no plain DL4J counterpart to merge into");
        }
        return l;
    }

    private static void mergeParams(Layer from, Layer to) {
        org.deeplearning4j.nn.conf.layers.Layer fromConf = from.conf().getLayer();
        if (fromConf instanceof PriLoraDense) {
            PriLoraDense p = (PriLoraDense) fromConf;
            AdapterModule s = p.adapterModules().get(0);
            to.getParam("W").assign(merged(from, s, p.loraScale()));
            if (s.biasKey() != null) {
                to.getParam("b").assign(from.getParam(s.biasKey()));
            }
        } else if (fromConf instanceof PriLoraBertBlock && !((PriLoraBertBlock) fromConf).isFullFineTune()) {
            PriLoraBertBlock p = (PriLoraBertBlock) fromConf;
            for (AdapterModule s : p.adapterModules()) {
                to.getParam(s.weightKey()).assign(merged(from, s, p.loraScale()));
                to.getParam(s.biasKey()).assign(from.getParam(s.biasKey()));
            }
            for (org.prilora.bert.BertNaming.Norm n : org.prilora.bert.BertNaming.Norm.values()) {
                to.getParam(n.gainKey()).assign(from.getParam(n.gainKey()));
                to.getParam(n.biasKey()).assign(from.getParam(n.biasKey()));
            }
        } else if (fromConf instanceof PriLoraSelfAttention) {
            PriLoraSelfAttention p = (PriLoraSelfAttention) fromConf;
            Map<String, AdapterModule> sites = new LinkedHashMap<>();
            for (AdapterModule s : p.adapterModules()) {
                sites.put(s.name(), s);
            }
            to.getParam("Wq").assign(PriLoraSelfAttention.toDl4jProjection(merged(from, sites.get(PriLoraSelfAttention.QUERY), p.loraScale()), p.getNHeads()));
            to.getParam("Wk").assign(PriLoraSelfAttention.toDl4jProjection(merged(from, sites.get(PriLoraSelfAttention.KEY), p.loraScale()), p.getNHeads()));
            to.getParam("Wv").assign(PriLoraSelfAttention.toDl4jProjection(merged(from, sites.get(PriLoraSelfAttention.VALUE), p.loraScale()), p.getNHeads()));
            to.getParam("Wo").assign(merged(from, sites.get(PriLoraSelfAttention.OUTPUT), p.loraScale()));
        } else {
            for (Map.Entry<String, INDArray> e : from.paramTable().entrySet()) {
                to.getParam(e.getKey()).assign(e.getValue());
            }
        }
    }

    private static INDArray merged(Layer l, AdapterModule s, double scale) {
        return LoraLinear.mergedWeight(l.getParam(s.weightKey()), l.getParam(s.aKey()), l.getParam(s.bKey()),
                s.maskKey() == null ? null : l.getParam(s.maskKey()), scale);
    }

    // ------------------------------------------------------------------ summary

    /** Trainable and total parameters, and per adapted projection its rank, A sparsity and parameter count. */
    public static PriLoraSummary summary(Model net) {
        return PriLoraSummary.of(net);
    }

    /** Whether a parameter of a runtime layer is updated by training (its updater is neither null nor NoOp). */
    public static boolean isTrainable(Layer layer, String paramKey) {
        if (layer instanceof org.deeplearning4j.nn.layers.FrozenLayerWithBackprop || layer instanceof org.deeplearning4j.nn.layers.FrozenLayer) {
            return false; // the wrapper's conf() is the wrapped layer's, which still names an updater
        }
        IUpdater u = layer.conf().getLayer().getUpdaterByParam(paramKey);
        return u != null && !(u instanceof NoOp);
    }

    /** The listener for a configuration's pruning schedule (convenience). */
    public static PriLoraListener listener(PriLoraConfig cfg) {
        return new PriLoraListener(cfg.pruning());
    }
}
