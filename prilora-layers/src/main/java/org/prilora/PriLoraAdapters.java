package org.prilora;

import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.autodiff.samediff.SameDiff;
import org.prilora.config.PriLoraConfig;

import java.io.IOException;
import java.nio.file.Path;
import java.util.function.Function;

/**
 * Adapter files: only what training changed (A, B, masks, input statistics, modules-to-save weights) and the
 * configuration, a small fraction of the model file.
 *
 * <p>Native format (one file, ZIP): {@value #MANIFEST_ENTRY} (format version, {@link PriLoraConfig}, one entry per
 * adapted module with its rank, shape, scale and a CRC32 of the base weight it was trained on) and
 * {@value #TENSORS_ENTRY} with tensors {@code <module>.lora_A [r,in]}, {@code <module>.lora_B [out,r]},
 * {@code <module>.lora_M}, {@code <module>.xnorm} and {@code modules_to_save.<layer>.<param>}. Module names are the
 * layer name, or {@code layer.module} for layers with several modules (e.g. {@code att.query}).
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

    private PriLoraAdapters() {
    }

    /** Saves the adapters of {@code net}; the configuration is inferred from its layers. */
    public static void save(Model net, Path file) throws IOException {
        NetworkAdapterFiles.save(net, file, null);
    }

    /** Saves the adapters of {@code net} with the configuration used to adapt it (recorded in the file). */
    public static void save(Model net, Path file, PriLoraConfig cfg) throws IOException {
        NetworkAdapterFiles.save(net, file, cfg);
    }

    /**
     * Reads an adapter file.
     *
     * @throws AdapterFileException if the file is missing, truncated, corrupted or not an adapter file
     */
    public static AdapterFile read(Path file) throws IOException {
        return AdapterContainer.read(file);
    }

    /**
     * Loads an adapter file into a copy of {@code base} (plain or already adapted); {@code base} is not modified.
     *
     * @throws AdapterFileException     if the file is missing, truncated, corrupted or not an adapter file
     * @throws AdapterMismatchException if the file does not fit {@code base} (every problem listed)
     */
    public static MultiLayerNetwork load(MultiLayerNetwork base, Path file) throws IOException {
        return (MultiLayerNetwork) NetworkAdapterFiles.load(base, file);
    }

    /**
     * Loads an adapter file into a copy of {@code base} (plain or already adapted); {@code base} is not modified.
     *
     * @throws AdapterFileException     if the file is missing, truncated, corrupted or not an adapter file
     * @throws AdapterMismatchException if the file does not fit {@code base} (every problem listed)
     */
    public static ComputationGraph load(ComputationGraph base, Path file) throws IOException {
        return (ComputationGraph) NetworkAdapterFiles.load(base, file);
    }

    /** Saves the adapters of a SameDiff graph adapted with {@code SameDiffPriLora.inject} (module = weight variable). */
    public static void save(SameDiff sd, Path file) throws IOException {
        GraphAdapterFiles.save(sd, file);
    }

    /**
     * Loads an adapter file into a copy of the (un-adapted) SameDiff graph {@code base}, which is not modified: the file
     * is checked against {@code base} first (every mismatch listed), then the copy is injected with the recorded ranks.
     */
    public static SameDiff load(SameDiff base, Path file) throws IOException {
        return GraphAdapterFiles.load(base, file);
    }

    /**
     * Writes a PEFT LoRA directory for {@code net}.
     *
     * @param nameMapping this library's module name ({@code layer} or {@code layer.module}) → the PEFT model's module
     *                    name; null for identity
     */
    public static void exportPeft(Model net, Path dir, Function<String, String> nameMapping) throws IOException {
        PeftAdapters.export(net, dir, nameMapping);
    }

    /**
     * Reads a PEFT LoRA directory into a copy of {@code base} (which is not modified). {@code target_modules} may be a
     * list of module names or, as in PEFT, a regex string that selects the modules whose (mapped) names fully match it.
     *
     * @param nameMapping as for {@link #exportPeft}; null for identity
     * @throws AdapterFileException     if a file is missing or malformed (JSON, safetensors, a {@code target_modules}
     *                                  that is neither a list of names nor a valid regex, an unusable {@code lora_alpha})
     * @throws AdapterMismatchException if the adapter does not fit {@code base} (every problem listed)
     */
    public static MultiLayerNetwork importPeft(MultiLayerNetwork base, Path dir, Function<String, String> nameMapping) throws IOException {
        return (MultiLayerNetwork) PeftAdapters.importInto(base, dir, nameMapping);
    }

    /**
     * Reads a PEFT LoRA directory into a copy of {@code base} (which is not modified); see
     * {@link #importPeft(MultiLayerNetwork, Path, Function)}.
     *
     * @throws AdapterFileException     if a file is missing or malformed
     * @throws AdapterMismatchException if the adapter does not fit {@code base} (every problem listed)
     */
    public static ComputationGraph importPeft(ComputationGraph base, Path dir, Function<String, String> nameMapping) throws IOException {
        return (ComputationGraph) PeftAdapters.importInto(base, dir, nameMapping);
    }
}
