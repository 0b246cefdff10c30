package org.prilora;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.shade.jackson.databind.node.ObjectNode;
import org.prilora.config.PruningMode;
import org.prilora.testing.FuzzContract;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Coverage-guided fuzzing of the PEFT importer ({@link PriLoraAdapters#importPeft(MultiLayerNetwork, Path,
 * java.util.function.Function)}) with a small real network as the base. Each input is an {@code adapter_config.json}
 * and an {@code adapter_model.safetensors} ({@link FuzzNets#split} framing); it must give an adapted network (which
 * then runs a forward pass) or an {@link AdapterFileException} / {@link AdapterMismatchException} with a message,
 * within the timeout, and the base network must come out unchanged. Without {@code JAZZER_FUZZ} this replays the
 * committed inputs under {@code src/test/resources/org/prilora/PeftImportFuzzTestInputs/importPeft/}.
 */
class PeftImportFuzzTest {

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
    @DictionaryEntries({"null", "true", "false", "-1", "0", "1e309", "-0.0", "NaN", "2147483648",
            "9223372036854775808", "[]", "{}", "\"\"", "[null]", "{\"\":null}", "\\u0000", "\\ud800",
            "\"peft_type\"", "\"LORA\"", "\"r\"", "\"lora_alpha\"", "\"target_modules\"", "\"rank_pattern\"",
            "\"alpha_pattern\"", "\"modules_to_save\"", "\"use_rslora\"", "\"fc1\"", "\"fc2\"", "\"head\"",
            "base_model.model.", ".lora_A.weight", ".lora_B.weight", ".weight", ".bias", ".*", "fc[12]", "(a|a)*b",
            "\\\\", "|", "(", ")", "[", "*+", "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"",
            "\"F32\"", "\"F64\"", "\"F16\"", "\"BF16\""})
    @FuzzTest(maxDuration = "5m")
    // per input: libFuzzer reports a hang as a timeout finding; in replay it fails even if the reader ignores interrupts
    @Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void importPeft(byte[] data) throws Throwable {
        if (data.length > MAX_INPUT_BYTES) {
            return;
        }
        byte[][] files = FuzzNets.split(data);
        Path peft = write(files[0], files[1]);
        FuzzContract.Outcome<MultiLayerNetwork> imported = FuzzContract.run(() -> PriLoraAdapters.importPeft(base, peft, null),
                AdapterFileException.class, AdapterMismatchException.class);
        baseBefore.assertUnchanged(base);
        if (!imported.rejected()) {
            imported.result().output(FuzzNets.input());
        }
    }

    /** The committed seeds are valid directories, so that the fuzzer starts from inputs that reach the importer's end. */
    @Test
    void seedsImport() throws Exception {
        for (String seed : new String[]{"seed-list", "seed-regex"}) {
            byte[][] files = FuzzNets.split(Files.readAllBytes(FuzzSeeds.input(getClass(), "importPeft", seed)));
            assertThat(PriLoraAdapters.importPeft(base, write(files[0], files[1]), null).output(FuzzNets.input()).isEmpty()).isFalse();
        }
    }

    @Test
    @EnabledIfSystemProperty(named = FuzzSeeds.WRITE_PROPERTY, matches = "true")
    void writeSeeds() throws Exception {
        Path peft = dir.resolve("export");
        PriLoraAdapters.exportPeft(FuzzNets.adapted(PruningMode.REGROW), peft, null);
        byte[] config = Files.readAllBytes(peft.resolve(PeftAdapters.CONFIG));
        byte[] weights = Files.readAllBytes(peft.resolve(PeftAdapters.WEIGHTS));
        FuzzSeeds.write(getClass(), "importPeft", "seed-list", FuzzNets.join(config, weights));
        ObjectNode regex = (ObjectNode) AdapterContainer.JSON.readTree(config);
        regex.put("target_modules", "fc[12]");
        FuzzSeeds.write(getClass(), "importPeft", "seed-regex", FuzzNets.join(AdapterContainer.JSON.writeValueAsBytes(regex), weights));
    }

    private static Path write(byte[] config, byte[] weights) throws Exception {
        Path peft = Files.createDirectories(dir.resolve("peft"));
        Files.write(peft.resolve(PeftAdapters.CONFIG), config);
        Files.write(peft.resolve(PeftAdapters.WEIGHTS), weights);
        return peft;
    }
}
