package org.prilora;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;
import org.prilora.layers.AdapterKeys;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.PriLoraLayer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/** Adapter files of DL4J networks (MultiLayerNetwork, ComputationGraph): save, and load into a copy of a base. */
final class NetworkAdapterFiles {
    private NetworkAdapterFiles() {
    }

    static void save(Model net, Path file, PriLoraConfig cfgOrNull) throws IOException {
        Objects.requireNonNull(file, "file");
        List<NetworkModules.Entry> modules = NetworkModules.modules(net);
        if (modules.isEmpty()) {
            throw new IllegalArgumentException("net: expected a network with PRILoRA layers, found none");
        }
        AdapterFile.Manifest m = new AdapterFile.Manifest();
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        for (NetworkModules.Entry s : modules) {
            AdapterFile.ModuleEntry e = new AdapterFile.ModuleEntry();
            AdapterModule am = s.module();
            e.module = s.name();
            e.layer = s.layer();
            e.site = am.name();
            e.layerType = s.conf().getClass().getSimpleName();
            e.rank = am.rank();
            e.nIn = am.nIn();
            e.nOut = am.nOut();
            e.scale = s.conf().loraScale();
            e.hasMask = am.maskKey() != null;
            e.baseWeightCrc32 = NetworkModules.crc(s.runtime().getParam(am.weightKey()));
            m.modules.add(e);
            tensors.put(e.module + AdapterKeys.FILE_A, s.runtime().getParam(am.aKey()));
            tensors.put(e.module + AdapterKeys.FILE_B, s.runtime().getParam(am.bKey()));
            if (e.hasMask) {
                tensors.put(e.module + AdapterKeys.FILE_MASK, s.runtime().getParam(am.maskKey()));
            }
            tensors.put(e.module + AdapterKeys.FILE_STATS, s.runtime().getParam(am.statsKey()));
        }
        Map<String, Layer> layers = NetworkModules.layers(net);
        m.modulesToSave = NetworkModules.modulesToSave(net);
        for (String layer : m.modulesToSave) {
            for (Map.Entry<String, INDArray> p : layers.get(layer).paramTable().entrySet()) {
                tensors.put(AdapterContainer.SAVE_PREFIX + layer + "." + p.getKey(), p.getValue());
            }
        }
        PriLoraConfig cfg = cfgOrNull != null ? cfgOrNull : inferConfig(modules.get(0).conf(), m.modulesToSave);
        m.config = cfg.toJson();
        AdapterContainer.write(file, m, tensors);
    }

    private static PriLoraConfig inferConfig(PriLoraLayer first, List<String> modulesToSave) {
        return PriLoraConfig.builder().rankSchedule(RankSchedule.uniform(first.getRank())).adapter(first.getAdapter())
                .modulesToSave(modulesToSave).pruning(PruningSchedule.builder().build()).build();
    }

    static Model load(Model base, Path file) throws IOException {
        AdapterFile f = AdapterContainer.read(file);
        Map<String, Layer> layers = NetworkModules.layers(base);
        List<String> problems = new ArrayList<>();
        Set<String> expectedTensors = new LinkedHashSet<>();
        boolean allAdapted = true;
        for (AdapterFile.ModuleEntry e : f.manifest().modules) {
            Layer l = layers.get(e.layer);
            expectedTensors.addAll(e.tensorNames());
            if (l == null) {
                problems.add("module '" + e.module + "': the network has no layer '" + e.layer + "' (layers: " + layers.keySet() + ")");
                continue;
            }
            allAdapted &= NetworkModules.isAdapted(l.conf().getLayer());
            checkBase(l, e, problems);
            // before anything is built: the recorded rank is only as large as the tensors in the file
            checkShape(f, e.module + AdapterKeys.FILE_A, new long[]{e.rank, e.nIn}, problems);
            checkShape(f, e.module + AdapterKeys.FILE_B, new long[]{e.nOut, e.rank}, problems);
        }
        Set<String> adaptedLayers = new LinkedHashSet<>();
        f.manifest().modules.forEach(e -> adaptedLayers.add(e.layer));
        for (String layer : f.manifest().modulesToSave) {
            Layer l = layers.get(layer);
            if (l == null) {
                problems.add("modules_to_save: the network has no layer '" + layer + "' (layers: " + layers.keySet() + ")");
                continue;
            }
            if (adaptedLayers.contains(layer)) {
                problems.add("modules_to_save: layer '" + layer + "' is also an adapted module's layer; a layer is adapted or saved, not both");
                continue;
            }
            for (Map.Entry<String, INDArray> p : l.paramTable().entrySet()) {
                String key = AdapterContainer.SAVE_PREFIX + layer + "." + p.getKey();
                expectedTensors.add(key);
                INDArray t = f.tensors().get(key);
                if (t != null && !Arrays.equals(t.shape(), p.getValue().shape())) {
                    problems.add("tensor '" + key + "' has shape " + Arrays.toString(t.shape()) + ", the network's parameter has "
                            + Arrays.toString(p.getValue().shape()));
                }
            }
        }
        for (String k : expectedTensors) {
            if (!f.tensors().containsKey(k)) {
                problems.add("tensor '" + k + "' is missing from the file");
            }
        }
        for (String k : f.tensors().keySet()) {
            if (!expectedTensors.contains(k)) {
                problems.add("tensor '" + k + "' in the file belongs to no module of the manifest");
            }
        }
        if (!problems.isEmpty()) {
            throw new AdapterMismatchException("adapter file " + file, problems);
        }
        Model adapted = allAdapted ? NetworkModules.copy(base) : adaptLike(base, f, file);
        assignTensors(adapted, f, file);
        return adapted;
    }

