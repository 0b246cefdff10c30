package org.prilora.samples.finetune;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.bert.BertWeights;
import org.prilora.config.PruningMode;
import org.prilora.config.RankSchedule;
import org.prilora.samples.data.AcceptabilityData;
import org.prilora.samples.data.LanguageToolAcceptability;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * The project's main job: fine-tunes all-MiniLM-L6-v2 on the LanguageTool grammatical-acceptability data with
 * PRILoRA (or, {@code --method}, LoRA, the paper's two ablations, persistent-mask pruning, full fine-tuning or a
 * frozen encoder plus classifier), evaluates accuracy next to the majority-class baseline, Matthews correlation and
 * the confusion matrix on dev and test, and writes the adapter, {@code metrics.json} and charts to {@code --out}.
 * {@code --compare} runs every method over several seeds and writes mean ± std tables and paired differences.
 *
 * <p>The default run trains on the whole training split with its natural class shares (one epoch of 650 steps) and
 * finishes within ten minutes on a 2-core CPU, {@code mvn install} included. Predictions use the training split's
 * class prior ({@link ClassPrior}): a model trained on other shares (a balanced sample, a class-weighted loss) has
 * its classifier bias corrected by Bayes' rule; dev and test are never used to set anything. The pruning defaults
 * come from the dev-split ablation recorded in {@code docs/ablation.md}.
 *
 * <p>Through Maven ({@code exec:exec} runs {@code java} with the arguments configured in the root pom.xml, and
 * {@code -Dexec.args} <em>replaces</em> that whole argument list):
 * <pre>
 * mvn -B -q -pl samples initialize exec:exec            # default run (sample.main points here)
 * mvn -B -q -pl samples initialize exec:exec -Dexec.args="-Xmx8g -classpath %classpath \
 *     org.prilora.samples.finetune.AcceptabilityFineTune --compare --jobs 2"
 * </pre>
 */
@Command(name = "AcceptabilityFineTune", mixinStandardHelpOptions = true, sortOptions = false,
        version = "AcceptabilityFineTune 0.1.0 (PRILoRA for DL4J 1.0.0-M2.1)",
        description = {
                "Fine-tunes all-MiniLM-L6-v2 on LanguageTool's English grammatical-acceptability examples with PRILoRA, "
                        + "LoRA, their ablations, full fine-tuning or a frozen-encoder classifier; reports dev/test "
                        + "accuracy (next to the majority class), Matthews correlation (MCC) and the confusion matrix.",
                ""},
        footer = {"",
                "Through Maven, -Dexec.args replaces the java command line configured in the pom, so give it whole:",
                // picocli formats footers with String.format: %% prints one %
                "  mvn -B -q -o -pl samples initialize exec:exec -Dexec.args=\"-Xmx8g -classpath %%classpath "
                        + "org.prilora.samples.finetune.AcceptabilityFineTune --compare --jobs 2\"",
                "Defaults of the pruning options come from the dev-split ablation in docs/ablation.md."})
public final class AcceptabilityFineTune implements Callable<Integer> {

    // Defaults; the pruning ones were chosen by the dev-only ablation (docs/ablation.md).
    static final String DEFAULT_TRAIN_SIZE = "0";
    static final String DEFAULT_EPOCHS = "1";
    static final String DEFAULT_BATCH_SIZE = "32";
    static final String DEFAULT_LR = "1e-3";
    static final String DEFAULT_FULL_LR = "3e-5";
    static final String DEFAULT_RANKS = "4:12";
    static final String DEFAULT_LORA_RANK = "8";
    static final String DEFAULT_ALPHA = "16";
    static final String DEFAULT_PRUNE_FRACTION = "0.1";
    static final String DEFAULT_PRUNE_INTERVAL = "10";
    static final String DEFAULT_PRUNE_START = "10";
    static final String DEFAULT_EMA_BETA = "0.99";
    static final String DEFAULT_SEED = "1";
    static final String DEFAULT_MAX_LENGTH = "64";

    /** Number of adapted blocks of MiniLM: an explicit rank list must have this many entries. */
    static final int BLOCKS = 6;

    @Spec
    CommandSpec spec;

    @Mixin
    RunOptions training;

    @Option(names = "--balanced", negatable = true, defaultValue = "false", fallbackValue = "true",
            description = "Draw the training sentences half acceptable, half unacceptable (default: ${DEFAULT-VALUE}: "
                    + "the split's ~74/26 class shares). Dev and test are never rebalanced; predictions are always "
                    + "corrected to the training split's class prior.")
    boolean balanced;

    @Option(names = "--class-weights", negatable = true, defaultValue = "false", fallbackValue = "true",
            description = "Weigh each class's loss by n / (2 n_class) of the training sample (default: "
                    + "${DEFAULT-VALUE}); predictions are corrected back to the training split's class prior.")
    boolean classWeights;

