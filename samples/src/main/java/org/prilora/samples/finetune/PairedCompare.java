package org.prilora.samples.finetune;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.Callable;

/**
 * Paired differences between two {@code --compare} outputs, for settings that one grid does not vary (two values of
 * {@code --ema-beta}, say): per seed present in both, a method's metric in the first {@value CompareReport#JSON} minus
 * a method's metric in the second, then the mean, the 95 % Student-t interval and the sign count, computed by
 * {@link CompareReport.Paired} as in the reports.
 *
 * <pre>
 * mvn -B -q -pl samples initialize exec:exec -Dexec.args="-classpath %classpath \
 *     org.prilora.samples.finetune.PairedCompare ../finetune-output/ema-check/b0.9/compare.json \
 *     ../finetune-output/ema-check/b0.99/compare.json --method prilora --metric devMcc"
 * </pre>
 */
@Command(name = "PairedCompare", mixinStandardHelpOptions = true, sortOptions = false,
        version = "PairedCompare 0.1.0 (PRILoRA for DL4J 1.0.0-M2.1)",
        description = {"Per-seed paired differences between two compare.json files (first minus second): "
                + "mean, 95 % Student-t interval over seeds and sign count.", ""})
public final class PairedCompare implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "FIRST", description = "compare.json whose metric is the minuend.")
    Path first;

    @Parameters(index = "1", paramLabel = "SECOND", description = "compare.json whose metric is subtracted.")
    Path second;

    @Option(names = "--method", defaultValue = "prilora", converter = AcceptabilityFineTune.MethodConverter.class,
            paramLabel = "METHOD", description = "Method read from FIRST (default: ${DEFAULT-VALUE}).")
    Method method;

    @Option(names = "--reference-method", converter = AcceptabilityFineTune.MethodConverter.class,
            paramLabel = "METHOD", description = "Method read from SECOND (default: the same as --method).")
    Method referenceMethod;

    @Option(names = "--metric", defaultValue = "devMcc", paramLabel = "KEY",
            description = "Per-seed key of compare.json: devMcc, testMcc, devAccuracy, devWordF1, devSpanF1, "
                    + "testWordF1, ... (default: ${DEFAULT-VALUE}).")
    String metric;

    private final PrintStream out;

    PairedCompare(PrintStream out) {
        this.out = out;
    }

    /**
     * Runs the command and exits with its code (0 ok, 2 bad usage or input, 1 unreadable file).
     *
     * @param args command-line arguments
     */
    public static void main(String[] args) {
        System.exit(execute(new PrintStream(System.out, true, StandardCharsets.UTF_8), args));
    }

    /**
     * Parses and runs, returning the exit code instead of exiting.
     *
     * @param stdout where the output goes
     * @param args   command-line arguments
     * @return exit code
     */
    static int execute(PrintStream stdout, String... args) {
        return new CommandLine(new PairedCompare(stdout)).execute(args);
    }

    @Override
    public Integer call() throws IOException {
        Method reference = referenceMethod == null ? method : referenceMethod;
        Map<Long, Double> a = perSeed("FIRST", first, "--method", method);
        Map<Long, Double> b = perSeed("SECOND", second, referenceMethod == null ? "--method" : "--reference-method",
                reference);
        TreeSet<Long> common = new TreeSet<>(a.keySet());
        common.retainAll(b.keySet());
        OptionChecks.check(spec, !common.isEmpty(), "SECOND", second,
                "a compare.json with at least one seed of FIRST's " + a.keySet());
        long[] seeds = common.stream().mapToLong(Long::longValue).toArray();
        double[] diffs = new double[seeds.length];
        for (int i = 0; i < seeds.length; i++) {
            diffs[i] = a.get(seeds[i]) - b.get(seeds[i]);
            out.printf(Locale.ROOT, "seed %d: %.4f - %.4f = %+.4f%n", seeds[i], a.get(seeds[i]), b.get(seeds[i]),
                    diffs[i]);
        }
        CompareReport.Paired p = CompareReport.Paired.of(method, reference, seeds, diffs);
        out.printf(Locale.ROOT, "%s: %s (%s) - %s (%s): mean %+.4f, 95%% interval [%+.4f, %+.4f], ahead on %d of %d%n",
                metric, method.cliName(), first, reference.cliName(), second, p.mean(), p.ciLow(), p.ciHigh(),
                p.positive(), seeds.length);
        return 0;
    }

    /** @return seed → the metric of {@code m}'s runs in {@code file}, naming what is there when something is missing */
    @SuppressWarnings("unchecked")
    private Map<Long, Double> perSeed(String param, Path file, String option, Method m) throws IOException {
        OptionChecks.check(spec, Files.isRegularFile(file), param, file, "an existing compare.json file");
        List<Map<String, Object>> methods = (List<Map<String, Object>>) Json.readObject(file)
                .getOrDefault("methods", List.of());
        Map<String, Object> entry = methods.stream().filter(e -> m.cliName().equals(e.get("method"))).findFirst()
                .orElse(null);
        OptionChecks.check(spec, entry != null, option, m.cliName(),
                "a method of " + file + ": " + methods.stream().map(e -> e.get("method")).toList());
        Map<Long, Double> values = new LinkedHashMap<>();
        for (Map<String, Object> run : (List<Map<String, Object>>) entry.get("perSeed")) {
            Object v = run.get(metric);
            OptionChecks.check(spec, v instanceof Number, "--metric", metric,
                    "a numeric per-seed key of " + file + ": " + numericKeys(run));
            values.put(((Number) run.get("seed")).longValue(), ((Number) v).doubleValue());
        }
        return values;
    }

    private static List<String> numericKeys(Map<String, Object> run) {
        List<String> keys = new ArrayList<>();
        run.forEach((k, v) -> {
            if (v instanceof Number && !k.equals("seed")) {
                keys.add(k);
            }
        });
        return keys;
    }
}
