package org.prilora.samples.finetune;

import org.prilora.io.AtomicFiles;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.ToDoubleFunction;

/**
 * The {@code --compare} table: per method, mean ± sample standard deviation over seeds of dev/test MCC and accuracy,
 * trainable parameters, adapter file size and training time; written as {@value #JSON} and {@value #MARKDOWN}
 * (plus {@value #LOSS_CHART}, the seed-averaged smoothed loss of each method).
 */
public final class CompareReport {

    /** JSON file name. */
    public static final String JSON = "compare.json";
    /** Markdown file name. */
    public static final String MARKDOWN = "compare.md";
    /** Loss chart file name. */
    public static final String LOSS_CHART = "compare-loss.png";

    private CompareReport() {
    }

    /**
     * Mean and sample standard deviation (n − 1 in the denominator; 0 for a single value).
     *
     * @param mean mean
     * @param std  standard deviation
     * @param n    number of values
     */
    public record MeanStd(double mean, double std, int n) {
        /**
         * @param values the values (at least one)
         * @return their mean and sample standard deviation
         */
        public static MeanStd of(double[] values) {
            if (values.length == 0) {
                throw new IllegalArgumentException("values: expected at least one value");
            }
            double m = 0;
            for (double v : values) {
                m += v;
            }
            m /= values.length;
            double ss = 0;
            for (double v : values) {
                ss += (v - m) * (v - m);
            }
            return new MeanStd(m, values.length > 1 ? Math.sqrt(ss / (values.length - 1)) : 0.0, values.length);
        }

        /**
         * @param decimals digits after the point
         * @return e.g. {@code 0.312 ± 0.021}
         */
        public String format(int decimals) {
            String f = "%." + decimals + "f";
            return String.format(Locale.ROOT, f + " ± " + f, mean, std);
        }

        Map<String, Object> toMap() {
            return Json.object("mean", RunOutputs.round(mean, 6), "std", RunOutputs.round(std, 6), "n", n);
        }
    }

    /**
     * Groups runs by method, baseline first: head-only, lora, prilora.
     *
     * @param runs all runs
     * @return method to its runs, only methods that ran
     */
    static Map<Method, List<RunResult>> byMethod(List<RunResult> runs) {
        Map<Method, List<RunResult>> m = new LinkedHashMap<>();
        for (Method method : List.of(Method.HEAD_ONLY, Method.LORA, Method.PRILORA)) {
            List<RunResult> l = runs.stream().filter(r -> r.settings().method() == method).toList();
            if (!l.isEmpty()) {
                m.put(method, l);
            }
        }
        return m;
    }

    static MeanStd stat(List<RunResult> runs, ToDoubleFunction<RunResult> f) {
        return MeanStd.of(runs.stream().mapToDouble(f).toArray());
    }

    /**
     * The content of {@value #JSON}.
     *
     * @param runs     every run
     * @param settings the shared settings (seed and method vary per run)
     * @param seeds    the seeds
     * @return an ordered map
     */
    public static Map<String, Object> toJson(List<RunResult> runs, FineTuneSettings settings, List<Long> seeds) {
        Map<String, Object> shared = new LinkedHashMap<>(settings.withMethod(Method.PRILORA).toMap());
        shared.remove("method");
        shared.remove("seed");
        shared.put("loraRank", settings.loraRank());
        List<Map<String, Object>> methods = new ArrayList<>();
        for (Map.Entry<Method, List<RunResult>> e : byMethod(runs).entrySet()) {
            List<RunResult> l = e.getValue();
            boolean test = l.stream().allMatch(r -> r.test() != null);
            List<Map<String, Object>> perSeed = new ArrayList<>();
            for (RunResult r : l) {
                perSeed.add(Json.object("seed", r.settings().seed(),
                        "devMcc", RunOutputs.round(r.dev().mcc(), 6),
                        "devAccuracy", RunOutputs.round(r.dev().accuracy(), 6),
                        "testMcc", r.test() == null ? null : RunOutputs.round(r.test().mcc(), 6),
                        "testAccuracy", r.test() == null ? null : RunOutputs.round(r.test().accuracy(), 6),
                        "trainSeconds", RunOutputs.round(r.trainSeconds(), 2),
                        "trainCpuSeconds", RunOutputs.round(r.trainCpuSeconds(), 2),
                        "finalLossAvg10", RunOutputs.round(r.finalLoss(RunOutputs.SMOOTHING), 5),
                        "pruningSteps", r.pruningSteps()));
            }
            methods.add(Json.object("method", e.getKey().cliName(),
                    "runs", l.size(),
                    "devMcc", stat(l, r -> r.dev().mcc()).toMap(),
                    "devAccuracy", stat(l, r -> r.dev().accuracy()).toMap(),
                    "testMcc", test ? stat(l, r -> r.test().mcc()).toMap() : null,
                    "testAccuracy", test ? stat(l, r -> r.test().accuracy()).toMap() : null,
                    "trainableParams", l.get(0).trainableParams(),
                    "allParams", l.get(0).allParams(),
                    "adapterFile", l.get(0).adapterFile(),
                    "adapterFileBytes", stat(l, RunResult::adapterFileBytes).toMap(),
                    "trainSeconds", stat(l, RunResult::trainSeconds).toMap(),
                    "trainCpuSeconds", stat(l, RunResult::trainCpuSeconds).toMap(),
                    "steps", l.get(0).steps(),
                    "perSeed", perSeed));
        }
        return Json.object("task", "LanguageTool English grammatical acceptability, all-MiniLM-L6-v2",
                "settings", shared, "seeds", seeds, "methods", methods);
    }

