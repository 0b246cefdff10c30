package org.prilora.samples.finetune;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.bert.BertWeights;
import org.prilora.config.PruningMode;
import org.prilora.config.RankSchedule;
import org.prilora.samples.data.LanguageToolErrorDetection;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * The second task of the comparison: grammatical error detection, a token task. Fine-tunes all-MiniLM-L6-v2 with a
 * token-classification head to tag every word of LanguageTool's example sentences "ok" or "error"
 * ({@link LanguageToolErrorDetection}) with PRILoRA or (as {@code --method}) any method of the acceptability main job,
 * and reports word-level and span-level precision, recall and F1 of "error" next to the majority baseline.
 * {@code --compare} runs every method over several seeds and writes mean ± std tables and paired differences
 * ({@link ErrorDetectionReport}). The adapter settings (ranks, LoRA rank, alpha, pruning) are the main job's
 * defaults ({@link AcceptabilityFineTune}), so both tasks compare the same methods.
 *
 * <pre>
 * mvn -B -q -pl samples initialize exec:exec -Dexec.args="-Xmx3g -classpath %classpath \
 *     org.prilora.samples.finetune.ErrorDetectionFineTune --compare --jobs 2"
 * </pre>
 */
@Command(name = "ErrorDetectionFineTune", mixinStandardHelpOptions = true, sortOptions = false,
        version = "ErrorDetectionFineTune 0.1.0 (PRILoRA for DL4J 1.0.0-M2.1)",
        description = {"Fine-tunes all-MiniLM-L6-v2 with a token head on LanguageTool's English grammatical-error "
                + "detection (every word ok or error) with PRILoRA, LoRA, their ablations, full fine-tuning or a frozen "
                + "encoder; reports word and span F1 of \"error\" on dev and test. Ranks, alpha and pruning are the "
                + "acceptability main job's defaults.", ""})
public final class ErrorDetectionFineTune implements Callable<Integer> {

    /** Full fine-tuning's learning rate for this task, chosen on dev (docs/finetune-results/error-detection). */
    static final String DEFAULT_FULL_LR = "1e-4";
    static final String DEFAULT_ERROR_WEIGHT = "3";

    @Spec
    CommandSpec spec;

    @Mixin
    RunOptions training;

    @Option(names = "--full-lr", defaultValue = DEFAULT_FULL_LR, paramLabel = "RATE",
            description = "Adam learning rate of full fine-tuning, in (0, 1) (default: ${DEFAULT-VALUE}, chosen on dev).")
    double fullLr;

    @Option(names = "--error-weight", defaultValue = DEFAULT_ERROR_WEIGHT, paramLabel = "W",
            description = "Weight of the \"error\" label in the token cross-entropy (\"ok\" has 1), a finite number > 0 "
                    + "(default: ${DEFAULT-VALUE}: about a tenth of the words are errors).")
    double errorWeight;

    @Option(names = "--out", defaultValue = "finetune-output/error-detection", paramLabel = "DIR",
            description = "Output folder (default: ${DEFAULT-VALUE}).")
    Path out;

    @Mixin
    CompareOptions grid;

    private final PrintStream stdout;
    private String commandLine = "ErrorDetectionFineTune";

    ErrorDetectionFineTune(PrintStream stdout) {
        this.stdout = stdout;
    }

    /**
     * Entry point.
     *
     * @param args command-line arguments ({@code --help} lists them)
     */
    public static void main(String[] args) {
        System.setOut(new PrintStream(new LineFilterOutputStream(new java.io.FileOutputStream(java.io.FileDescriptor.out),
                List.of("Added differentiated op")), true, java.nio.charset.StandardCharsets.UTF_8));
        System.exit(execute(System.out, args));
    }

