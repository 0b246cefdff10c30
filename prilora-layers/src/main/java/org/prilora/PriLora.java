package org.prilora;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.conf.layers.BaseOutputLayer;
import org.deeplearning4j.nn.conf.layers.misc.FrozenLayerWithBackprop;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.rng.Random;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.config.PriLoraConfig;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.LayerConverter;
import org.prilora.layers.PriLoraLayer;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.ToIntFunction;

/**
 * The one-call entry points, in PEFT's spirit: {@link #adapt} (PEFT's {@code get_peft_model}) turns a trained network
 * into one whose target layers carry PRILoRA adapters, {@link #merge} (PEFT's {@code merge_and_unload}) folds the
 * adapters back into plain DL4J layers, and {@link #summary} reports trainable parameters (PEFT's
 * {@code print_trainable_parameters}) and per-module ranks and sparsity.
 *
 * <pre>{@code
 * PriLoraConfig cfg = PriLoraConfig.builder().rankSchedule(RankSchedule.linear(4, 12)).alpha(16)
 *         .modulesToSave("output").build();
 * MultiLayerNetwork adapted = PriLora.adapt(pretrained, cfg);        // outputs unchanged (B = 0)
 * adapted.setListeners(PriLora.listener(cfg));
 * adapted.fit(trainData, 3);
 * PriLoraAdapters.save(adapted, Path.of("adapter.prilora"), cfg);
 * MultiLayerNetwork deployable = PriLora.merge(adapted);             // plain DenseLayer / SelfAttentionLayer / BertBlock
 * }</pre>
 *
 * <p>Targets: every layer type a converter adapts (DL4J's {@code DenseLayer} and {@code SelfAttentionLayer} with
 * {@code projectInput}, and the {@code BertBlock}), selected by {@link PriLoraConfig#targetTypes()} and/or
 * {@link PriLoraConfig#targetModules()} on DL4J layer names (the vertex names of a ComputationGraph; {@code layer0 …}
 * for unnamed MultiLayerNetwork layers). Every other layer with trainable parameters is frozen
 * ({@code FrozenLayerWithBackprop}, so gradients still reach earlier adapters) unless it is listed in
 * {@link PriLoraConfig#modulesToSave()}. The input networks are never modified.
 */
public final class PriLora {