    /**
     * The markdown table.
     *
     * @param runs     every run
     * @param settings shared settings
     * @param seeds    the seeds
     * @param command  the command line that produced it (recorded for reproduction)
     * @return markdown text
     */
    public static String markdown(List<RunResult> runs, FineTuneSettings settings, List<Long> seeds, String command) {
        StringBuilder sb = new StringBuilder();
        sb.append("# Head-only vs LoRA vs PRILoRA on LanguageTool acceptability (all-MiniLM-L6-v2)\n\n");
        sb.append(String.format(Locale.ROOT, "Seeds %s; %d training sentences (%s sample drawn per seed), %d epoch(s), "
                        + "batch %d, Adam lr %s, max length %d. LoRA: uniform rank %d; PRILoRA: ranks %s, pruning "
                        + "fraction %s every %d steps from step %d, EMA β %s, %s. Alpha %s (scale alpha/r). "
                        + "Mean ± sample std over seeds.%n%n",
                seeds, settings.trainSize(), settings.balanced() ? "class-balanced" : "class-stratified", settings.epochs(),
                settings.batchSize(), settings.learningRate(),
                settings.maxLength(), settings.loraRank(), settings.ranks(), settings.pruneFraction(),
                settings.pruneInterval(), settings.pruneStart(), settings.emaBeta(), settings.pruneMode(),
                settings.alpha()));
        sb.append("| method | dev MCC | dev acc | test MCC | test acc | trainable params | adapter file | train s |\n");
        sb.append("|---|---|---|---|---|---:|---:|---|\n");
        for (Map.Entry<Method, List<RunResult>> e : byMethod(runs).entrySet()) {
            List<RunResult> l = e.getValue();
            boolean test = l.stream().allMatch(r -> r.test() != null);
            sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %,d | %s | %s |%n",
                    e.getKey().cliName(),
                    stat(l, r -> r.dev().mcc()).format(3),
                    stat(l, r -> r.dev().accuracy()).format(3),
                    test ? stat(l, r -> r.test().mcc()).format(3) : "n/a",
                    test ? stat(l, r -> r.test().accuracy()).format(3) : "n/a",
                    l.get(0).trainableParams(),
                    bytes(stat(l, RunResult::adapterFileBytes).mean()) + " (" + l.get(0).adapterFile() + ")",
                    stat(l, RunResult::trainSeconds).format(0)));
        }
        sb.append("\nPer seed (dev MCC / test MCC):\n\n");
        for (Map.Entry<Method, List<RunResult>> e : byMethod(runs).entrySet()) {
            sb.append("- ").append(e.getKey().cliName()).append(": ");
            List<String> parts = new ArrayList<>();
            for (RunResult r : e.getValue()) {
                parts.add(String.format(Locale.ROOT, "seed %d %.3f / %s", r.settings().seed(), r.dev().mcc(),
                        r.test() == null ? "n/a" : String.format(Locale.ROOT, "%.3f", r.test().mcc())));
            }
            sb.append(String.join("; ", parts)).append('\n');
        }
        sb.append("\nMajority class (always \"acceptable\") scores MCC 0 and dev accuracy 0.734; a model trained on "
                + "class-balanced data predicts \"unacceptable\" far more often, so its accuracy can fall below that "
                + "while its MCC rises. Head-only trains only the 770-parameter "
                + "classifier on frozen mean-pooled embeddings with the same batches and learning rate; its \"adapter "
                + "file\" is that classifier. Training time excludes evaluation; for head-only it includes embedding "
                + "the training sentences (cached across seeds).\n");
        sb.append("\nCommand: `").append(command).append("`\n");
        return sb.toString();
    }

    static String bytes(double b) {
        if (b < 1024) {
            return String.format(Locale.ROOT, "%.0f B", b);
        }
        if (b < 1024 * 1024) {
            return String.format(Locale.ROOT, "%.1f KiB", b / 1024);
        }
        return String.format(Locale.ROOT, "%.2f MiB", b / (1024 * 1024));
    }

    /**
     * Writes {@value #JSON}, {@value #MARKDOWN} and {@value #LOSS_CHART} into {@code dir}.
     *
     * @param dir      output folder
     * @param runs     every run
     * @param settings shared settings
     * @param seeds    the seeds
     * @param command  the command line
     * @throws IOException if writing fails
     */
    public static void write(Path dir, List<RunResult> runs, FineTuneSettings settings, List<Long> seeds, String command)
            throws IOException {
        Files.createDirectories(dir);
        Map<String, Object> json = toJson(runs, settings, seeds);
        json.put("command", command);
        Json.write(dir.resolve(JSON), json);
        AtomicFiles.write(dir.resolve(MARKDOWN), markdown(runs, settings, seeds, command).getBytes(StandardCharsets.UTF_8));
        Map<String, double[]> mean = new LinkedHashMap<>();
        for (Map.Entry<Method, List<RunResult>> e : byMethod(runs).entrySet()) {
            int steps = e.getValue().stream().mapToInt(r -> r.losses().length).min().orElse(0);
            double[] avg = new double[steps];
            for (RunResult r : e.getValue()) {
                for (int i = 0; i < steps; i++) {
                    avg[i] += r.losses()[i] / e.getValue().size();
                }
            }
            mean.put(e.getKey().cliName(), avg);
        }
        AtomicFiles.write(dir.resolve(LOSS_CHART), RunOutputs.png(RunOutputs.lossChart("mean over seeds " + seeds, mean)));
    }
}