    /** Records a problem when a tensor the file has does not have the shape its manifest entry implies. */
    private static void checkShape(AdapterFile f, String key, long[] shape, List<String> problems) {
        INDArray t = f.tensors().get(key);
        if (t != null && !Arrays.equals(t.shape(), shape)) {
            problems.add("tensor '" + key + "' has shape " + Arrays.toString(t.shape()) + ", the manifest implies " + Arrays.toString(shape));
        }
    }

    /** Checks the base weight of one manifest module: shape, CRC, and the rank of an already adapted layer. */
    private static void checkBase(Layer l, AdapterFile.ModuleEntry e, List<String> problems) {
        INDArray w;
        try {
            w = Converters.baseWeight(l, e.site);
        } catch (IllegalArgumentException ex) {
            problems.add("module '" + e.module + "': " + ex.getMessage());
            return;
        }
        if (w.rank() != 2 || w.size(0) != e.nIn || w.size(1) != e.nOut) {
            problems.add("module '" + e.module + "': base weight has shape " + Arrays.toString(w.shape()) + ", the adapter expects ["
                    + e.nIn + ", " + e.nOut + "]");
            return;
        }
        long crc = NetworkModules.crc(w);
        if (crc != e.baseWeightCrc32) {
            problems.add(AdapterContainer.crcMismatch(e.module, crc, e.baseWeightCrc32));
        }
        if (NetworkModules.isAdapted(l.conf().getLayer()) && ((PriLoraLayer) l.conf().getLayer()).getRank() != e.rank) {
            problems.add("module '" + e.module + "': the network's PRILoRA layer has rank " + ((PriLoraLayer) l.conf().getLayer()).getRank()
                    + ", the adapter has rank " + e.rank);
        }
    }

    private static void assignTensors(Model adapted, AdapterFile f, Path file) {
        List<String> problems = new ArrayList<>();
        for (NetworkModules.Entry s : NetworkModules.modules(adapted)) {
            AdapterModule m = s.module();
            String n = s.name();
            AdapterContainer.assign(s.runtime().getParam(m.aKey()), f.tensors().get(n + AdapterKeys.FILE_A), n + AdapterKeys.FILE_A, problems);
            AdapterContainer.assign(s.runtime().getParam(m.bKey()), f.tensors().get(n + AdapterKeys.FILE_B), n + AdapterKeys.FILE_B, problems);
            AdapterContainer.assign(s.runtime().getParam(m.statsKey()), f.tensors().get(n + AdapterKeys.FILE_STATS),
                    n + AdapterKeys.FILE_STATS, problems);
            if (m.maskKey() != null) {
                INDArray mask = f.tensors().get(n + AdapterKeys.FILE_MASK);
                if (mask == null) {
                    problems.add("module '" + n + "' needs a mask (PERSISTENT_MASK) but the file has none");
                } else {
                    AdapterContainer.assign(s.runtime().getParam(m.maskKey()), mask, n + AdapterKeys.FILE_MASK, problems);
                }
            }
        }
        Map<String, Layer> target = NetworkModules.layers(adapted);
        for (String layer : f.manifest().modulesToSave) {
            for (Map.Entry<String, INDArray> p : target.get(layer).paramTable().entrySet()) {
                p.getValue().assign(f.tensors().get(AdapterContainer.SAVE_PREFIX + layer + "." + p.getKey()));
            }
        }
        if (!problems.isEmpty()) {
            throw new AdapterMismatchException("adapter file " + file, problems);
        }
    }

    /** Adapts {@code base} exactly as recorded: the file's modules with their ranks, and its modules to save. */
    private static Model adaptLike(Model base, AdapterFile f, Path file) {
        Map<String, Integer> rankByLayer = new LinkedHashMap<>();
        for (AdapterFile.ModuleEntry e : f.manifest().modules) {
            rankByLayer.put(e.layer, e.rank);
        }
        return adaptLayers(base, f.config().toBuilder(), rankByLayer, f.manifest().modulesToSave, "adapter file " + file);
    }

    /**
     * Adapts exactly the named layers of {@code base} with the given ranks (bottom to top in network order) and the
     * given modules to save; the rest of the configuration comes from {@code cfg}.
     */
    static Model adaptLayers(Model base, PriLoraConfig.Builder cfg, Map<String, Integer> rankByLayer, List<String> modulesToSave,
                             String source) {
        List<Integer> ranks = new ArrayList<>();
        for (String layer : NetworkModules.layers(base).keySet()) {
            if (rankByLayer.containsKey(layer)) {
                ranks.add(rankByLayer.get(layer));
            }
        }
        String names = String.join("|", rankByLayer.keySet().stream().map(java.util.regex.Pattern::quote).toList());
        try {
            PriLoraConfig c = cfg.targetTypes(Set.of()).targetModules(names)
                    .rankSchedule(RankSchedule.explicit(ranks.stream().mapToInt(Integer::intValue).toArray()))
                    .modulesToSave(modulesToSave).build();
            return base instanceof MultiLayerNetwork ? PriLora.adapt((MultiLayerNetwork) base, c) : PriLora.adapt((ComputationGraph) base, c);
        } catch (IllegalArgumentException e) {
            // e.g. an output layer with parameters that the file does not list in modules_to_save
            throw new AdapterMismatchException(source, List.of(e.getMessage()));
        }
    }
}
