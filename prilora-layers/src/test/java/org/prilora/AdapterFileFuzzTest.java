package org.prilora;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.config.PruningMode;
import org.prilora.layers.AdapterKeys;
import org.prilora.testing.FuzzContract;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Coverage-guided fuzzing of the adapter-file reader and loader ({@link PriLoraAdapters#read(Path)},
 * {@link PriLoraAdapters#load(MultiLayerNetwork, Path)}) with a small real network as the base. Any input must give
 * an adapter (which then runs a forward pass) or an {@link AdapterFileException} / {@link AdapterMismatchException}
 * with a message, within the timeout, and the base network must come out unchanged.
 *
 * <p>{@link #adapterFile} fuzzes the file's bytes as they are (ZIP structure, compression, CRCs);
 * {@link #adapterEntries} fuzzes the two entries, the manifest JSON and the safetensors tensors, and packs them into
 * a valid ZIP itself, so that mutations reach the checks behind the container ({@link FuzzNets#split} framing).
 * Without {@code JAZZER_FUZZ} both replay the committed inputs under
 * {@code src/test/resources/org/prilora/AdapterFileFuzzTestInputs/}.
 */
class AdapterFileFuzzTest {

    static final int MAX_INPUT_BYTES = 1 << 16;

    @TempDir
    static Path dir;
    static MultiLayerNetwork base;
    static FuzzNets.Snapshot baseBefore;

    @BeforeAll
    static void buildBase() {
        base = FuzzNets.base();
        baseBefore = FuzzNets.Snapshot.of(base);
    }

    // tokens and names the reader looks for, which byte mutations alone would hardly hit
    @DictionaryEntries({"\"formatVersion\"", "\"config\"", "\"modules\"", "\"modulesToSave\"", "\"module\"",
            "\"layer\"", "\"site\"", "\"layerType\"", "\"rank\"", "\"nIn\"", "\"nOut\"", "\"scale\"", "\"dtype\"",
            "\"shape\"", "\"data_offsets\"", "\"__metadata__\""})
    @FuzzTest(maxDuration = "5m")
    // per input: libFuzzer reports a hang as a timeout finding; in replay it fails even if the reader ignores interrupts
    @Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void adapterFile(byte[] data) throws Throwable {
        if (data.length <= MAX_INPUT_BYTES) {
            check(data);
        }
    }

    // tokens and names the reader looks for, which byte mutations alone would hardly hit
    @DictionaryEntries({"null", "true", "false", "-1", "0", "1e309", "-0.0", "NaN", "2147483648",
            "9223372036854775808", "[]", "{}", "\"\"", "[null]", "{\"\":null}", "\\u0000", "\\ud800",
            "\"formatVersion\"", "\"config\"", "\"modules\"", "\"modulesToSave\"", "\"module\"", "\"layer\"",
            "\"site\"", "\"layerType\"", "\"rank\"", "\"nIn\"", "\"nOut\"", "\"scale\"", "\"hasMask\"",
            "\"baseWeightCrc32\"", "\"rankSchedule\"", "\"loraAlpha\"", "\"targetTypes\"", "\"targetModules\"",
            "\"pruningMode\"", "\"PERSISTENT_MASK\"", "\"REGROW\"", "\"fc1\"", "\"fc2\"", "\"head\"", ".lora_A",
            ".lora_B", ".lora_M", ".xnorm", "modules_to_save.", "\"dtype\"", "\"shape\"", "\"data_offsets\"",
            "\"__metadata__\"", "\"F32\"", "\"F64\"", "\"F16\"", "\"BF16\"", "\"I64\"", "\"I8\"", "\"U8\"",
            "\"BOOL\"", "\"F8_E4M3\"", "\"C64\"", "[0]", "[]", "[0,0]"})
    @FuzzTest(maxDuration = "5m")
    // per input: libFuzzer reports a hang as a timeout finding; in replay it fails even if the reader ignores interrupts
    @Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void adapterEntries(byte[] data) throws Throwable {
        if (data.length <= MAX_INPUT_BYTES) {
            byte[][] entries = FuzzNets.split(data);
            check(zip(entries[0], entries[1]));
        }
    }

    /** The committed seeds are valid files, so that the fuzzer starts from inputs that reach the loader's end. */
    @Test
    void seedsLoad() throws Exception {
        for (String seed : new String[]{"seed-regrow", "seed-mask"}) {
            Path file = dir.resolve(seed);
            Files.copy(FuzzSeeds.input(getClass(), "adapterFile", seed + ".prilora"), file, StandardCopyOption.REPLACE_EXISTING);
            assertThat(PriLoraAdapters.load(base, file).output(FuzzNets.input()).isEmpty()).isFalse();
            byte[][] entries = FuzzNets.split(Files.readAllBytes(FuzzSeeds.input(getClass(), "adapterEntries", seed)));
            Files.write(file, zip(entries[0], entries[1]));
            assertThat(PriLoraAdapters.load(base, file).output(FuzzNets.input()).isEmpty()).isFalse();
        }
    }

    @Test
    @EnabledIfSystemProperty(named = FuzzSeeds.WRITE_PROPERTY, matches = "true")
    void writeSeeds() throws Exception {
        for (PruningMode mode : PruningMode.values()) {
            String name = mode == PruningMode.REGROW ? "seed-regrow" : "seed-mask";
            Path file = dir.resolve(name + ".prilora");
            PriLoraAdapters.save(FuzzNets.adapted(mode), file, FuzzNets.config(mode));
            FuzzSeeds.write(getClass(), "adapterFile", name + ".prilora", Files.readAllBytes(file));
            try (ZipFile zip = new ZipFile(file.toFile())) {
                byte[] manifest = zip.getInputStream(zip.getEntry(PriLoraAdapters.MANIFEST_ENTRY)).readAllBytes();
                byte[] tensors = zip.getInputStream(zip.getEntry(PriLoraAdapters.TENSORS_ENTRY)).readAllBytes();
                FuzzSeeds.write(getClass(), "adapterEntries", name, FuzzNets.join(manifest, tensors));
            }
        }
    }

    private static void check(byte[] bytes) throws Throwable {
        Path file = dir.resolve("fuzz.prilora");
        Files.write(file, bytes);
        FuzzContract.Outcome<AdapterFile> read = FuzzContract.run(() -> PriLoraAdapters.read(file), AdapterFileException.class);
        FuzzContract.Outcome<MultiLayerNetwork> loaded = FuzzContract.run(() -> PriLoraAdapters.load(base, file),
                AdapterFileException.class, AdapterMismatchException.class);
        baseBefore.assertUnchanged(base);
        if (read.rejected()) {
            assertThat(loaded.rejection()).as("load of a file read rejects").isInstanceOf(AdapterFileException.class)
                    .hasMessage(read.rejection().getMessage());
            return;
        }
        if (loaded.rejected()) {
            return;
        }
        MultiLayerNetwork net = loaded.result();
        Map<String, INDArray> tensors = read.result().tensors();
        for (NetworkModules.Entry e : NetworkModules.modules(net)) {
            assertThat(FuzzNets.floats(e.runtime().getParam(e.module().aKey()))).as(e.name())
                    .isEqualTo(FuzzNets.floats(tensors.get(e.name() + AdapterKeys.FILE_A)));
            assertThat(FuzzNets.floats(e.runtime().getParam(e.module().bKey()))).as(e.name())
                    .isEqualTo(FuzzNets.floats(tensors.get(e.name() + AdapterKeys.FILE_B)));
        }
        net.output(FuzzNets.input());
    }

    /** A ZIP with the two entries an adapter file has. */
    static byte[] zip(byte[] manifest, byte[] tensors) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (ZipOutputStream zip = new ZipOutputStream(out)) {
            zip.putNextEntry(new ZipEntry(PriLoraAdapters.MANIFEST_ENTRY));
            zip.write(manifest);
            zip.closeEntry();
            zip.putNextEntry(new ZipEntry(PriLoraAdapters.TENSORS_ENTRY));
            zip.write(tensors);
            zip.closeEntry();
        }
        return out.toByteArray();
    }
}
