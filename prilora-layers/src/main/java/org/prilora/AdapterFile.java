package org.prilora;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.config.PriLoraConfig;
import org.prilora.layers.AdapterKeys;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * What an adapter file holds, read and validated as a file (not yet against a network): the manifest, the
 * configuration it records and the tensors by name ({@code <module>.lora_A}, {@code .lora_B}, {@code .lora_M},
 * {@code .xnorm}, and {@code modules_to_save.<layer>.<param>}).
 */
public record AdapterFile(Manifest manifest, PriLoraConfig config, Map<String, INDArray> tensors) {

    /** The manifest stored next to the tensors ({@value PriLoraAdapters#MANIFEST_ENTRY}). */
    public static final class Manifest {
        public int formatVersion = PriLoraAdapters.FORMAT_VERSION;
        public String config;
        public List<ModuleEntry> modules = new ArrayList<>();
        public List<String> modulesToSave = new ArrayList<>();
    }

    /** One adapted module in the manifest. */
    public static final class ModuleEntry {
        public String module;
        public String layer;
        /** The module inside its layer ({@code ""} for a dense layer); named "site" in format version 1. */
        public String site;
        public String layerType;
        public int rank;
        public long nIn;
        public long nOut;
        public double scale;
        public boolean hasMask;
        public long baseWeightCrc32;

        /** The names of this module's tensors in the file: A, B, statistics and (with a mask) the mask. */
        List<String> tensorNames() {
            List<String> out = new ArrayList<>(List.of(module + AdapterKeys.FILE_A, module + AdapterKeys.FILE_B,
                    module + AdapterKeys.FILE_STATS));
            if (hasMask) {
                out.add(module + AdapterKeys.FILE_MASK);
            }
            return out;
        }
    }
}