    /**
     * Parses and runs, returning the exit code (0 ok, 2 bad usage, 1 failure) instead of exiting.
     *
     * @param stdout where the output goes
     * @param args   command-line arguments
     * @return exit code
     */
    static int execute(PrintStream stdout, String... args) {
        System.setProperty("java.awt.headless", "true");
        String[] a = Arrays.stream(args).filter(s -> !s.isBlank()).toArray(String[]::new);
        ErrorDetectionFineTune app = new ErrorDetectionFineTune(stdout);
        app.commandLine = "ErrorDetectionFineTune" + (a.length == 0 ? "" : " " + String.join(" ", a));
        return new CommandLine(app).setCaseInsensitiveEnumValuesAllowed(true).execute(a);
    }

    /**
     * Checks every option's range and builds the settings of a run; ranks, LoRA rank, alpha and pruning are the main
     * job's defaults.
     *
     * @throws ParameterException naming the option, the value and the allowed range
     */
    FineTuneSettings settings() {
        training.check(spec);
        grid.check(spec);
        OptionChecks.check(spec, fullLr > 0 && fullLr < 1, "--full-lr", fullLr, "a number in (0, 1)");
        OptionChecks.check(spec, errorWeight > 0 && Double.isFinite(errorWeight), "--error-weight", errorWeight,
                "a finite number > 0");
        return new FineTuneSettings(training.method, training.seed, training.trainSize, training.epochs,
                training.batchSize, training.lr, fullLr,
                RankSchedule.parse(AcceptabilityFineTune.DEFAULT_RANKS),
                Integer.parseInt(AcceptabilityFineTune.DEFAULT_LORA_RANK),
                Double.parseDouble(AcceptabilityFineTune.DEFAULT_ALPHA),
                Double.parseDouble(AcceptabilityFineTune.DEFAULT_PRUNE_FRACTION),
                Integer.parseInt(AcceptabilityFineTune.DEFAULT_PRUNE_INTERVAL),
                Long.parseLong(AcceptabilityFineTune.DEFAULT_PRUNE_START),
                Double.parseDouble(AcceptabilityFineTune.DEFAULT_EMA_BETA), PruningMode.REGROW, training.maxLength,
                !training.skipTest, false, false);
    }

    @Override
    public Integer call() throws Exception {
        FineTuneSettings s = settings();
        Stopwatch total = Stopwatch.start();
        Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
        stdout.println(commandLine);
        LanguageToolErrorDetection.Data data = LanguageToolErrorDetection.load();
        if (s.trainSize() > data.train().size()) {
            throw new ParameterException(spec.commandLine(), "Invalid value for option '--train-size': " + s.trainSize()
                    + " (allowed: 0 (whole train split) .. " + data.train().size() + ", the train split's sentences)");
        }
        stdout.printf(Locale.ROOT, "error detection (%s): train %,d, dev %,d, test %,d sentences; %,d wrong examples in the "
                        + "file, %,d dropped by the cleaning, %,d duplicates%n", data.source(), data.train().size(),
                data.dev().size(), data.test().size(), data.wrongExamples(), data.droppedExamples(), data.duplicates());
        BertWeights weights = FineTuneRunner.loadWeights();
        ProgressBars bars = grid.bars(stdout);
        try (ErrorDetectionRunner runner = new ErrorDetectionRunner(data, weights, bars, stdout, errorWeight)) {
            if (grid.compare) {
                List<ErrorDetectionResult> runs = grid.runGrid(runner, s, out, stdout, commandLine,
                        (l, command) -> ErrorDetectionReport.write(out, l, s, grid.seeds, errorWeight, command));
                stdout.println();
                stdout.print(ErrorDetectionReport.markdown(runs, s, grid.seeds, errorWeight, commandLine));
            } else {
                runner.run(s, out);
            }
        }
        stdout.printf(Locale.ROOT, "outputs in %s; total %.1f s wall, %.1f s process CPU%n", out.toAbsolutePath(),
                total.wallSeconds(), Stopwatch.processCpuNanos() / 1e9);
        return 0;
    }
}
