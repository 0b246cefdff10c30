package org.prilora.samples.finetune;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** {@link PairedCompare} on two written compare.json files, against the interval worked out by hand. */
class PairedCompareTest {

    @TempDir
    Path dir;

    private static String[] run(String... args) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ByteArrayOutputStream errBytes = new ByteArrayOutputStream();
        PrintStream err = System.err;
        System.setErr(new PrintStream(errBytes, true, StandardCharsets.UTF_8));
        try {
            int code = PairedCompare.execute(new PrintStream(bytes, true, StandardCharsets.UTF_8), args);
            return new String[]{Integer.toString(code), bytes.toString(StandardCharsets.UTF_8),
                    errBytes.toString(StandardCharsets.UTF_8)};
        } finally {
            System.setErr(err);
        }
    }

    /** A compare.json holding one method with the given per-seed dev MCC, seeds 1, 2, ... */
    private Path report(String name, String method, double... devMcc) throws Exception {
        List<Map<String, Object>> perSeed = new ArrayList<>();
        for (int i = 0; i < devMcc.length; i++) {
            perSeed.add(Json.object("seed", i + 1, "devMcc", devMcc[i], "devAccuracy", 0.7, "pruningSurvival", null));
        }
        Path f = dir.resolve(name).resolve(CompareReport.JSON);
        Json.write(f, Json.object("methods", List.of(Json.object("method", method, "perSeed", perSeed))));
        return f;
    }

    @Test
    void pairsBySeedAndMatchesTheIntervalWorkedOutByHand() throws Exception {
        Path a = report("a", "prilora", 0.31, 0.29, 0.37, 0.34, 0.35, 0.40);
        Path b = report("b", "prilora", 0.32, 0.28, 0.34, 0.31, 0.34);
        String[] r = run(a.toString(), b.toString());
        assertThat(r[0]).as(r[2]).isEqualTo("0");
        // differences -0.01, 0.01, 0.03, 0.03, 0.01 (seed 6 has no partner): mean 0.014, sample std 0.016733,
        // t(0.975, df 4) = 2.776445 from a table, half width 2.776445 * 0.016733 / sqrt(5) = 0.020777
        assertThat(r[1]).contains("seed 1: 0.3100 - 0.3200 = -0.0100", "seed 5: 0.3500 - 0.3400 = +0.0100")
                .doesNotContain("seed 6")
                .contains("mean +0.0140, 95% interval [-0.0068, +0.0348], ahead on 4 of 5");
    }

    @Test
    void comparesTwoMethodsOfOneFile() throws Exception {
        Path a = report("a", "lora", 0.5, 0.6);
        String[] r = run(a.toString(), a.toString(), "--method", "lora", "--metric", "devAccuracy");
        assertThat(r[0]).isEqualTo("0");
        assertThat(r[1]).contains("mean +0.0000", "ahead on 0 of 2");
    }

    @Test
    void badInputNamesTheValueAndWhatIsThere() throws Exception {
        Path a = report("a", "prilora", 0.3, 0.4);
        String[] r = run(a.toString(), dir.resolve("missing.json").toString());
        assertThat(r[0]).isEqualTo("2");
        assertThat(r[2]).contains("'SECOND'", "missing.json", "an existing compare.json file");
        r = run(a.toString(), a.toString(), "--reference-method", "lora");
        assertThat(r[0]).isEqualTo("2");
        assertThat(r[2]).contains("'--reference-method': lora", "[prilora]");
        r = run(a.toString(), a.toString(), "--metric", "devF1");
        assertThat(r[0]).isEqualTo("2");
        assertThat(r[2]).contains("'--metric': devF1", "[devMcc, devAccuracy]");
        Path c = report("c", "prilora");
        r = run(a.toString(), c.toString());
        assertThat(r[0]).isEqualTo("2");
        assertThat(r[2]).contains("'SECOND'", "at least one seed of FIRST's [1, 2]");
    }
}
