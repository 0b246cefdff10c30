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
 * The {@code --compare} table of the error-detection task: per method, mean ± sample standard deviation over seeds of
 * word-level and span-level F1 of "error" (plus word precision and recall) on dev and test, trainable parameters,
 * saved file size and training time; per-seed paired differences of word F1 against LoRA and of PRILoRA against its
 * ablations ({@link CompareReport.Paired}); how much of each pruning survives. Written as {@value CompareReport#JSON},
 * {@value CompareReport#MARKDOWN} and {@value CompareReport#LOSS_CHART}, as for acceptability.
 */
public final class ErrorDetectionReport {

    private ErrorDetectionReport() {
    }

    private static ToDoubleFunction<ErrorDetectionResult> devWordF1() {
        return r -> r.dev().word().f1();
    }

    /**
     * The content of compare.json.
     *
     * @param runs     every run
     * @param settings shared settings
     * @param seeds    the seeds
     * @param errorWeight the loss weight of "error"
     * @return an ordered map
     */
    public static Map<String, Object> toJson(List<ErrorDetectionResult> runs, FineTuneSettings settings, List<Long> seeds,
                                             double errorWeight) {
        Map<String, Object> shared = new LinkedHashMap<>(settings.withMethod(Method.PRILORA).toMap());
        shared.remove("method");
        shared.remove("seed");
        shared.remove("balanced");
        shared.remove("classWeights");
        shared.put("loraRank", settings.loraRank());
        shared.put("fullLearningRate", settings.fullLearningRate());
        shared.put("errorWeight", errorWeight);
        List<Map<String, Object>> methods = new ArrayList<>();
        for (Map.Entry<Method, List<ErrorDetectionResult>> e : CompareReport.byMethod(runs).entrySet()) {
            List<ErrorDetectionResult> l = e.getValue();
            boolean test = l.stream().allMatch(r -> r.test() != null);
            List<Map<String, Object>> perSeed = new ArrayList<>();
            for (ErrorDetectionResult r : l) {
                perSeed.add(Json.object("seed", r.settings().seed(),
                        "devWordF1", RunOutputs.round(r.dev().word().f1(), 6),
                        "devSpanF1", RunOutputs.round(r.dev().span().f1(), 6),
                        "testWordF1", r.test() == null ? null : RunOutputs.round(r.test().word().f1(), 6),
                        "testSpanF1", r.test() == null ? null : RunOutputs.round(r.test().span().f1(), 6),
                        "trainSeconds", RunOutputs.round(r.trainSeconds(), 2),
                        "pruningSteps", r.pruningSteps(),
                        "pruningSurvival", RunOutputs.survival(r.survival())));
            }
            methods.add(Json.object("method", e.getKey().cliName(), "runs", l.size(),
                    "devWordF1", CompareReport.stat(l, r -> r.dev().word().f1()).toMap(),
                    "devSpanF1", CompareReport.stat(l, r -> r.dev().span().f1()).toMap(),
                    "devWordPrecision", CompareReport.stat(l, r -> r.dev().word().precision()).toMap(),
                    "devWordRecall", CompareReport.stat(l, r -> r.dev().word().recall()).toMap(),
                    "testWordF1", test ? CompareReport.stat(l, r -> r.test().word().f1()).toMap() : null,
                    "testSpanF1", test ? CompareReport.stat(l, r -> r.test().span().f1()).toMap() : null,
                    "trainableParams", l.get(0).trainableParams(),
                    "allParams", l.get(0).allParams(),
                    "savedFile", l.get(0).savedFile(),
                    "savedFileBytes", CompareReport.stat(l, ErrorDetectionResult::savedFileBytes).toMap(),
                    "trainSeconds", CompareReport.stat(l, ErrorDetectionResult::trainSeconds).toMap(),
                    "trainCpuSeconds", CompareReport.stat(l, ErrorDetectionResult::trainCpuSeconds).toMap(),
                    "steps", l.get(0).steps(),
                    "perSeed", perSeed));
        }
        boolean test = runs.stream().allMatch(r -> r.test() != null);
        return Json.object("task", ErrorDetectionRunner.TASK, "settings", shared, "seeds", seeds, "methods", methods,
                "pairedDevWordF1", CompareReport.pairs(runs, devWordF1()).stream().map(CompareReport.Paired::toMap).toList(),
                "pairedDevSpanF1", CompareReport.pairs(runs, (ErrorDetectionResult r) -> r.dev().span().f1()).stream()
                        .map(CompareReport.Paired::toMap).toList(),
                "pairedTestWordF1", test ? CompareReport.pairs(runs, (ErrorDetectionResult r) -> r.test().word().f1()).stream()
                        .map(CompareReport.Paired::toMap).toList() : null);
    }

    /**
     * The markdown report.
     *
     * @param runs        every run
     * @param settings    shared settings
     * @param seeds       the seeds
     * @param errorWeight the loss weight of "error"
     * @param command     the command line that produced it
     * @return markdown text
     */
    public static String markdown(List<ErrorDetectionResult> runs, FineTuneSettings settings, List<Long> seeds,
                                  double errorWeight, String command) {
        StringBuilder sb = new StringBuilder();
        sb.append("# PRILoRA, LoRA, their ablations and the baselines on LanguageTool grammatical error detection "
                + "(all-MiniLM-L6-v2, token classification)\n\n");
        sb.append(String.format(Locale.ROOT, "Seeds %s; %s training sentences, %d epoch(s), batch %d, Adam lr %s (full "
                        + "fine-tuning %s), max length %d, loss weight of \"error\" %s. LoRA: uniform rank %d; PRILoRA: ranks "
                        + "%s, pruning fraction %s every %d steps from step %d, EMA β %s, %s. Alpha %s (scale alpha/r). "
                        + "F1 of the \"error\" label: word level (every word inside a marked error span) and span level "
                        + "(maximal runs of error words, exact match). Mean ± sample std over seeds.%n%n",
                seeds, settings.trainSize() == 0 ? "all" : String.valueOf(settings.trainSize()), settings.epochs(),
                settings.batchSize(), settings.learningRate(), settings.fullLearningRate(), settings.maxLength(), errorWeight,
                settings.loraRank(), settings.ranks(), settings.pruneFraction(), settings.pruneInterval(),
                settings.pruneStart(), settings.emaBeta(), settings.pruneMode(), settings.alpha()));
        sb.append("| method | dev word F1 | dev span F1 | dev word P / R | test word F1 | test span F1 | trainable params "
                + "| saved file | train s |\n");
        sb.append("|---|---|---|---|---|---|---:|---:|---|\n");
        for (Map.Entry<Method, List<ErrorDetectionResult>> e : CompareReport.byMethod(runs).entrySet()) {
            List<ErrorDetectionResult> l = e.getValue();
            boolean test = l.stream().allMatch(r -> r.test() != null);
            sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %.3f / %.3f | %s | %s | %,d | %s | %s |%n",
                    e.getKey().cliName(),
                    CompareReport.stat(l, r -> r.dev().word().f1()).format(3),
                    CompareReport.stat(l, r -> r.dev().span().f1()).format(3),
                    CompareReport.stat(l, r -> r.dev().word().precision()).mean(),
                    CompareReport.stat(l, r -> r.dev().word().recall()).mean(),
                    test ? CompareReport.stat(l, r -> r.test().word().f1()).format(3) : "n/a",
                    test ? CompareReport.stat(l, r -> r.test().span().f1()).format(3) : "n/a",
                    l.get(0).trainableParams(),
                    CompareReport.bytes(CompareReport.stat(l, ErrorDetectionResult::savedFileBytes).mean()) + " ("
                            + l.get(0).savedFile() + ")",
                    CompareReport.stat(l, ErrorDetectionResult::trainSeconds).format(0)));
        }
        ErrorDetectionResult any = runs.get(0);
        sb.append(String.format(Locale.ROOT, "%nMajority baseline (every word \"ok\"): F1 0, word accuracy dev %.4f, test %s "
                        + "(%,d dev words).%n", any.dev().majorityAccuracy(),
                any.test() == null ? "n/a" : String.format(Locale.ROOT, "%.4f", any.test().majorityAccuracy()),
                any.dev().words()));

        boolean test = runs.stream().allMatch(r -> r.test() != null);
        List<CompareReport.Paired> dev = CompareReport.pairs(runs, devWordF1());
        List<CompareReport.Paired> span = CompareReport.pairs(runs, (ErrorDetectionResult r) -> r.dev().span().f1());
        List<CompareReport.Paired> tst = test ? CompareReport.pairs(runs, (ErrorDetectionResult r) -> r.test().word().f1())
                : List.of();
        if (!dev.isEmpty()) {
            sb.append("\n**Paired differences in F1** (same seed: same sample, batch order and head initialisation; mean "
                    + "difference, 95 % Student-t interval over seeds, seeds ahead):\n\n");
            sb.append("| comparison | dev word F1 difference | dev span F1 difference | test word F1 difference |\n"
                    + "|---|---|---|---|\n");
            for (int i = 0; i < dev.size(); i++) {
                CompareReport.Paired p = dev.get(i);
                sb.append(String.format(Locale.ROOT, "| %s − %s | %s | %s | %s |%n", p.method().cliName(),
                        p.reference().cliName(), p.format(), span.get(i).format(), test ? tst.get(i).format() : "n/a"));
            }
        }
        sb.append(CompareReport.survivalTable(runs, ErrorDetectionResult::survival));

        sb.append("\nPer seed (dev word F1 / test word F1):\n\n");
        for (Map.Entry<Method, List<ErrorDetectionResult>> e : CompareReport.byMethod(runs).entrySet()) {
            List<String> parts = new ArrayList<>();
            for (ErrorDetectionResult r : e.getValue()) {
                parts.add(String.format(Locale.ROOT, "seed %d %.3f / %s", r.settings().seed(), r.dev().word().f1(),
                        r.test() == null ? "n/a" : String.format(Locale.ROOT, "%.3f", r.test().word().f1())));
            }
            sb.append("- ").append(e.getKey().cliName()).append(": ").append(String.join("; ", parts)).append('\n');
        }
        sb.append("\nHead-only trains only the token head (770 parameters) on the frozen encoder's token states with the "
                + "same batches and learning rate; its saved file is that head. Full fine-tuning trains every weight of the "
                + "six blocks and the head (the embedding tables stay frozen) and saves the whole network. Training time "
                + "excludes evaluation.\n");
        sb.append("\nCommand: `").append(command).append("`\n");
        return sb.toString();
    }

    /**
     * Writes compare.json, compare.md and compare-loss.png into {@code dir}.
     *
     * @param dir         output folder
     * @param runs        every run
     * @param settings    shared settings
     * @param seeds       the seeds
     * @param errorWeight the loss weight of "error"
     * @param command     the command line
     * @throws IOException if writing fails
     */
    public static void write(Path dir, List<ErrorDetectionResult> runs, FineTuneSettings settings, List<Long> seeds,
                             double errorWeight, String command) throws IOException {
        Files.createDirectories(dir);
        Map<String, Object> json = toJson(runs, settings, seeds, errorWeight);
        json.put("command", command);
        Json.write(dir.resolve(CompareReport.JSON), json);
        AtomicFiles.write(dir.resolve(CompareReport.MARKDOWN),
                markdown(runs, settings, seeds, errorWeight, command).getBytes(StandardCharsets.UTF_8));
        AtomicFiles.write(dir.resolve(CompareReport.LOSS_CHART), RunOutputs.png(RunOutputs.lossChart(
                "error detection, mean over seeds " + seeds, CompareReport.meanLosses(runs, ErrorDetectionResult::losses))));
    }
}