    private PriLora() {
    }

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
        return (MultiLayerNetwork) adaptModel(base, cfg, blockOf);
    }

    /** Adapts a ComputationGraph; every target layer is its own block (topological order). */
    public static ComputationGraph adapt(ComputationGraph base, PriLoraConfig cfg) {
        return adapt(base, cfg, null);
    }

    /** Adapts a ComputationGraph with a block index per target vertex name (or null). */
    public static ComputationGraph adapt(ComputationGraph base, PriLoraConfig cfg, ToIntFunction<String> blockOf) {
        return (ComputationGraph) adaptModel(base, cfg, blockOf);
    }

    private static Model adaptModel(Model base, PriLoraConfig cfg, ToIntFunction<String> blockOf) {
        Objects.requireNonNull(cfg, "cfg");
        NetworkModules.requireNetwork(Objects.requireNonNull(base, "base"));
        List<LayerConverter> converterOf = new ArrayList<>();
        Model net = NetworkModules.rebuild(base, layers -> plan(layers, cfg, blockOf, converterOf), (i, from, to) -> {
            if (converterOf.get(i) != null) {
                converterOf.get(i).copyBase(from, to);
            } else {
                copyAll(from, to);
            }
        });
        initAdapters(NetworkModules.allLayers(net), cfg.seed());
        return net;
    }

    /** The new configuration of every layer; records each layer's converter (null when not adapted). */
    private static List<org.deeplearning4j.nn.conf.layers.Layer> plan(List<NetworkModules.LayerConf> layers, PriLoraConfig cfg,
                                                                      ToIntFunction<String> blockOf, List<LayerConverter> converterOf) {
        List<String> problems = new ArrayList<>();
        List<Integer> targets = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            NetworkModules.LayerConf l = layers.get(i);
            LayerConverter c = Converters.adapting(l.conf());
            boolean target = cfg.isTarget(l.name(), l.conf().getClass().getSimpleName());
            if (NetworkModules.isAdapted(l.conf())) {
                problems.add("layer '" + l.name() + "' is already a PRILoRA layer");
            } else if (target && c != null) {
                targets.add(i);
            } else if (target && cfg.targetModules() != null) {
                problems.add("layer '" + l.name() + "' matches targetModules but its type " + l.conf().getClass().getSimpleName()
                        + " cannot be adapted (expected one of " + Converters.adaptableTypes() + ")");
            }
            converterOf.add(targets.contains(i) ? c : null);
        }
        List<String> names = layers.stream().map(NetworkModules.LayerConf::name).toList();
        for (String m : cfg.modulesToSave()) {
            if (!names.contains(m)) {
                problems.add("modulesToSave names '" + m + "', which is not a layer of this network (module names are DL4J"
                        + " layer names: " + names + ")");
            }
        }
        if (targets.isEmpty()) {
            problems.add("no layer matches targetTypes " + cfg.targetTypes() + (cfg.targetModules() == null ? ""
                    : " and targetModules '" + cfg.targetModules() + "'") + " (layers: " + names + ")");
        }
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException("PriLora.adapt: " + String.join("; ", problems));
        }
        int[] block = blocks(targets.stream().map(names::get).toList(), blockOf);
        int numBlocks = java.util.Arrays.stream(block).max().orElse(0) + 1;
        List<org.deeplearning4j.nn.conf.layers.Layer> out = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            org.deeplearning4j.nn.conf.layers.Layer l = layers.get(i).conf();
            int t = targets.indexOf(i);
            if (t >= 0) {
                out.add(converterOf.get(i).adapt(l, cfg.rankSchedule().rankFor(block[t], numBlocks), cfg.adapter()));
            } else if (cfg.modulesToSave().contains(layers.get(i).name()) || !NetworkModules.hasTrainableParams(l)) {
                out.add(l);   // trained as it is, or has nothing to train (no parameters, or frozen by construction)
            } else if (l instanceof BaseOutputLayer) {
                throw new IllegalArgumentException("PriLora.adapt: output layer '" + layers.get(i).name() + "' has parameters but"
                        + " is not in modulesToSave; list it there (DL4J cannot freeze a loss layer)");
            } else {
                out.add(new FrozenLayerWithBackprop(l));
            }
        }
        return out;
    }

    /** Block index of each target, bottom to top: its position, or what {@code blockOf} says. */
    private static int[] blocks(List<String> targetNames, ToIntFunction<String> blockOf) {
        int[] block = new int[targetNames.size()];
        for (int i = 0; i < block.length; i++) {
            block[i] = blockOf == null ? i : blockOf.applyAsInt(targetNames.get(i));
            if (block[i] < 0) {
                throw new IllegalArgumentException("blockOf: expected a block index >= 0 for layer '" + targetNames.get(i)
                        + "', got " + block[i]);
            }
        }
        return block;
    }

    private static void copyAll(Layer from, Layer to) {
        for (Map.Entry<String, INDArray> e : from.paramTable().entrySet()) {
            to.getParam(e.getKey()).assign(e.getValue());
        }
    }

    /** Seeded A initialisation per module (independent of the global RNG state); B = 0, mask = 1, statistics = 0. */
    static void initAdapters(Layer[] layers, long seed) {
        long k = 0;
        for (Layer l : layers) {
            if (NetworkModules.isAdapted(l.conf().getLayer())) {
                PriLoraLayer p = (PriLoraLayer) l.conf().getLayer();
                for (AdapterModule m : p.adapterModules()) {
                    Random rng = Nd4j.getRandomFactory().getNewRandomInstance(seed * 1_000_003L + k++);
                    m.initState(l::getParam, p.getAdapter().init(), rng);
                }
            }
        }
    }

    /** A plain MultiLayerNetwork (stock layers) with every adapter folded into its weight: {@code W = W0 + s·(A⊙M)ᵀBᵀ}. */
    public static MultiLayerNetwork merge(MultiLayerNetwork adapted) {
        return (MultiLayerNetwork) mergeModel(adapted);
    }

    /** A plain ComputationGraph with every adapter folded into its weight. */
    public static ComputationGraph merge(ComputationGraph adapted) {
        return (ComputationGraph) mergeModel(adapted);
    }

    private static Model mergeModel(Model adapted) {
        NetworkModules.requireNetwork(Objects.requireNonNull(adapted, "adapted"));
        List<LayerConverter> converterOf = new ArrayList<>();
        return NetworkModules.rebuild(adapted, layers -> {
            List<org.deeplearning4j.nn.conf.layers.Layer> out = new ArrayList<>();
            for (NetworkModules.LayerConf l : layers) {
                LayerConverter c = Converters.merging(l.conf());
                if (c == null && NetworkModules.isAdapted(l.conf())) {
                    throw new IllegalArgumentException("PriLora.merge: layer '" + l.name() + "' of type "
                            + l.conf().getClass().getSimpleName() + " has no plain DL4J counterpart to merge into");
                }
                converterOf.add(c);
                out.add(c != null ? c.plain(l.conf()) : NetworkModules.unwrapFrozen(l.conf()));
            }
            return out;
        }, (i, from, to) -> {
            if (converterOf.get(i) != null) {
                converterOf.get(i).merge(from, to);
            } else {
                copyAll(from, to);
            }
        });
    }

    /** Trainable and total parameters, and per adapted module its rank, A sparsity and parameter count. */
    public static PriLoraSummary summary(Model net) {
        return PriLoraSummary.of(net);
    }

    /** The listener for a configuration's pruning schedule. */
    public static PriLoraListener listener(PriLoraConfig cfg) {
        return new PriLoraListener(cfg.pruning());
    }
}
