package org.prilora;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.shade.jackson.databind.DeserializationFeature;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.nd4j.shade.jackson.databind.SerializationFeature;
import org.prilora.config.PriLoraConfig;
import org.prilora.io.AtomicFiles;
import org.prilora.io.SafeTensors;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * The adapter file as a container: a ZIP with the JSON manifest and one safetensors entry, written atomically, read
 * with every entry's CRC checked; truncated, corrupted or foreign files give an {@link AdapterFileException}.
 */
final class AdapterContainer {
    static final String SAVE_PREFIX = "modules_to_save.";
    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private AdapterContainer() {
    }

    static void write(Path file, AdapterFile.Manifest m, Map<String, INDArray> tensors) throws IOException {
        byte[] manifest = JSON.writeValueAsBytes(m);
        byte[] st = SafeTensors.toBytes(tensors, Map.of("format", "prilora", "formatVersion",
                String.valueOf(PriLoraAdapters.FORMAT_VERSION)));
        Files.createDirectories(file.toAbsolutePath().getParent());
        AtomicFiles.write(file, out -> {
            try (ZipOutputStream zip = new ZipOutputStream(out)) {
                zip.putNextEntry(new ZipEntry(PriLoraAdapters.MANIFEST_ENTRY));
                zip.write(manifest);
                zip.closeEntry();
                zip.putNextEntry(new ZipEntry(PriLoraAdapters.TENSORS_ENTRY));
                zip.write(st);
                zip.closeEntry();
            }
        });
    }

    static AdapterFile read(Path file) throws IOException {
        byte[][] entries = readEntries(file);
        byte[] manifest = entries[0];
        byte[] tensors = entries[1];
        if (manifest == null || tensors == null) {
            throw new AdapterFileException("adapter file " + file + " is not a PRILoRA adapter file or is truncated: expected ZIP entries "
                    + PriLoraAdapters.MANIFEST_ENTRY + " and " + PriLoraAdapters.TENSORS_ENTRY + ", found "
                    + (manifest == null ? "no manifest" : "the manifest") + " and " + (tensors == null ? "no tensors" : "the tensors"));
        }
        AdapterFile.Manifest m;
        PriLoraConfig cfg;
        try {
            m = JSON.readValue(manifest, AdapterFile.Manifest.class);
            if (m != null && m.formatVersion != PriLoraAdapters.FORMAT_VERSION) {
                throw new AdapterFileException("adapter file " + file + ": format version " + m.formatVersion + ", this library reads "
                        + PriLoraAdapters.FORMAT_VERSION);
            }
            checkManifest(m, file);
            cfg = PriLoraConfig.fromJson(m.config);
        } catch (AdapterFileException e) {
            throw e;
        } catch (IOException | IllegalArgumentException e) {
            throw new AdapterFileException("adapter file " + file + ": the manifest " + PriLoraAdapters.MANIFEST_ENTRY
                    + " is corrupted (" + e.getMessage() + ")", e);
        }
        try {
            return new AdapterFile(m, cfg, SafeTensors.fromBytes(tensors, file + "!" + PriLoraAdapters.TENSORS_ENTRY));
        } catch (IOException e) {
            throw new AdapterFileException("adapter file " + file + ": " + e.getMessage(), e);
        }
    }

    /** The structure loading relies on: both lists present, every module entry complete with a usable rank. */
    private static void checkManifest(AdapterFile.Manifest m, Path file) throws AdapterFileException {
        String where = "adapter file " + file + ": the manifest " + PriLoraAdapters.MANIFEST_ENTRY;
        if (m == null) {
            throw new AdapterFileException(where + " is null; expected a JSON object");
        }
        if (m.modules == null || m.modulesToSave == null) {
            throw new AdapterFileException(where + " is corrupted: \"" + (m.modules == null ? "modules" : "modulesToSave")
                    + "\" is null, expected a list");
        }
        for (int i = 0; i < m.modules.size(); i++) {
            AdapterFile.ModuleEntry e = m.modules.get(i);
            String missing = e == null ? "the entry" : e.module == null ? "\"module\"" : e.layer == null ? "\"layer\""
                    : e.site == null ? "\"site\"" : null;
            if (missing != null) {
                throw new AdapterFileException(where + " is corrupted: modules[" + i + "] lacks " + missing);
            }
            if (e.rank < 1) {
                throw new AdapterFileException(where + " is corrupted: module '" + e.module + "' has rank " + e.rank + ", expected >= 1");
            }
        }
        if (m.modulesToSave.contains(null)) {
            throw new AdapterFileException(where + " is corrupted: \"modulesToSave\" " + m.modulesToSave + " holds null");
        }
    }

    /** The manifest's and the tensors' bytes (null where missing). */
    private static byte[][] readEntries(Path file) throws IOException {
        byte[][] out = new byte[2][];
        List<String> names = List.of(PriLoraAdapters.MANIFEST_ENTRY, PriLoraAdapters.TENSORS_ENTRY);
        // ZipFile reads the central directory at the end, so a file cut anywhere is noticed; entry CRCs are
        // checked by hand because ZipFile does not verify them.
        try (ZipFile zip = new ZipFile(file.toFile())) {
            for (int i = 0; i < names.size(); i++) {
                ZipEntry e = zip.getEntry(names.get(i));
                if (e == null) {
                    continue;
                }
                byte[] data;
                try (InputStream in = zip.getInputStream(e)) {
                    ByteArrayOutputStream b = new ByteArrayOutputStream();
                    in.transferTo(b);
                    data = b.toByteArray();
                }
                CRC32 crc = new CRC32();
                crc.update(data);
                if (e.getCrc() != -1 && crc.getValue() != e.getCrc()) {
                    throw new AdapterFileException("adapter file " + file + " is corrupted: entry " + names.get(i) + " fails its CRC check");
                }
                out[i] = data;
            }
        } catch (NoSuchFileException | java.io.FileNotFoundException e) {
            throw new AdapterFileException("adapter file " + file + " does not exist", e);
        } catch (ZipException | java.io.EOFException e) {
            throw new AdapterFileException("adapter file " + file + " is truncated or corrupted, or not a PRILoRA adapter file ("
                    + e.getMessage() + ")", e);
        }
        return out;
    }

    /** Assigns {@code value} to {@code param} if present and of the same shape; otherwise records the problem. */
    static void assign(INDArray param, INDArray value, String name, List<String> problems) {
        if (value == null) {
            problems.add("tensor '" + name + "' is missing");
        } else if (!Arrays.equals(param.shape(), value.shape())) {
            problems.add("tensor '" + name + "' has shape " + Arrays.toString(value.shape()) + ", expected " + Arrays.toString(param.shape()));
        } else {
            param.assign(value);
        }
    }

    /** The message for a base weight whose CRC differs from the one recorded. */
    static String crcMismatch(String module, long crc, long expected) {
        return "module '" + module + "': base weights differ from those the adapter was trained on (CRC32 "
                + Long.toHexString(crc) + ", expected " + Long.toHexString(expected) + "): another base model?";
    }
}
