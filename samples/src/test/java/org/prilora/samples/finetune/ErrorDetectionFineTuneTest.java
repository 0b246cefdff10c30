package org.prilora.samples.finetune;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * The error-detection task end to end on the real data and the real MiniLM, at a tiny budget: bad options, a
 * {@code --compare} grid on two threads, its report, and {@code --resume} reusing every run.
 */
class ErrorDetectionFineTuneTest {

    private static String[] run(String... args) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        PrintStream err = System.err;
        ByteArrayOutputStream errBytes = new ByteArrayOutputStream();
        System.setErr(new PrintStream(errBytes, true, StandardCharsets.UTF_8));
        try {
            int code = ErrorDetectionFineTune.execute(out, args);
            return new String[]{Integer.toString(code), bytes.toString(StandardCharsets.UTF_8),
                    errBytes.toString(StandardCharsets.UTF_8)};
        } finally {
            System.setErr(err);
        }
    }

    @Test
    void badValuesNameTheOptionTheValueAndTheRange() {
        String[] r = run("--error-weight", "0");
        assertThat(r[0]).isEqualTo("2");
        assertThat(r[2]).contains("'--error-weight': 0.0", "a finite number > 0");
        r = run("--train-size", "20000", "--skip-test");
        assertThat(r[0]).isEqualTo("2");
        assertThat(r[2]).contains("'--train-size': 20000", "the train split's sentences");
        r = run("--compare-methods", "lora,lora");
        assertThat(r[0]).isEqualTo("2");
        assertThat(r[2]).contains("--compare-methods", "distinct");
    }

    @Test
    @SuppressWarnings("unchecked")
    void compareWritesTheReportAndResumeReusesEveryRun(@TempDir Path dir) throws IOException {
        String[] args = {"--train-size", "48", "--batch-size", "16", "--max-length", "24", "--skip-test", "--compare",
                "--compare-methods", "lora,prilora,head-only", "--seeds", "1,2", "--jobs", "2", "--out", dir.toString()};
        String[] r = run(args);
        assertThat(r[0]).as(r[1] + r[2]).isEqualTo("0");
        Map<String, Object> json = Json.readObject(dir.resolve(CompareReport.JSON));
        List<Map<String, Object>> methods = (List<Map<String, Object>>) json.get("methods");
        assertThat(methods).extracting(m -> m.get("method")).containsExactly("lora", "prilora", "head-only");
        List<Map<String, Object>> paired = (List<Map<String, Object>>) json.get("pairedDevWordF1");
        assertThat(paired).extracting(m -> m.get("method") + "-" + m.get("reference"))
                .contains("prilora-lora", "head-only-lora");
        assertThat(Files.readString(dir.resolve(CompareReport.MARKDOWN))).contains("| prilora − lora |", "dev word F1");

        Long goldErrors = null;
        for (String run : List.of("lora-seed1", "lora-seed2", "prilora-seed1", "prilora-seed2", "head-only-seed1",
                "head-only-seed2")) {
            Map<String, Object> m = Json.readObject(dir.resolve("runs").resolve(run).resolve(RunOutputs.METRICS));
            assertThat(m.get("steps")).isEqualTo(3);
            Map<String, Object> dev = (Map<String, Object>) m.get("dev");
            assertThat(dev.get("sentences")).isEqualTo(1322);
            Map<String, Number> c = (Map<String, Number>) dev.get("wordCounts");
            long tp = c.get("tp").longValue();
            long fp = c.get("fp").longValue();
            long fn = c.get("fn").longValue();
            // every run is scored against the same gold error words
            if (goldErrors == null) {
                goldErrors = tp + fn;
                assertThat(goldErrors).isPositive();
            }
            assertThat(tp + fn).isEqualTo(goldErrors);
            double f1 = tp == 0 ? 0 : 2.0 * tp / (2.0 * tp + fp + fn);
            assertThat(((Number) dev.get("wordF1")).doubleValue()).isCloseTo(f1, within(1e-6));
            assertThat(dir.resolve("runs").resolve(run).resolve((String) m.get("savedFile"))).isRegularFile();
        }

        String before = Files.readString(dir.resolve(CompareReport.MARKDOWN));
        r = run(concat(args, "--resume"));
        assertThat(r[0]).as(r[1] + r[2]).isEqualTo("0");
        assertThat(r[1]).contains("--resume: 6 of 6 runs reused");
        assertThat(Files.readString(dir.resolve(CompareReport.MARKDOWN)).replaceAll("Command: .*", ""))
                .isEqualTo(before.replaceAll("Command: .*", ""));
    }

    private static String[] concat(String[] a, String b) {
        String[] r = java.util.Arrays.copyOf(a, a.length + 1);
        r[a.length] = b;
        return r;
    }
}
