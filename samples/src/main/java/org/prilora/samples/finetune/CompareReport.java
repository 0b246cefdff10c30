package org.prilora.samples.finetune;

import org.prilora.io.AtomicFiles;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import java.util.function.ToDoubleFunction;

import org.apache.commons.math3.distribution.TDistribution;

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
     * Groups runs by method, in the order the methods first appear.
     *
     * @param runs all runs
     * @return method to its runs, only methods that ran
     */
    static <R extends CompareRuns.Result> Map<Method, List<R>> byMethod(List<R> runs) {
        Map<Method, List<R>> m = new LinkedHashMap<>();
        for (R r : runs) {
            m.computeIfAbsent(r.settings().method(), k -> new ArrayList<>()).add(r);
        }
        return m;
    }

    /**
     * Per-seed paired differences {@code method − reference} of one metric over the seeds both ran, with a 95 %
     * Student-t confidence interval of their mean and a sign count.
     *
     * @param method    the method
     * @param reference the method it is compared with
     * @param seeds     seeds both ran, in order
     * @param diffs     {@code method − reference} per seed
     * @param mean      mean difference
     * @param ciLow     lower end of the 95 % interval (NaN for fewer than 2 seeds)
     * @param ciHigh    upper end
     * @param positive  seeds where the method is ahead
     * @param negative  seeds where it is behind
     */
    public record Paired(Method method, Method reference, long[] seeds, double[] diffs, double mean, double ciLow,
                         double ciHigh, int positive, int negative) {

        /**
         * @param runs      all runs
         * @param method    the method
         * @param reference the reference method
         * @param metric    the metric of a run
         * @return the paired differences, or null when no seed has both
         */
        static <R extends CompareRuns.Result> Paired of(List<R> runs, Method method, Method reference,
                                                        ToDoubleFunction<R> metric) {
            List<Long> seeds = new ArrayList<>();
            List<Double> d = new ArrayList<>();
            for (R r : runs) {
                if (r.settings().method() != method) {
                    continue;
                }
                for (R q : runs) {
                    if (q.settings().method() == reference && q.settings().seed() == r.settings().seed()) {
                        seeds.add(r.settings().seed());
                        d.add(metric.applyAsDouble(r) - metric.applyAsDouble(q));
                    }
                }
            }
            if (d.isEmpty()) {
                return null;
            }
            return of(method, reference, seeds.stream().mapToLong(Long::longValue).toArray(),
                    d.stream().mapToDouble(Double::doubleValue).toArray());
        }

        /**
         * @param method    the method
         * @param reference the reference method
         * @param seeds     the seeds of the differences
         * @param diffs     per seed, the method's metric minus the reference's (at least one)
         * @return the mean difference, its 95 % Student-t interval and the sign count
         */
        static Paired of(Method method, Method reference, long[] seeds, double[] diffs) {
            MeanStd ms = MeanStd.of(diffs);
            double half = diffs.length < 2 ? Double.NaN
                    : new TDistribution(diffs.length - 1).inverseCumulativeProbability(0.975) * ms.std() / Math.sqrt(diffs.length);
            int pos = (int) Arrays.stream(diffs).filter(x -> x > 0).count();
            int neg = (int) Arrays.stream(diffs).filter(x -> x < 0).count();
            return new Paired(method, reference, seeds, diffs, ms.mean(), ms.mean() - half, ms.mean() + half, pos, neg);
        }

        /** @return e.g. {@code +0.012 [−0.004, +0.028], 4 of 5 ahead} */
        String format() {
            String ci = Double.isNaN(ciLow) ? "[n/a: one seed]"
                    : String.format(Locale.ROOT, "[%+.3f, %+.3f]", ciLow, ciHigh);
            return String.format(Locale.ROOT, "%+.3f %s, ahead on %d of %d", mean, ci, positive, diffs.length);
        }

        Map<String, Object> toMap() {
            List<Double> d = new ArrayList<>();
            for (double x : diffs) {
                d.add(RunOutputs.round(x, 6));
            }
            return Json.object("method", method.cliName(), "reference", reference.cliName(), "seeds", seeds,
                    "differences", d, "mean", RunOutputs.round(mean, 6), "ci95", List.of(
                            RunOutputs.round(ciLow, 6) == null ? "n/a" : RunOutputs.round(ciLow, 6),
                            RunOutputs.round(ciHigh, 6) == null ? "n/a" : RunOutputs.round(ciHigh, 6)),
                    "ahead", positive, "behind", negative);
        }
    }

    /** The paired comparisons of the report: every method against LoRA, and PRILoRA against its two ablations. */
    static <R extends CompareRuns.Result> List<Paired> pairs(List<R> runs, ToDoubleFunction<R> metric) {
        List<Paired> l = new ArrayList<>();
        for (Method m : byMethod(runs).keySet()) {
            if (m != Method.LORA) {
                add(l, Paired.of(runs, m, Method.LORA, metric));
            }
        }
        add(l, Paired.of(runs, Method.PRILORA, Method.LINEAR_UNPRUNED, metric));
        add(l, Paired.of(runs, Method.PRILORA, Method.UNIFORM_PRUNED, metric));
        add(l, Paired.of(runs, Method.PRILORA, Method.PRILORA_PERSISTENT, metric));
        return l;
    }

    private static void add(List<Paired> l, Paired p) {
        if (p != null) {
            l.add(p);
        }
    }

    static <R> MeanStd stat(List<R> runs, ToDoubleFunction<R> f) {
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
                        "devPredictedAcceptable", RunOutputs.round(r.dev().predictedPositiveShare(), 6),
                        "pruningSteps", r.pruningSteps(),
                        "pruningSurvival", RunOutputs.survival(r.survival())));
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
        boolean test = runs.stream().allMatch(r -> r.test() != null);
        return Json.object("task", "LanguageTool English grammatical acceptability, all-MiniLM-L6-v2",
                "settings", shared, "seeds", seeds, "methods", methods,
                "pairedDevMcc", pairs(runs, r -> r.dev().mcc()).stream().map(Paired::toMap).toList(),
                "pairedTestMcc", test ? pairs(runs, r -> r.test().mcc()).stream().map(Paired::toMap).toList() : null);
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
        sb.append("# PRILoRA, LoRA, their ablations and the baselines on LanguageTool acceptability (all-MiniLM-L6-v2)\n\n");
        sb.append(String.format(Locale.ROOT, "Seeds %s; %s training sentences (%s%s), %d epoch(s), batch %d, Adam lr %s "
                        + "(full fine-tuning %s), max length %d. LoRA: uniform rank %d; PRILoRA: ranks %s, pruning "
                        + "fraction %s every %d steps from step %d, EMA β %s, %s. Alpha %s (scale alpha/r). "
                        + "Predictions corrected to the training split's class prior. Mean ± sample std over seeds.%n%n",
                seeds, settings.trainSize() == 0 ? "all" : String.valueOf(settings.trainSize()),
                settings.balanced() ? "class-balanced sample" : "the split's class shares",
                settings.classWeights() ? ", class-weighted loss" : "", settings.epochs(),
                settings.batchSize(), settings.learningRate(), settings.fullLearningRate(),
                settings.maxLength(), settings.loraRank(), settings.ranks(), settings.pruneFraction(),
                settings.pruneInterval(), settings.pruneStart(), settings.emaBeta(), settings.pruneMode(),
                settings.alpha()));
        sb.append("| method | dev MCC | dev acc | test MCC | test acc | trainable params | saved file | train s |\n");
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
        RunResult any = runs.get(0);
        sb.append(String.format(Locale.ROOT, "%nMajority class (always \"acceptable\"): dev accuracy %.3f, test %s, MCC 0.%n",
                any.dev().majorityAccuracy(), any.test() == null ? "n/a"
                        : String.format(Locale.ROOT, "%.3f", any.test().majorityAccuracy())));

        boolean test = runs.stream().allMatch(r -> r.test() != null);
        List<Paired> dev = pairs(runs, r -> r.dev().mcc());
        List<Paired> tst = test ? pairs(runs, r -> r.test().mcc()) : List.of();
        if (!dev.isEmpty()) {
            sb.append("\n**Paired differences in MCC** (same seed: same sample, batch order and head initialisation; "
                    + "mean difference, 95 % Student-t interval over seeds, seeds ahead):\n\n");
            sb.append("| comparison | dev MCC difference | test MCC difference |\n|---|---|---|\n");
            for (int i = 0; i < dev.size(); i++) {
                Paired p = dev.get(i);
                sb.append(String.format(Locale.ROOT, "| %s − %s | %s | %s |%n", p.method().cliName(),
                        p.reference().cliName(), p.format(), test ? tst.get(i).format() : "n/a"));
            }
        }

        sb.append(survivalTable(runs, RunResult::survival));

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
        sb.append("\nHead-only trains only the 770-parameter classifier on frozen mean-pooled embeddings with the same "
                + "batches and learning rate; its saved file is that classifier. Full fine-tuning trains every weight "
                + "of the six blocks and the classifier (the embedding tables stay frozen) and saves the whole network. "
                + "Training time excludes evaluation; for head-only it includes embedding the training sentences (cached "
                + "across seeds).\n");
        sb.append("\nCommand: `").append(command).append("`\n");
        return sb.toString();
    }

    /**
     * The markdown table of how much of each pruning survives until the next one, per pruned method (mean over
     * pruning steps and seeds); empty when no run pruned.
     *
     * @param runs     every run
     * @param survival a run's survival figures, null for a run without pruning
     * @return markdown text, starting with a blank line
     */
    static <R extends CompareRuns.Result> String survivalTable(List<R> runs, Function<R, SparsityTrace.Survival> survival) {
        StringBuilder sb = new StringBuilder();
        List<R> pruned = runs.stream().filter(r -> survival.apply(r) != null).toList();
        if (!pruned.isEmpty()) {
            sb.append("\n**How much of a pruning survives** (fraction of exact zeros over all A entries; mean over "
                    + "pruning steps and seeds):\n\n");
            sb.append("| method | right after pruning | one step later | just before the next pruning | survival | at the end |\n");
            sb.append("|---|---|---|---|---|---|\n");
            for (Map.Entry<Method, List<R>> e : byMethod(pruned).entrySet()) {
                List<R> l = e.getValue();
                sb.append(String.format(Locale.ROOT, "| %s | %.4f | %.4f | %.4f | %.4f | %.4f |%n", e.getKey().cliName(),
                        stat(l, r -> survival.apply(r).afterPruning()).mean(),
                        stat(l, r -> survival.apply(r).afterOneStep()).mean(),
                        stat(l, r -> survival.apply(r).beforeNextPruning()).mean(),
                        stat(l, r -> survival.apply(r).survival()).mean(),
                        stat(l, r -> survival.apply(r).finalSparsity()).mean()));
            }
            sb.append("\nSurvival = zeros one step before the next pruning step / zeros right after a pruning step. "
                    + "In REGROW mode Adam moves every pruned entry again at the next step; PERSISTENT_MASK keeps them "
                    + "at 0.\n");
        }
        return sb.toString();
    }

    /** @return per method, the per-step loss averaged over its runs (up to the shortest run) */
    static <R extends CompareRuns.Result> Map<String, double[]> meanLosses(List<R> runs, Function<R, double[]> losses) {
        Map<String, double[]> mean = new LinkedHashMap<>();
        for (Map.Entry<Method, List<R>> e : byMethod(runs).entrySet()) {
            int steps = e.getValue().stream().mapToInt(r -> losses.apply(r).length).min().orElse(0);
            double[] avg = new double[steps];
            for (R r : e.getValue()) {
                for (int i = 0; i < steps; i++) {
                    avg[i] += losses.apply(r)[i] / e.getValue().size();
                }
            }
            mean.put(e.getKey().cliName(), avg);
        }
        return mean;
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
        Map<String, double[]> mean = meanLosses(runs, RunResult::losses);
        AtomicFiles.write(dir.resolve(LOSS_CHART), RunOutputs.png(RunOutputs.lossChart("mean over seeds " + seeds, mean)));
    }
}
