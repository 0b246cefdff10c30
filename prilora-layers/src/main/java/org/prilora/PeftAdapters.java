package org.prilora;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.shade.jackson.annotation.JsonProperty;
import org.prilora.ops.LoraLinear;
import org.prilora.config.ScalingMode;
import org.prilora.config.PriLoraConfig;
import org.prilora.layers.AdapterKeys;
import org.prilora.io.AtomicFiles;
import org.prilora.io.SafeTensors;
import org.prilora.layers.PriLoraLayer;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * PEFT LoRA directories ({@code adapter_config.json} + {@code adapter_model.safetensors}) for DL4J networks
 * with PRILoRA layers. Tensor keys follow PEFT: {@code base_model.model.<module>.lora_A.weight} {@code [r, in]},
 * {@code ...lora_B.weight} {@code [out, r]}; the per-layer ranks become {@code rank_pattern} (and
 * {@code alpha_pattern}); persistent masks are folded into A ({@code A⊙M}); input statistics, which PEFT has no
 * place for, are not exported. Modules to save are exported in PyTorch orientation ({@code weight [out, in]},
 * {@code bias [out]}). A name mapping turns this library's module names into the PEFT model's names (for a
 * BERT-family model they already are). Used through {@link PriLoraAdapters#exportPeft} / {@link PriLoraAdapters#importPeft}.
 */
final class PeftAdapters {
    static final String CONFIG = "adapter_config.json";
    static final String WEIGHTS = "adapter_model.safetensors";
    static final String PREFIX = "base_model.model.";

    private PeftAdapters() {
    }

    /** The fields of PEFT's LoraConfig that this library reads and writes. */
    static final class PeftConfig {
        @JsonProperty("peft_type")
        public String peftType = "LORA";
        @JsonProperty("r")
        public int r;
        @JsonProperty("lora_alpha")
        public double loraAlpha;
        @JsonProperty("target_modules")
        public List<String> targetModules;
        @JsonProperty("rank_pattern")
        public Map<String, Integer> rankPattern;
        @JsonProperty("alpha_pattern")
        public Map<String, Double> alphaPattern;
        @JsonProperty("modules_to_save")
        public List<String> modulesToSave;
        @JsonProperty("use_rslora")
        public boolean useRslora;
        @JsonProperty("lora_dropout")
        public double loraDropout;
        @JsonProperty("bias")
        public String bias = "none";
        @JsonProperty("fan_in_fan_out")
        public boolean fanInFanOut;
        @JsonProperty("inference_mode")
        public boolean inferenceMode = true;
        @JsonProperty("init_lora_weights")
        public boolean initLoraWeights = true;
        @JsonProperty("task_type")
        public String taskType;
        @JsonProperty("base_model_name_or_path")
        public String baseModelNameOrPath;
    }

    static void export(Model net, Path dir, Function<String, String> nameMapping) throws IOException {
        Function<String, String> map = nameMapping == null ? Function.identity() : nameMapping;
        List<NetworkModules.Entry> sites = NetworkModules.modules(net);
        if (sites.isEmpty()) {
            throw new IllegalArgumentException("net: expected a network with PRILoRA layers, found none");
        }
        PeftConfig c = new PeftConfig();
        c.targetModules = new ArrayList<>();
        c.rankPattern = new TreeMap<>();
        c.alphaPattern = new TreeMap<>();
        Map<Integer, Integer> rankCount = new HashMap<>();
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        Set<ScalingMode> scaling = new LinkedHashSet<>();
        for (NetworkModules.Entry s : sites) {
            String name = map.apply(s.name());
            c.targetModules.add(name);
            c.rankPattern.put(name, s.module().rank());
            c.alphaPattern.put(name, s.conf().getAdapter().alpha());
            rankCount.merge(s.module().rank(), 1, Integer::sum);
            scaling.add(s.conf().getAdapter().scalingMode());
            INDArray a = LoraLinear.effectiveA(s.runtime().getParam(s.module().aKey()),
                    s.module().maskKey() == null ? null : s.runtime().getParam(s.module().maskKey()));
            tensors.put(PREFIX + name + ".lora_A.weight", a);
            tensors.put(PREFIX + name + ".lora_B.weight", s.runtime().getParam(s.module().bKey()));
        }
        c.r = Collections.max(rankCount.entrySet(), Map.Entry.comparingByValue()).getKey();
        c.loraAlpha = sites.get(0).conf().getAdapter().alpha();
        if (scaling.size() > 1) {
            throw new IllegalArgumentException("net: PEFT has one scaling rule per adapter, this network mixes " + scaling);
        }
        c.useRslora = scaling.contains(ScalingMode.ALPHA_OVER_SQRT_R);
        Map<String, Layer> layers = NetworkModules.layers(net);
        List<String> save = NetworkModules.modulesToSave(net);
        c.modulesToSave = save.isEmpty() ? null : new ArrayList<>();
        for (String layer : save) {
            String name = map.apply(layer);
            c.modulesToSave.add(name);
            for (Map.Entry<String, INDArray> p : layers.get(layer).paramTable().entrySet()) {
                tensors.put(PREFIX + name + "." + torchName(p.getKey()), toTorch(p.getKey(), p.getValue()));
            }
        }
        Files.createDirectories(dir);
        byte[] json = AdapterContainer.JSON.writeValueAsBytes(c);
        AtomicFiles.write(dir.resolve(CONFIG), out -> out.write(json));
        SafeTensors.write(dir.resolve(WEIGHTS), tensors, Map.of("format", "pt"));
    }

    private static String torchName(String dl4jKey) {
        return AdapterKeys.WEIGHT.equals(dl4jKey) ? "weight" : AdapterKeys.BIAS.equals(dl4jKey) ? "bias" : dl4jKey;
    }

    private static INDArray toTorch(String key, INDArray v) {
        if (AdapterKeys.WEIGHT.equals(key)) {
            return v.transpose().dup('c');       // DL4J [in, out] -> torch.nn.Linear [out, in]
        }
        return AdapterKeys.BIAS.equals(key) ? v.reshape(v.length()) : v;
    }

    static Model importInto(Model base, Path dir, Function<String, String> nameMapping) throws IOException {
        Function<String, String> map = nameMapping == null ? Function.identity() : nameMapping;
        PeftConfig c;
        Map<String, INDArray> tensors;
        try {
            c = AdapterContainer.JSON.readValue(dir.resolve(CONFIG).toFile(), PeftConfig.class);
        } catch (java.io.FileNotFoundException | NoSuchFileException e) {
            throw new AdapterFileException("PEFT directory " + dir + ": " + CONFIG + " is missing", e);
        } catch (IOException e) {
            throw new AdapterFileException("PEFT directory " + dir + ": " + CONFIG + " is not valid JSON (" + e.getMessage() + ")", e);
        }
        if (!Files.exists(dir.resolve(WEIGHTS))) {
            throw new AdapterFileException("PEFT directory " + dir + ": " + WEIGHTS + " is missing");
        }
        tensors = SafeTensors.read(dir.resolve(WEIGHTS));
        List<String> problems = new ArrayList<>();
        if (!"LORA".equals(c.peftType)) {
            problems.add("peft_type is '" + c.peftType + "', expected 'LORA'");
        }
        if (c.targetModules == null || c.targetModules.isEmpty()) {
            problems.add("target_modules is empty: PEFT configs with a regex target_modules string are not supported, list the modules");
        }
        // Which of this network's adaptable modules are targets: PEFT module name -> (layer, site).
        Map<String, Layer> layers = NetworkModules.layers(base);
        Map<String, String[]> byPeftName = new LinkedHashMap<>();
        for (Map.Entry<String, Layer> e : layers.entrySet()) {
            for (String site : Converters.moduleNames(e.getValue().conf().getLayer())) {
                String module = site.isEmpty() ? e.getKey() : e.getKey() + "." + site;
                byPeftName.put(map.apply(module), new String[]{e.getKey(), site});
            }
        }
        Map<String, Integer> rankByLayer = new LinkedHashMap<>();
        Set<String> expected = new LinkedHashSet<>();
        if (c.targetModules != null) {
            for (String t : c.targetModules) {
                String[] ls = byPeftName.get(t);
                if (ls == null) {
                    problems.add("target module '" + t + "' is not an adaptable module of this network");
                    continue;
                }
                int r = c.rankPattern != null && c.rankPattern.containsKey(t) ? c.rankPattern.get(t) : c.r;
                Integer prev = rankByLayer.put(ls[0], r);
                if (prev != null && prev != r) {
                    problems.add("layer '" + ls[0] + "' gets ranks " + prev + " and " + r + " for its projections; one rank per layer is supported");
                }
                double alpha = c.alphaPattern != null && c.alphaPattern.containsKey(t) ? c.alphaPattern.get(t) : c.loraAlpha;
                if (alpha != c.loraAlpha) {
                    problems.add("module '" + t + "' has alpha " + alpha + ", other modules " + c.loraAlpha + "; one alpha per adapter is supported");
                }
                expected.add(PREFIX + t + ".lora_A.weight");
                expected.add(PREFIX + t + ".lora_B.weight");
            }
        }
        // A multi-projection layer (attention) must have all its projections listed.
        for (Map.Entry<String, String[]> e : byPeftName.entrySet()) {
            if (rankByLayer.containsKey(e.getValue()[0]) && (c.targetModules == null || !c.targetModules.contains(e.getKey()))) {
                problems.add("layer '" + e.getValue()[0] + "' is adapted but its projection '" + e.getKey() + "' is not in target_modules");
            }
        }
        List<String> save = new ArrayList<>();
        if (c.modulesToSave != null) {
            for (String m : c.modulesToSave) {
                String layer = null;
                for (String l : layers.keySet()) {
                    if (map.apply(l).equals(m)) {
                        layer = l;
                    }
                }
                if (layer == null) {
                    problems.add("modules_to_save names '" + m + "', which is not a layer of this network");
                    continue;
                }
                save.add(layer);
                for (Map.Entry<String, INDArray> p : layers.get(layer).paramTable().entrySet()) {
                    String key = PREFIX + m + "." + torchName(p.getKey());
                    expected.add(key);
                    INDArray t = tensors.get(key);
                    INDArray want = toTorch(p.getKey(), p.getValue());
                    if (t != null && !Arrays.equals(t.shape(), want.shape())) {
                        problems.add("tensor '" + key + "' has shape " + Arrays.toString(t.shape()) + ", expected " + Arrays.toString(want.shape()));
                    }
                }
            }
        }
        for (String k : expected) {
            if (!tensors.containsKey(k)) {
                problems.add("tensor '" + k + "' is missing from " + WEIGHTS);
            }
        }
        for (String k : tensors.keySet()) {
            if (!expected.contains(k)) {
                problems.add("tensor '" + k + "' in " + WEIGHTS + " belongs to no target module or module to save");
            }
        }
        if (!problems.isEmpty()) {
            throw new AdapterMismatchException("PEFT directory " + dir, problems);
        }
        PriLoraConfig.Builder cfg = PriLoraConfig.builder().alpha(c.loraAlpha)
                .scalingMode(c.useRslora ? ScalingMode.ALPHA_OVER_SQRT_R : ScalingMode.ALPHA_OVER_R).pruning(PruningSchedule.none());
        Model adapted = NetworkAdapterFiles.adaptLayers(base, cfg, rankByLayer, save);
        List<String> shapeProblems = new ArrayList<>();
        for (NetworkModules.Entry s : NetworkModules.modules(adapted)) {
            String name = map.apply(s.name());
            INDArray a = tensors.get(PREFIX + name + ".lora_A.weight");
            INDArray b = tensors.get(PREFIX + name + ".lora_B.weight");
            INDArray pa = s.runtime().getParam(s.module().aKey());
            INDArray pb = s.runtime().getParam(s.module().bKey());
            if (!Arrays.equals(a.shape(), pa.shape()) || !Arrays.equals(b.shape(), pb.shape())) {
                shapeProblems.add("module '" + name + "': lora_A " + Arrays.toString(a.shape()) + " / lora_B " + Arrays.toString(b.shape())
                        + ", expected " + Arrays.toString(pa.shape()) + " / " + Arrays.toString(pb.shape()));
                continue;
            }
            pa.assign(a);
            pb.assign(b);
        }
        Map<String, Layer> target = NetworkModules.layers(adapted);
        for (String layer : save) {
            for (Map.Entry<String, INDArray> p : target.get(layer).paramTable().entrySet()) {
                INDArray t = tensors.get(PREFIX + map.apply(layer) + "." + torchName(p.getKey()));
                p.getValue().assign(AdapterKeys.WEIGHT.equals(p.getKey()) ? t.transpose() : t.reshape(p.getValue().shape()));
            }
        }
        if (!shapeProblems.isEmpty()) {
            throw new AdapterMismatchException("PEFT directory " + dir, shapeProblems);
        }
        return adapted;
    }
}
