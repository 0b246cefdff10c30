package org.prilora.io;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.testing.FuzzContract;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Coverage-guided fuzzing of the safetensors reader ({@link SafeTensors#readContents(byte[], String)} and
 * {@link SafeTensors#readContents(Path)}). Any bytes must give tensors or a {@link SafeTensorsFormatException}
 * (never another exception, an error or a hang); both entry points must agree; and whatever was read must write back
 * and read again to the same file. Without {@code JAZZER_FUZZ} this replays the committed inputs in
 * {@code src/test/resources/org/prilora/io/SafeTensorsFuzzTestInputs/readContents/}.
 */
class SafeTensorsFuzzTest {

    /** Larger inputs say nothing more about the header and layout checks, and slow the fuzzer down. */
    static final int MAX_INPUT_BYTES = 1 << 16;

    @TempDir
    static Path dir;

    @BeforeAll
    static void loadNd4j() {
        Nd4j.create(1); // the backend loads once here, not inside the first timed input
    }

    // tokens and names the reader looks for, which byte mutations alone would hardly hit
    @DictionaryEntries({"null", "true", "false", "-1", "0", "1e309", "-0.0", "NaN", "2147483648",
            "9223372036854775808", "[]", "{}", "\"\"", "[null]", "{\"\":null}", "\\u0000", "\\ud800", "\"dtype\"",
            "\"shape\"", "\"data_offsets\"", "\"__metadata__\"", "\"F32\"", "\"F64\"", "\"F16\"", "\"BF16\"",
            "\"I64\"", "\"I8\"", "\"U8\"", "\"BOOL\"", "\"F8_E4M3\"", "\"C64\"", "[0]", "[]", "[0,0]"})
    @FuzzTest(maxDuration = "5m")
    // per input: libFuzzer reports a hang as a timeout finding; in replay it fails even if the reader ignores interrupts
    @Timeout(value = 10, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void readContents(byte[] data) throws Throwable {
        if (data.length > MAX_INPUT_BYTES) {
            return;
        }
        Path file = dir.resolve("fuzz.safetensors");
        Files.write(file, data);
        String source = file.toString();
        FuzzContract.Outcome<SafeTensors.Contents> fromBytes =
                FuzzContract.run(() -> SafeTensors.readContents(data, source), SafeTensorsFormatException.class);
        FuzzContract.Outcome<SafeTensors.Contents> fromFile =
                FuzzContract.run(() -> SafeTensors.readContents(file), SafeTensorsFormatException.class);
        if (fromBytes.rejected()) {
            assertThat(fromFile.rejected()).as("the file is read where the bytes fail with %s", fromBytes.rejection()).isTrue();
            assertThat(fromFile.rejection()).hasSameClassAs(fromBytes.rejection())
                    .hasMessage(fromBytes.rejection().getMessage());
            return;
        }
        assertThat(fromFile.rejected()).as("the bytes are read where the file fails with %s", fromFile.rejection()).isFalse();
        SafeTensors.Contents a = fromBytes.result();
        SafeTensors.Contents b = fromFile.result();
        byte[] written = SafeTensors.toBytes(a.tensors(), a.metadata());
        assertThat(SafeTensors.toBytes(b.tensors(), b.metadata())).isEqualTo(written);
        SafeTensors.Contents again = SafeTensors.readContents(written, "rewritten");
        assertThat(again.tensors().keySet()).containsExactlyInAnyOrderElementsOf(a.tensors().keySet());
        assertThat(again.metadata()).isEqualTo(a.metadata());
        assertThat(SafeTensors.toBytes(again.tensors(), again.metadata())).isEqualTo(written);
    }
}