    @Option(names = "--full-lr", defaultValue = DEFAULT_FULL_LR, paramLabel = "RATE",
            description = "Adam learning rate of full fine-tuning (--method full), in (0, 1) (default: ${DEFAULT-VALUE}, "
                    + "chosen on dev: docs/ablation.md).")
    double fullLr;

    @Option(names = "--ranks", defaultValue = DEFAULT_RANKS, converter = RanksConverter.class, paramLabel = "SCHEDULE",
            description = "PRILoRA ranks over the 6 blocks, bottom to top: 'start:end' (linear), 'r' (uniform) or "
                    + "'r0,...,r5' (default: ${DEFAULT-VALUE}).")
    RankSchedule ranks;

    @Option(names = "--lora-rank", defaultValue = DEFAULT_LORA_RANK, paramLabel = "R",
            description = "Uniform rank of the LoRA baseline, 1..384 (default: ${DEFAULT-VALUE}, the mean of 4:12: the "
                    + "same trainable budget).")
    int loraRank;

    @Option(names = "--alpha", defaultValue = DEFAULT_ALPHA, paramLabel = "ALPHA",
            description = "LoRA alpha, > 0; scale alpha/r (default: ${DEFAULT-VALUE}).")
    double alpha;

    @Option(names = "--prune-fraction", defaultValue = DEFAULT_PRUNE_FRACTION, paramLabel = "GAMMA",
            description = "Fraction of every row of A pruned per pruning step, in [0, 1) (default: ${DEFAULT-VALUE}).")
    double pruneFraction;

    @Option(names = "--prune-interval", defaultValue = DEFAULT_PRUNE_INTERVAL, paramLabel = "STEPS",
            description = "Optimizer steps between pruning steps, >= 1 (default: ${DEFAULT-VALUE}).")
    int pruneInterval;

    @Option(names = "--prune-start", defaultValue = DEFAULT_PRUNE_START, paramLabel = "STEP",
            description = "First step (1-based) that may prune, >= 1 (default: ${DEFAULT-VALUE}).")
    long pruneStart;

    @Option(names = "--ema-beta", defaultValue = DEFAULT_EMA_BETA, paramLabel = "BETA",
            description = "EMA coefficient of the input-norm statistics, in [0, 1) (default: ${DEFAULT-VALUE}).")
    double emaBeta;

    @Option(names = "--prune-mode", defaultValue = "REGROW", paramLabel = "MODE",
            description = "REGROW (pruned entries may grow back) or PERSISTENT_MASK (default: ${DEFAULT-VALUE}).")
    PruningMode pruneMode;

    @Option(names = "--out", defaultValue = "finetune-output", paramLabel = "DIR",
            description = "Output folder (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--workers", defaultValue = "1", paramLabel = "N",
            description = "Synchronous data-parallel workers of an adapter run, one thread each, 1..64 (default: "
                    + "${DEFAULT-VALUE}); the same global batches and, up to float rounding, the same result.")
    int workers;

    @Option(names = "--spark", paramLabel = "MASTER",
            description = "Train adapter runs on a Spark cluster (master URL: local[N], spark://host:port, ...): the "
                    + "executors compute the shards, this JVM keeps the network and takes the steps; the same result as "
                    + "--workers. Needs the samples/spark module (README \"Scale out\").")
    String spark;

    @Mixin
    CompareOptions grid;


    private final PrintStream stdout;
    private String commandLine = "AcceptabilityFineTune";

    /** A command printing to {@link System#out}. */
    public AcceptabilityFineTune() {
        this(System.out);
    }

    AcceptabilityFineTune(PrintStream stdout) {
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
        System.exit(execute(args));
    }

    /**
     * Parses and runs, returning the exit code (0 ok, 2 bad usage, 1 failure) instead of exiting.
     *
     * @param args command-line arguments
     * @return exit code
     */
    public static int execute(String... args) {
        System.setProperty("java.awt.headless", "true"); // charts render off-screen, also on machines without X
        // A blank argument is what an empty Maven property expands to; it is never a meaningful option.
        String[] a = Arrays.stream(args).filter(s -> !s.isBlank()).toArray(String[]::new);
        AcceptabilityFineTune app = new AcceptabilityFineTune();
        app.commandLine = "AcceptabilityFineTune" + (a.length == 0 ? "" : " " + String.join(" ", a));
        return commandLine(app).execute(a);
    }

    /** The picocli command line for an instance (case-insensitive enum values). */
    static CommandLine commandLine(AcceptabilityFineTune app) {
        return new CommandLine(app).setCaseInsensitiveEnumValuesAllowed(true);
    }

