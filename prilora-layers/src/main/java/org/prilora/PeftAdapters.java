package org.prilora;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.shade.jackson.annotation.JsonProperty;
import org.nd4j.shade.jackson.databind.JsonNode;
import org.prilora.ops.LoraLinear;
import org.prilora.config.ScalingMode;
import org.prilora.config.PriLoraConfig;
import org.prilora.layers.AdapterKeys;
import org.prilora.io.AtomicFiles;
import org.prilora.io.SafeTensors;
import org.prilora.io.SafeTensorsFormatException;
import org.prilora.config.PruningSchedule;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * PEFT LoRA directories ({@code adapter_config.json} + {@code adapter_model.safetensors}) for DL4J networks
 * with PRILoRA layers. Tensor keys follow PEFT: {@code base_model.model.<module>.lora_A.weight} {@code [r, in]},
 * {@code ...lora_B.weight} {@code [out, r]}; the per-layer ranks become {@code rank_pattern} (and
 * {@code alpha_pattern}); persistent masks are folded into A ({@code A⊙M}); input statistics, which PEFT has no
 * place for, are not exported. Modules to save are exported in PyTorch orientation ({@code weight [out, in]},
 * {@code bias [out]}). A name mapping turns this library's module names into the PEFT model's names (for a
 * BERT-family model they already are). Used through {@link PriLoraAdapters#exportPeft} / {@link PriLoraAdapters#importPeft}.
 *
 * <p>{@code target_modules} is read as PEFT reads it: a list of module names, or one string that is a regular
 * expression every selected module's (mapped) name must fully match ({@code re.fullmatch}); it is compiled as a
 * Java regex, which agrees with Python's {@code re} on the usual patterns ({@code .*\.(query|value)}).
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
        /** A list of module names, or a regex string (PEFT allows both); see {@link #targets}. */
        @JsonProperty("target_modules")
        public JsonNode targetModules;
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
        List<String> targets = new ArrayList<>();
        c.rankPattern = new TreeMap<>();
        c.alphaPattern = new TreeMap<>();
        Map<Integer, Integer> rankCount = new HashMap<>();
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        Set<ScalingMode> scaling = new LinkedHashSet<>();
        for (NetworkModules.Entry s : sites) {
            String name = map.apply(s.name());
            targets.add(name);
            c.rankPattern.put(name, s.module().rank());
            c.alphaPattern.put(name, s.conf().getAdapter().alpha());
            rankCount.merge(s.module().rank(), 1, Integer::sum);
            scaling.add(s.conf().getAdapter().scalingMode());
            INDArray a = LoraLinear.effectiveA(s.runtime().getParam(s.module().aKey()),
                    s.module().maskKey() == null ? null : s.runtime().getParam(s.module().maskKey()));
            tensors.put(PREFIX + name + ".lora_A.weight", a);
            tensors.put(PREFIX + name + ".lora_B.weight", s.runtime().getParam(s.module().bKey()));
        }
        c.targetModules = AdapterContainer.JSON.valueToTree(targets);
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
        String source = "PEFT directory " + dir;
        PeftConfig c;
        try {
            c = AdapterContainer.JSON.readValue(dir.resolve(CONFIG).toFile(), PeftConfig.class);
        } catch (java.io.FileNotFoundException | NoSuchFileException e) {
            throw new AdapterFileException(source + ": " + CONFIG + " is missing", e);
        } catch (IOException e) {
            throw new AdapterFileException(source + ": " + CONFIG + " is not valid JSON (" + e.getMessage() + ")", e);
        }
        if (c == null) {
            throw new AdapterFileException(source + ": " + CONFIG + " is empty or null; expected a JSON object");
        }
        if (!Files.exists(dir.resolve(WEIGHTS))) {
            throw new AdapterFileException(source + ": " + WEIGHTS + " is missing");
        }
        Map<String, INDArray> tensors;
        try {
            tensors = SafeTensors.read(dir.resolve(WEIGHTS));
        } catch (SafeTensorsFormatException e) {
            throw new AdapterFileException(source + ": " + e.getMessage(), e);
        }
        PriLoraConfig.Builder cfg = PriLoraConfig.builder().alpha(c.loraAlpha)
                .scalingMode(c.useRslora ? ScalingMode.ALPHA_OVER_SQRT_R : ScalingMode.ALPHA_OVER_R).pruning(PruningSchedule.none());
        try {
            cfg.build();
        } catch (IllegalArgumentException e) {
            throw new AdapterFileException(source + ": " + CONFIG + ": lora_alpha " + c.loraAlpha + " is not usable (" + e.getMessage() + ")", e);
        }
        List<String> problems = new ArrayList<>();
        if (!"LORA".equals(c.peftType)) {
            problems.add("peft_type is '" + c.peftType + "', expected 'LORA'");
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
        List<String> targets = targets(c.targetModules, byPeftName.keySet(), source, problems);
        Map<String, Integer> rankByLayer = new LinkedHashMap<>();
        Set<String> expected = new LinkedHashSet<>();
        for (String t : targets) {
            String[] ls = byPeftName.get(t);
            if (ls == null) {
                problems.add("target module '" + t + "' is not an adaptable module of this network");
                continue;
            }
            expected.add(PREFIX + t + ".lora_A.weight");
            expected.add(PREFIX + t + ".lora_B.weight");
            Integer r = c.rankPattern != null && c.rankPattern.containsKey(t) ? c.rankPattern.get(t) : Integer.valueOf(c.r);
            if (r == null || r < 1) {
                problems.add("module '" + t + "' has rank " + r + " (from " + (c.rankPattern != null && c.rankPattern.containsKey(t)
                        ? "rank_pattern" : "r") + "); expected a rank >= 1");
                continue;
            }
            Integer prev = rankByLayer.put(ls[0], r);
            if (prev != null && !prev.equals(r)) {
                problems.add("layer '" + ls[0] + "' gets ranks " + prev + " and " + r + " for its projections; one rank per layer is supported");
            }
            Double alpha = c.alphaPattern != null && c.alphaPattern.containsKey(t) ? c.alphaPattern.get(t) : Double.valueOf(c.loraAlpha);
            if (alpha == null || alpha != c.loraAlpha) {
                problems.add("module '" + t + "' has alpha " + alpha + ", other modules " + c.loraAlpha + "; one alpha per adapter is supported");
            }
            // Shapes are checked before anything is built: a rank is only as large as the tensors in the file.
            INDArray w = Converters.baseWeight(layers.get(ls[0]), ls[1]);
            checkShape(tensors, PREFIX + t + ".lora_A.weight", new long[]{r, w.size(0)}, problems);
            checkShape(tensors, PREFIX + t + ".lora_B.weight", new long[]{w.size(1), r}, problems);
        }
        // A multi-projection layer (attention) must have all its projections listed.
        for (Map.Entry<String, String[]> e : byPeftName.entrySet()) {
            if (rankByLayer.containsKey(e.getValue()[0]) && !targets.contains(e.getKey())) {
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
                if (rankByLayer.containsKey(layer)) {
                    problems.add("modules_to_save names '" + m + "', which is also a target module; a layer is adapted or saved, not both");
                    continue;
                }
                if (save.contains(layer)) {
                    continue;
                }
                save.add(layer);
                for (Map.Entry<String, INDArray> p : layers.get(layer).paramTable().entrySet()) {
                    String key = PREFIX + m + "." + torchName(p.getKey());
                    expected.add(key);
                    checkShape(tensors, key, toTorch(p.getKey(), p.getValue()).shape(), problems);
                }
            }
        }
        for (String k : tensors.keySet()) {
            if (!expected.contains(k)) {
                problems.add("tensor '" + k + "' in " + WEIGHTS + " belongs to no target module or module to save");
            }
        }
        if (!problems.isEmpty()) {
            throw new AdapterMismatchException(source, problems);
        }
        Model adapted = NetworkAdapterFiles.adaptLayers(base, cfg, rankByLayer, save, source);
        for (NetworkModules.Entry s : NetworkModules.modules(adapted)) {
            String name = map.apply(s.name());
            s.runtime().getParam(s.module().aKey()).assign(tensors.get(PREFIX + name + ".lora_A.weight"));
            s.runtime().getParam(s.module().bKey()).assign(tensors.get(PREFIX + name + ".lora_B.weight"));
        }
        Map<String, Layer> target = NetworkModules.layers(adapted);
        for (String layer : save) {
            for (Map.Entry<String, INDArray> p : target.get(layer).paramTable().entrySet()) {
                INDArray t = tensors.get(PREFIX + map.apply(layer) + "." + torchName(p.getKey()));
                p.getValue().assign(AdapterKeys.WEIGHT.equals(p.getKey()) ? t.transpose() : t.reshape(p.getValue().shape()));
            }
        }
        return adapted;
    }

    /** Records a problem unless {@code key} is in {@code tensors} with exactly {@code shape}. */
    private static void checkShape(Map<String, INDArray> tensors, String key, long[] shape, List<String> problems) {
        INDArray t = tensors.get(key);
        if (t == null) {
            problems.add("tensor '" + key + "' is missing from " + WEIGHTS);
        } else if (!Arrays.equals(t.shape(), shape)) {
            problems.add("tensor '" + key + "' has shape " + Arrays.toString(t.shape()) + ", expected " + Arrays.toString(shape));
        } else if (!t.dataType().isFPType()) {
            problems.add("tensor '" + key + "' has dtype " + t.dataType() + ", expected a floating-point type");
        }
    }

    /**
     * The target module names: the list as given, or those of {@code modules} that fully match the regex string
     * (PEFT's {@code re.fullmatch}); a missing or empty value is recorded as a problem.
     *
     * @throws AdapterFileException if the value is neither a list of strings nor a string, or not a valid regex
     */
    static List<String> targets(JsonNode node, Collection<String> modules, String source, List<String> problems)
            throws AdapterFileException {
        if (node == null || node.isNull() || node.isArray() && node.size() == 0 || node.isTextual() && node.asText().isEmpty()) {
            problems.add("target_modules is empty: expected a list of module names or a regex string");
            return List.of();
        }
        String where = source + ": " + CONFIG + ": target_modules";
        if (node.isArray()) {
            List<String> out = new ArrayList<>();
            for (int i = 0; i < node.size(); i++) {
                if (!node.get(i).isTextual()) {
                    throw new AdapterFileException(where + "[" + i + "] must be a module name (a string), found " + abbreviate(node.get(i)));
                }
                out.add(node.get(i).asText());
            }
            return out;
        }
        if (!node.isTextual()) {
            throw new AdapterFileException(where + " must be a list of module names or a regex string, found " + abbreviate(node));
        }
        String regex = node.asText();
        Pattern p;
        try {
            p = Pattern.compile(regex);
        } catch (PatternSyntaxException e) {
            throw new AdapterFileException(where + " '" + regex + "' is not a valid regular expression (" + e.getDescription()
                    + " near index " + e.getIndex() + ")", e);
        }
        List<String> out = new ArrayList<>();
        for (String m : modules) {
            try {
                if (p.matcher(new BoundedChars(m)).matches()) {
                    out.add(m);
                }
            } catch (BoundedChars.Exhausted e) {
                throw new AdapterFileException(where + " '" + regex + "' takes too long to match module '" + m
                        + "' (catastrophic backtracking?); simplify it or list the modules");
            }
        }
        if (out.isEmpty()) {
            problems.add("target_modules regex '" + regex + "' fully matches none of this network's adaptable modules " + modules);
        }
        return out;
    }

    private static String abbreviate(JsonNode n) {
        String s = n.toString();
        return s.length() > 80 ? s.substring(0, 80) + "..." : s;
    }

    /**
     * A string whose characters can be read a bounded number of times: the regex engine reads through
     * {@code charAt}, so a pattern that backtracks catastrophically fails fast instead of hanging the import.
     */
    private static final class BoundedChars implements CharSequence {
        /** Far more than any sane pattern needs for a module name, a few milliseconds of work. */
        private static final int BUDGET = 1_000_000;

        /** The budget ran out. */
        static final class Exhausted extends RuntimeException {
            private static final long serialVersionUID = 1L;

            Exhausted() {
                super(null, null, false, false);
            }
        }

        private final String text;
        private int left = BUDGET;

        BoundedChars(String text) {
            this.text = text;
        }

        @Override
        public char charAt(int index) {
            if (--left < 0) {
                throw new Exhausted();
            }
            return text.charAt(index);
        }

        @Override
        public int length() {
            return text.length();
        }

        @Override
        public CharSequence subSequence(int start, int end) {
            return text.subSequence(start, end);
        }

        @Override
        public String toString() {
            return text;
        }
    }
}
