package org.prilora;

import org.prilora.samediff.GraphModule;
import org.prilora.samediff.InjectionReport;
import org.prilora.samediff.SameDiffPriLora;
import org.prilora.samediff.WeightSelector;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.SelfAttentionLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.shade.jackson.databind.DeserializationFeature;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.nd4j.shade.jackson.databind.SerializationFeature;
import org.prilora.config.PriLoraConfig;
import org.prilora.io.AtomicFiles;
import org.prilora.io.SafeTensors;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.PriLoraLayer;
import org.prilora.layers.PriLoraSelfAttention;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.CRC32;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * Adapter files: only what training changed (A, B, masks, input statistics, modules-to-save weights) and
 * the configuration, a small fraction of the model file.
 *
 * <p>Native format (one file, ZIP): {@code prilora_adapter.json} (format version, {@link PriLoraConfig}, one
 * entry per adapted module with its rank, shape, scale and a CRC32 of the base weight it was trained on) and
 * {@code adapter_model.safetensors} with tensors {@code <module>.lora_A [r,in]}, {@code <module>.lora_B [out,r]},
 * {@code <module>.lora_M}, {@code <module>.xnorm} and {@code modules_to_save.<layer>.<param>}. Module names are
 * the layer name, or {@code layer.site} for layers with several projections (e.g. {@code att.query}).
 *
 * <p>Loading checks the whole file against the base network first and reports every mismatch at once
 * ({@link AdapterMismatchException}); the base network is never modified. Writes are atomic.
 *
 * <p>PEFT interoperability: {@link #exportPeft} / {@link #importPeft} write and read a PEFT LoRA directory
 * ({@code adapter_config.json} + {@code adapter_model.safetensors}, keys
 * {@code base_model.model.<module>.lora_A.weight}); the rank schedule becomes {@code rank_pattern}.
 */
public final class PriLoraAdapters {
    public static final int FORMAT_VERSION = 1;
    public static final String MANIFEST_ENTRY = "prilora_adapter.json";
    public static final String TENSORS_ENTRY = "adapter_model.safetensors";
    static final String SAVE_PREFIX = "modules_to_save.";

    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private PriLoraAdapters() {
    }

    /** The manifest stored next to the tensors. */
    public static final class Manifest {
        public int formatVersion = FORMAT_VERSION;
        public String config;
        public List<ModuleEntry> modules = new ArrayList<>();
        public List<String> modulesToSave = new ArrayList<>();
    }

    /** One adapted module in the manifest. */
    public static final class ModuleEntry {
        public String module;
        public String layer;
        public String site;
        public String layerType;
        public int rank;
        public long nIn;
        public long nOut;
        public double scale;
        public boolean hasMask;
        public long baseWeightCrc32;
    }

    // ------------------------------------------------------------------ save

    /** Saves the adapters of {@code net}; the configuration is inferred from its layers. */
    public static void save(Model net, Path file) throws IOException {
        save(net, file, null);
    }

    /** Saves the adapters of {@code net} with the configuration used to adapt it (recorded in the file). */
    public static void save(Model net, Path file, PriLoraConfig cfgOrNull) throws IOException {
        Objects.requireNonNull(file, "file");
        List<NetworkModules.Site> sites = NetworkModules.sites(net);
        if (sites.isEmpty()) {
            throw new IllegalArgumentException("net: expected a network with PRILoRA layers, found none");
        }
        Manifest m = new Manifest();
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        for (NetworkModules.Site s : sites) {
            ModuleEntry e = new ModuleEntry();
            e.module = s.module();
            e.layer = s.layer();
            e.site = s.site().name();
            e.layerType = s.conf().getClass().getSimpleName();
            e.rank = s.site().rank();
            e.nIn = s.site().nIn();
            e.nOut = s.site().nOut();
            e.scale = s.conf().loraScale();
            e.hasMask = s.site().maskKey() != null;
            e.baseWeightCrc32 = NetworkModules.crc(s.runtime().getParam(s.site().weightKey()));
            m.modules.add(e);
            tensors.put(e.module + ".lora_A", s.runtime().getParam(s.site().aKey()));
            tensors.put(e.module + ".lora_B", s.runtime().getParam(s.site().bKey()));
            if (e.hasMask) {
                tensors.put(e.module + ".lora_M", s.runtime().getParam(s.site().maskKey()));
            }
            tensors.put(e.module + ".xnorm", s.runtime().getParam(s.site().statsKey()));
        }
        Map<String, Layer> layers = NetworkModules.layers(net);
        m.modulesToSave = NetworkModules.modulesToSave(net);
        for (String layer : m.modulesToSave) {
            for (Map.Entry<String, INDArray> p : layers.get(layer).paramTable().entrySet()) {
                tensors.put(SAVE_PREFIX + layer + "." + p.getKey(), p.getValue());
            }
        }
        PriLoraConfig cfg = cfgOrNull != null ? cfgOrNull : inferConfig(sites, m.modulesToSave);
        m.config = cfg.toJson();
        writeZip(file, m, tensors);
    }

    private static PriLoraConfig inferConfig(List<NetworkModules.Site> sites, List<String> modulesToSave) {
        PriLoraLayer first = sites.get(0).conf();
        return PriLoraConfig.builder().rankSchedule(RankSchedule.uniform(first.getRank())).alpha(first.getAlpha())
                .scalingMode(first.getScalingMode()).modulesToSave(modulesToSave)
                .pruning(PruningSchedule.builder().mode(first.getPruningMode()).build()).init(first.getAdapterInit()).build();
    }

    // ------------------------------------------------------------------ load

    /** What an adapter file holds, read and validated as a file (not yet against a network). */
    public record AdapterFile(Manifest manifest, PriLoraConfig config, Map<String, INDArray> tensors) {
    }

    /** Reads an adapter file; truncated, corrupted or foreign files give an {@link AdapterFileException}. */
    public static AdapterFile read(Path file) throws IOException {
        byte[] manifest = null;
        byte[] tensors = null;
        // ZipFile reads the central directory at the end, so a file cut anywhere is noticed; entry CRCs are
        // checked by hand because ZipFile does not verify them.
        try (ZipFile zip = new ZipFile(file.toFile())) {
            for (String name : List.of(MANIFEST_ENTRY, TENSORS_ENTRY)) {
                ZipEntry e = zip.getEntry(name);
                if (e == null) {
                    continue;
                }
                byte[] data;
                try (InputStream in = zip.getInputStream(e)) {
                    data = readAll(in);
                }
                CRC32 crc = new CRC32();
                crc.update(data);
                if (e.getCrc() != -1 && crc.getValue() != e.getCrc()) {
                    throw new AdapterFileException("adapter file " + file + " is corrupted: entry " + name + " fails its CRC check");
                }
                if (MANIFEST_ENTRY.equals(name)) {
                    manifest = data;
                } else {
                    tensors = data;
                }
            }
        } catch (NoSuchFileException | java.io.FileNotFoundException e) {
            throw new AdapterFileException("adapter file " + file + " does not exist", e);
        } catch (ZipException | java.io.EOFException e) {
            throw new AdapterFileException("adapter file " + file + " is truncated or corrupted, or not a PRILoRA adapter file ("
                    + e.getMessage() + ")", e);
        }
        if (manifest == null || tensors == null) {
            throw new AdapterFileException("adapter file " + file + " is not a PRILoRA adapter file or is truncated: expected ZIP entries "
                    + MANIFEST_ENTRY + " and " + TENSORS_ENTRY + ", found " + (manifest == null ? "no manifest" : "the manifest")
                    + " and " + (tensors == null ? "no tensors" : "the tensors"));
        }
        Manifest m;
        PriLoraConfig cfg;
        try {
            m = JSON.readValue(manifest, Manifest.class);
            if (m.formatVersion != FORMAT_VERSION) {
                throw new AdapterFileException("adapter file " + file + ": format version " + m.formatVersion + ", this library reads " + FORMAT_VERSION);
            }
            cfg = PriLoraConfig.fromJson(m.config);
        } catch (AdapterFileException e) {
            throw e;
        } catch (IOException | IllegalArgumentException e) {
            throw new AdapterFileException("adapter file " + file + ": the manifest " + MANIFEST_ENTRY + " is corrupted (" + e.getMessage() + ")", e);
        }
        Map<String, INDArray> t;
        try {
            t = SafeTensors.fromBytes(tensors, file + "!" + TENSORS_ENTRY);
        } catch (IOException e) {
            throw new AdapterFileException("adapter file " + file + ": " + e.getMessage(), e);
        }
        return new AdapterFile(m, cfg, t);
    }

    private static byte[] readAll(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        in.transferTo(b);
        return b.toByteArray();
    }

    /** Loads an adapter file into a copy of {@code base}; {@code base} is not modified. */
    public static MultiLayerNetwork load(MultiLayerNetwork base, Path file) throws IOException {
        return (MultiLayerNetwork) loadInto(base, file);
    }

    /** Loads an adapter file into a copy of {@code base}; {@code base} is not modified. */
    public static ComputationGraph load(ComputationGraph base, Path file) throws IOException {
        return (ComputationGraph) loadInto(base, file);
    }

    private static Model loadInto(Model base, Path file) throws IOException {
        AdapterFile f = read(file);
        Map<String, Layer> layers = NetworkModules.layers(base);
        List<String> problems = new ArrayList<>();
        Set<String> expectedTensors = new LinkedHashSet<>();
        boolean allAdapted = true;
        for (ModuleEntry e : f.manifest().modules) {
            Layer l = layers.get(e.layer);
            expectedTensors.add(e.module + ".lora_A");
            expectedTensors.add(e.module + ".lora_B");
            expectedTensors.add(e.module + ".xnorm");
            if (e.hasMask) {
                expectedTensors.add(e.module + ".lora_M");
            }
            if (l == null) {
                problems.add("module '" + e.module + "': the network has no layer '" + e.layer + "'");
                continue;
            }
            allAdapted &= l.conf().getLayer() instanceof PriLoraLayer;
            INDArray w;
            try {
                w = baseWeight(l, e.site);
            } catch (IllegalArgumentException ex) {
                problems.add("module '" + e.module + "': " + ex.getMessage());
                continue;
            }
            if (w.rank() != 2 || w.size(0) != e.nIn || w.size(1) != e.nOut) {
                problems.add("module '" + e.module + "': base weight has shape " + Arrays.toString(w.shape()) + ", the adapter expects ["
                        + e.nIn + ", " + e.nOut + "]");
                continue;
            }
            long crc = NetworkModules.crc(w);
            if (crc != e.baseWeightCrc32) {
                problems.add("module '" + e.module + "': base weights differ from those the adapter was trained on (CRC32 "
                        + Long.toHexString(crc) + ", expected " + Long.toHexString(e.baseWeightCrc32) + "): another base model?");
            }
            if (l.conf().getLayer() instanceof PriLoraLayer && ((PriLoraLayer) l.conf().getLayer()).getRank() != e.rank) {
                problems.add("module '" + e.module + "': the network's PRILoRA layer has rank " + ((PriLoraLayer) l.conf().getLayer()).getRank()
                        + ", the adapter has rank " + e.rank);
            }
        }
        for (String layer : f.manifest().modulesToSave) {
            Layer l = layers.get(layer);
            if (l == null) {
                problems.add("modules_to_save: the network has no layer '" + layer + "'");
                continue;
            }
            for (Map.Entry<String, INDArray> p : l.paramTable().entrySet()) {
                String key = SAVE_PREFIX + layer + "." + p.getKey();
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
        Model adapted = allAdapted ? copy(base) : adaptLike(base, f);
        Map<String, Layer> target = NetworkModules.layers(adapted);
        List<String> shapeProblems = new ArrayList<>();
        for (NetworkModules.Site s : NetworkModules.sites(adapted)) {
            assign(s.runtime().getParam(s.site().aKey()), f.tensors().get(s.module() + ".lora_A"), s.module() + ".lora_A", shapeProblems);
            assign(s.runtime().getParam(s.site().bKey()), f.tensors().get(s.module() + ".lora_B"), s.module() + ".lora_B", shapeProblems);
            assign(s.runtime().getParam(s.site().statsKey()), f.tensors().get(s.module() + ".xnorm"), s.module() + ".xnorm", shapeProblems);
            if (s.site().maskKey() != null) {
                INDArray mask = f.tensors().get(s.module() + ".lora_M");
                if (mask == null) {
                    shapeProblems.add("module '" + s.module() + "' needs a mask (PERSISTENT_MASK) but the file has none");
                } else {
                    assign(s.runtime().getParam(s.site().maskKey()), mask, s.module() + ".lora_M", shapeProblems);
                }
            }
        }
        for (String layer : f.manifest().modulesToSave) {
            for (Map.Entry<String, INDArray> p : target.get(layer).paramTable().entrySet()) {
                p.getValue().assign(f.tensors().get(SAVE_PREFIX + layer + "." + p.getKey()));
            }
        }
        if (!shapeProblems.isEmpty()) {
            throw new AdapterMismatchException("adapter file " + file, shapeProblems);
        }
        return adapted;
    }

    private static void assign(INDArray param, INDArray value, String name, List<String> problems) {
        if (value == null) {
            problems.add("tensor '" + name + "' is missing");
        } else if (!Arrays.equals(param.shape(), value.shape())) {
            problems.add("tensor '" + name + "' has shape " + Arrays.toString(value.shape()) + ", expected " + Arrays.toString(param.shape()));
        } else {
            param.assign(value);
        }
    }

    /** The base weight of a site in the {@code [nIn, nOut]} orientation, from a plain or PRILoRA layer. */
    static INDArray baseWeight(Layer l, String site) {
        org.deeplearning4j.nn.conf.layers.Layer c = l.conf().getLayer();
        if (c instanceof PriLoraLayer) {
            for (AdapterModule s : ((PriLoraLayer) c).adapterModules()) {
                if (s.name().equals(site)) {
                    return l.getParam(s.weightKey());
                }
            }
            throw new IllegalArgumentException("layer '" + c.getLayerName() + "' (" + c.getClass().getSimpleName() + ") has no projection '" + site + "'");
        }
        if (c instanceof DenseLayer && site.isEmpty()) {
            return l.getParam("W");
        }
        if (c instanceof SelfAttentionLayer) {
            switch (site) {
                case PriLoraSelfAttention.QUERY:
                    return PriLoraSelfAttention.fromDl4jProjection(l.getParam("Wq"));
                case PriLoraSelfAttention.KEY:
                    return PriLoraSelfAttention.fromDl4jProjection(l.getParam("Wk"));
                case PriLoraSelfAttention.VALUE:
                    return PriLoraSelfAttention.fromDl4jProjection(l.getParam("Wv"));
                case PriLoraSelfAttention.OUTPUT:
                    return l.getParam("Wo");
                default:
                    break;
            }
        }
        throw new IllegalArgumentException("layer '" + c.getLayerName() + "' is a " + c.getClass().getSimpleName()
                + ", which has no adaptable projection '" + site + "'");
    }

    /** Adapts {@code base} exactly as recorded: the file's modules with their ranks, and its modules to save. */
    private static Model adaptLike(Model base, AdapterFile f) {
        Map<String, Integer> rankByLayer = new LinkedHashMap<>();
        for (ModuleEntry e : f.manifest().modules) {
            rankByLayer.put(e.layer, e.rank);
        }
        List<Integer> ranks = new ArrayList<>();
        for (String layer : NetworkModules.layers(base).keySet()) {
            if (rankByLayer.containsKey(layer)) {
                ranks.add(rankByLayer.get(layer));
            }
        }
        String names = String.join("|", rankByLayer.keySet().stream().map(java.util.regex.Pattern::quote).toList());
        PriLoraConfig cfg = f.config().toBuilder().targetTypes(Set.of()).targetModules(names)
                .rankSchedule(RankSchedule.explicit(ranks.stream().mapToInt(Integer::intValue).toArray()))
                .modulesToSave(f.manifest().modulesToSave).build();
        return base instanceof MultiLayerNetwork ? PriLora.adapt((MultiLayerNetwork) base, cfg) : PriLora.adapt((ComputationGraph) base, cfg);
    }

    // ------------------------------------------------------------------ SameDiff graphs

    /**
     * Saves the adapters of a SameDiff graph adapted with {@link org.prilora.samediff.SameDiffPriLora#inject}, in the
     * same format as for DL4J networks (module name = the weight variable's name).
     */
    public static void save(org.nd4j.autodiff.samediff.SameDiff sd, Path file) throws IOException {
        org.prilora.samediff.InjectionReport report = org.prilora.samediff.SameDiffPriLora.report(sd);
        Manifest m = new Manifest();
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        for (org.prilora.samediff.GraphModule s : report.sites()) {
            ModuleEntry e = new ModuleEntry();
            e.module = s.moduleName();
            e.layer = s.weightName();
            e.site = "";
            e.layerType = "SameDiff:" + s.opKind();
            e.rank = s.rank();
            e.nIn = s.nIn();
            e.nOut = s.nOut();
            e.scale = s.scale();
            e.hasMask = s.maskName() != null;
            e.baseWeightCrc32 = NetworkModules.crc(s.w0(sd));
            m.modules.add(e);
            tensors.put(e.module + ".lora_A", s.a(sd));
            tensors.put(e.module + ".lora_B", s.b(sd));
            if (e.hasMask) {
                tensors.put(e.module + ".lora_M", s.mask(sd));
            }
            tensors.put(e.module + ".xnorm", s.inputNormState(sd));
        }
        for (String v : report.config().modulesToSave()) {
            m.modulesToSave.add(v);
            tensors.put(SAVE_PREFIX + v, sd.getArrForVarName(v));
        }
        m.config = report.config().toJson();
        writeZip(file, m, tensors);
    }

    /**
     * Loads an adapter file into a copy of the (un-adapted) SameDiff graph {@code base}, which is not modified:
     * the file is checked against {@code base} first (every mismatch listed), then the copy is injected with the
     * recorded ranks and the tensors are assigned.
     */
    public static org.nd4j.autodiff.samediff.SameDiff load(org.nd4j.autodiff.samediff.SameDiff base, Path file) throws IOException {
        AdapterFile f = read(file);
        List<String> problems = new ArrayList<>();
        for (ModuleEntry e : f.manifest().modules) {
            if (!base.hasVariable(e.layer) || base.getArrForVarName(e.layer) == null) {
                problems.add("module '" + e.module + "': the graph has no weight variable '" + e.layer + "'");
                continue;
            }
            INDArray w = base.getArrForVarName(e.layer);
            boolean fits = w.rank() == 2 && (w.size(0) == e.nIn && w.size(1) == e.nOut || w.size(0) == e.nOut && w.size(1) == e.nIn);
            if (!fits) {
                problems.add("module '" + e.module + "': base weight has shape " + Arrays.toString(w.shape()) + ", the adapter expects ["
                        + e.nIn + ", " + e.nOut + "]");
            }
        }
        for (String v : f.manifest().modulesToSave) {
            INDArray t = f.tensors().get(SAVE_PREFIX + v);
            if (!base.hasVariable(v)) {
                problems.add("modules_to_save: the graph has no variable '" + v + "'");
            } else if (t == null || !Arrays.equals(t.shape(), base.getArrForVarName(v).shape())) {
                problems.add("modules_to_save: tensor for '" + v + "' is missing or has another shape");
            }
        }
        if (!problems.isEmpty()) {
            throw new AdapterMismatchException("adapter file " + file, problems);
        }
        org.nd4j.autodiff.samediff.SameDiff sd = base.dup();
        List<String> modules = f.manifest().modules.stream().map(e -> e.layer).toList();
        int[] ranks = f.manifest().modules.stream().mapToInt(e -> e.rank).toArray();
        PriLoraConfig cfg = f.config().toBuilder().rankSchedule(RankSchedule.explicit(ranks)).build();
        org.prilora.samediff.InjectionReport report = org.prilora.samediff.SameDiffPriLora.inject(sd, cfg,
                org.prilora.samediff.WeightSelector.names(modules.toArray(new String[0])).blockBy(modules::indexOf));
        for (org.prilora.samediff.GraphModule s : report.sites()) {
            ModuleEntry e = f.manifest().modules.get(modules.indexOf(s.weightName()));
            long crc = NetworkModules.crc(s.w0(sd));
            if (crc != e.baseWeightCrc32) {
                problems.add("module '" + e.module + "': base weights differ from those the adapter was trained on (CRC32 "
                        + Long.toHexString(crc) + ", expected " + Long.toHexString(e.baseWeightCrc32) + "): another base model?");
                continue;
            }
            assign(s.a(sd), f.tensors().get(e.module + ".lora_A"), e.module + ".lora_A", problems);
            assign(s.b(sd), f.tensors().get(e.module + ".lora_B"), e.module + ".lora_B", problems);
            assign(s.inputNormState(sd), f.tensors().get(e.module + ".xnorm"), e.module + ".xnorm", problems);
            if (s.maskName() != null) {
                assign(s.mask(sd), f.tensors().get(e.module + ".lora_M"), e.module + ".lora_M", problems);
            }
        }
        for (String v : f.manifest().modulesToSave) {
            sd.getArrForVarName(v).assign(f.tensors().get(SAVE_PREFIX + v));
        }
        if (!problems.isEmpty()) {
            throw new AdapterMismatchException("adapter file " + file, problems);
        }
        return sd;
    }

    private static void writeZip(Path file, Manifest m, Map<String, INDArray> tensors) throws IOException {
        byte[] manifest = JSON.writeValueAsBytes(m);
        byte[] st = SafeTensors.toBytes(tensors, Map.of("format", "prilora", "formatVersion", String.valueOf(FORMAT_VERSION)));
        Files.createDirectories(file.toAbsolutePath().getParent());
        AtomicFiles.write(file, out -> {
            try (ZipOutputStream zip = new ZipOutputStream(out)) {
                zip.putNextEntry(new ZipEntry(MANIFEST_ENTRY));
                zip.write(manifest);
                zip.closeEntry();
                zip.putNextEntry(new ZipEntry(TENSORS_ENTRY));
                zip.write(st);
                zip.closeEntry();
            }
        });
    }

    // ------------------------------------------------------------------ PEFT

    /**
     * Writes a PEFT LoRA directory for {@code net}.
     *
     * @param nameMapping this library's module name ({@code layer} or {@code layer.site}) → the PEFT model's module
     *                    name; null for identity
     */
    public static void exportPeft(Model net, Path dir, java.util.function.Function<String, String> nameMapping) throws IOException {
        PeftAdapters.export(net, dir, nameMapping);
    }

    /** Reads a PEFT LoRA directory into a copy of {@code base} (which is not modified). */
    public static MultiLayerNetwork importPeft(MultiLayerNetwork base, Path dir, java.util.function.Function<String, String> nameMapping) throws IOException {
        return (MultiLayerNetwork) PeftAdapters.importInto(base, dir, nameMapping);
    }

    /** Reads a PEFT LoRA directory into a copy of {@code base} (which is not modified). */
    public static ComputationGraph importPeft(ComputationGraph base, Path dir, java.util.function.Function<String, String> nameMapping) throws IOException {
        return (ComputationGraph) PeftAdapters.importInto(base, dir, nameMapping);
    }

    private static Model copy(Model net) {
        return net instanceof MultiLayerNetwork ? ((MultiLayerNetwork) net).clone() : ((ComputationGraph) net).clone();
    }
}