    /**
     * Checks every option's range and builds the settings of a run.
     *
     * @return the settings (method and seed from {@code --method} and {@code --seed})
     * @throws ParameterException naming the option, the value and the allowed range
     */
    FineTuneSettings settings() {
        training.check(spec);
        grid.check(spec);
        check(fullLr > 0 && fullLr < 1, "--full-lr", fullLr, "a number in (0, 1)");
        check(workers >= 1 && workers <= 64, "--workers", workers, "1..64");
        check(spark == null || workers == 1, "--workers", workers, "1 (the default) with --spark: the cluster's cores are the workers");
        check(spark == null || !spark.isBlank(), "--spark", "'" + spark + "'", "a Spark master URL such as local[2] or spark://host:7077");
        check(loraRank >= 1 && loraRank <= 384, "--lora-rank", loraRank, "1..384");
        check(alpha > 0 && Double.isFinite(alpha), "--alpha", alpha, "a finite number > 0");
        check(pruneFraction >= 0 && pruneFraction < 1, "--prune-fraction", pruneFraction, "[0, 1)");
        check(pruneInterval >= 1, "--prune-interval", pruneInterval, ">= 1");
        check(pruneStart >= 1, "--prune-start", pruneStart, ">= 1");
        check(emaBeta >= 0 && emaBeta < 1, "--ema-beta", emaBeta, "[0, 1)");
        try {
            int[] r = ranks.ranks(BLOCKS);
            for (int x : r) {
                check(x <= 384, "--ranks", ranks, "ranks 1..384 (the hidden size)");
            }
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "Invalid value for option '--ranks': " + ranks
                    + " (allowed: 'start:end', 'r' or exactly " + BLOCKS + " comma-separated ranks, one per block)");
        }
        return new FineTuneSettings(training.method, training.seed, training.trainSize, training.epochs,
                training.batchSize, training.lr, fullLr, ranks, loraRank, alpha, pruneFraction, pruneInterval, pruneStart,
                emaBeta, pruneMode, training.maxLength, !training.skipTest, balanced, classWeights);
    }

    private void check(boolean ok, String option, Object value, String allowed) {
        OptionChecks.check(spec, ok, option, value, allowed);
    }

    @Override
    public Integer call() throws Exception {
        FineTuneSettings s = settings();
        Stopwatch total = Stopwatch.start();
        Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
        stdout.println(commandLine);
        ClusterBackend cluster = null;
        if (spark != null) {
            ClusterBackend.Factory factory;
            try {
                factory = ClusterBackend.factory(spark);
            } catch (java.util.NoSuchElementException e) {
                throw new ParameterException(spec.commandLine(), e.getMessage());
            }
            cluster = factory.connect(spark);
            stdout.println(cluster.describe());
        }
        if ((cluster != null || workers > 1) && (grid.compare || !training.method.usesAdapters())) {
            stdout.println("data-parallel training applies to the adapter methods; full and head-only runs train in this JVM");
        }
        try (ClusterBackend c = cluster) {
            return run(s, total, cluster);
        }
    }

    private int run(FineTuneSettings s, Stopwatch total, ClusterBackend cluster) throws Exception {
        AcceptabilityData data = LanguageToolAcceptability.load();
        stdout.print(data.summary());
        BertWeights weights = FineTuneRunner.loadWeights();
        long prilora = ParameterBudget.trainable(weights.config(), s.ranks(), 2);
        long lora = ParameterBudget.trainable(weights.config(), RankSchedule.uniform(s.loraRank()), 2);
        stdout.printf(Locale.ROOT, "trainable parameters: prilora (ranks %s = %s) %,d | lora (rank %d) %,d | head-only %,d%s%n",
                s.ranks(), Arrays.toString(s.ranks().ranks(BLOCKS)), prilora, s.loraRank(), lora,
                ParameterBudget.head(weights.config(), 2),
                prilora == lora ? "  (equal budget)" : "  (WARNING: budgets differ by " + (prilora - lora) + ")");
        ProgressBars bars = grid.bars(stdout); // several runs at once print log lines instead of bars redrawn in place
        try (FineTuneRunner runner = new FineTuneRunner(data, weights, bars, stdout, workers, cluster)) {
            if (grid.compare) {
                List<RunResult> runs = grid.runGrid(runner, s, out, stdout, commandLine,
                        (l, command) -> CompareReport.write(out, l, s, grid.seeds, command));
                stdout.println();
                stdout.print(CompareReport.markdown(runs, s, grid.seeds, commandLine));
            } else {
                runner.run(s, out);
            }
        }
        stdout.printf(Locale.ROOT, "outputs in %s; total %.1f s wall, %.1f s process CPU%n", out.toAbsolutePath(),
                total.wallSeconds(), Stopwatch.processCpuNanos() / 1e9);
        return 0;
    }

    /** Converts {@code --method} values. */
    static final class MethodConverter implements CommandLine.ITypeConverter<Method> {
        @Override
        public Method convert(String value) {
            try {
                return Method.parse(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }

    /** Converts {@code --ranks} values. */
    static final class RanksConverter implements CommandLine.ITypeConverter<RankSchedule> {
        @Override
        public RankSchedule convert(String value) {
            try {
                return RankSchedule.parse(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException("'" + value + "' (allowed: 'start:end' linear, 'r' uniform "
                        + "or 'r0,...,r5'; every rank >= 1): " + e.getMessage());
            }
        }
    }
}
