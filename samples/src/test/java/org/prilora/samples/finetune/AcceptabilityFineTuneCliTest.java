package org.prilora.samples.finetune;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.prilora.config.PruningMode;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Command-line parsing, defaults and the messages for bad values (option, value, allowed range). */
class AcceptabilityFineTuneCliTest {

    /** Parses and validates; nothing is loaded or trained. */
    private static FineTuneSettings parse(String... args) {
        AcceptabilityFineTune app = new AcceptabilityFineTune();
        AcceptabilityFineTune.commandLine(app).parseArgs(args);
        return app.settings();
    }

    private static AcceptabilityFineTune parsed(String... args) {
        AcceptabilityFineTune app = new AcceptabilityFineTune();
        AcceptabilityFineTune.commandLine(app).parseArgs(args);
        return app;
    }

    /** Runs the command as {@code main} would (without exiting); returns exit code, stdout and stderr. */
    private static String[] run(String... args) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        AcceptabilityFineTune app = new AcceptabilityFineTune(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cl = AcceptabilityFineTune.commandLine(app);
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute(args);
        return new String[]{Integer.toString(code), out + bytes.toString(StandardCharsets.UTF_8), err.toString()};
    }

    @Test
    void defaults() {
        FineTuneSettings s = parse();
        assertThat(s.method()).isEqualTo(Method.PRILORA);
        assertThat(s.seed()).isEqualTo(Long.parseLong(AcceptabilityFineTune.DEFAULT_SEED));
        assertThat(s.trainSize()).isEqualTo(Integer.parseInt(AcceptabilityFineTune.DEFAULT_TRAIN_SIZE));
        assertThat(s.epochs()).isEqualTo(Integer.parseInt(AcceptabilityFineTune.DEFAULT_EPOCHS));
        assertThat(s.batchSize()).isEqualTo(32);
        assertThat(s.ranks()).isEqualTo(RankSchedule.linear(4, 12));
        assertThat(s.loraRank()).isEqualTo(8);
        assertThat(s.maxLength()).isEqualTo(64);
        assertThat(s.pruneMode()).isEqualTo(PruningMode.REGROW);
        assertThat(s.pruneFraction()).isEqualTo(Double.parseDouble(AcceptabilityFineTune.DEFAULT_PRUNE_FRACTION));
        assertThat(s.pruneInterval()).isEqualTo(Integer.parseInt(AcceptabilityFineTune.DEFAULT_PRUNE_INTERVAL));
        assertThat(s.emaBeta()).isEqualTo(Double.parseDouble(AcceptabilityFineTune.DEFAULT_EMA_BETA));
        assertThat(s.evaluateTest()).isTrue();
        // the whole train split with its natural class shares, no class weights
        assertThat(s.trainSize()).isZero();
        assertThat(s.balanced()).isFalse();
        assertThat(s.classWeights()).isFalse();
        assertThat(s.fullLearningRate()).isEqualTo(Double.parseDouble(AcceptabilityFineTune.DEFAULT_FULL_LR));
        assertThat(parse("--balanced").balanced()).isTrue();
        AcceptabilityFineTune app = parsed();
        assertThat(app.grid.compare).isFalse();
        assertThat(app.grid.resume).isFalse();
        assertThat(app.grid.jobs).isEqualTo(1);
        assertThat(app.grid.seeds).containsExactly(1L, 2L, 3L, 4L, 5L);
        assertThat(app.grid.compareMethods).containsExactly(Method.HEAD_ONLY, Method.FULL, Method.LORA, Method.PRILORA,
                Method.LINEAR_UNPRUNED, Method.UNIFORM_PRUNED, Method.PRILORA_PERSISTENT);
        assertThat(app.out).isEqualTo(Path.of("finetune-output"));
    }

    @Test
    void everyOption() {
        AcceptabilityFineTune app = parsed("--method", "lora", "--train-size", "100", "--epochs", "2", "--batch-size", "8",
                "--lr", "5e-4", "--ranks", "2:6", "--lora-rank", "4", "--alpha", "8", "--prune-fraction", "0.5",
                "--prune-interval", "50", "--prune-start", "5", "--ema-beta", "0.99", "--prune-mode", "persistent_mask",
                "--seed", "9", "--out", "x/y", "--max-length", "32", "--compare", "--seeds", "4,5,6", "--skip-test",
                "--balanced", "--class-weights", "--full-lr", "3e-5", "--jobs", "2", "--compare-methods", "lora,full");
        FineTuneSettings s = app.settings();
        assertThat(s).isEqualTo(new FineTuneSettings(Method.LORA, 9, 100, 2, 8, 5e-4, 3e-5, RankSchedule.linear(2, 6), 4,
                8, 0.5, 50, 5, 0.99, PruningMode.PERSISTENT_MASK, 32, false, true, true));
        assertThat(app.grid.jobs).isEqualTo(2);
        assertThat(app.grid.compareMethods).containsExactly(Method.LORA, Method.FULL);
        assertThat(app.grid.compare).isTrue();
        assertThat(app.grid.seeds).containsExactly(4L, 5L, 6L);
        assertThat(app.out).isEqualTo(Path.of("x/y"));
    }

    @Test
    void methodNamesAndWhatEachMethodTrains() {
        assertThat(parse("--method", "HEAD-ONLY").method()).isEqualTo(Method.HEAD_ONLY);
        assertThat(parse("--method", "head_only").method()).isEqualTo(Method.HEAD_ONLY);
        assertThat(parse("--method", "PriLoRA").method()).isEqualTo(Method.PRILORA);

        FineTuneSettings p = parse("--prune-fraction", "0.5", "--prune-interval", "20");
        assertThat(p.priLoraConfig().rankSchedule()).isEqualTo(RankSchedule.linear(4, 12));
        assertThat(p.priLoraConfig().pruning().fraction()).isEqualTo(0.5);
        assertThat(p.priLoraConfig().pruning().interval()).isEqualTo(20);
        assertThat(p.priLoraConfig().modulesToSave()).containsExactly("classifier");
        FineTuneSettings l = p.withMethod(Method.LORA);
        assertThat(l.priLoraConfig().rankSchedule()).isEqualTo(RankSchedule.uniform(8));
        assertThat(l.priLoraConfig().pruning()).isEqualTo(PruningSchedule.none());
        assertThatThrownBy(() -> p.withMethod(Method.HEAD_ONLY).priLoraConfig()).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> p.withMethod(Method.FULL).priLoraConfig()).isInstanceOf(IllegalStateException.class);
        // the paper's ablations: each removes one of PRILoRA's two ingredients
        FineTuneSettings lin = p.withMethod(Method.LINEAR_UNPRUNED);
        assertThat(lin.priLoraConfig().rankSchedule()).isEqualTo(RankSchedule.linear(4, 12));
        assertThat(lin.priLoraConfig().pruning()).isEqualTo(PruningSchedule.none());
        FineTuneSettings uni = p.withMethod(Method.UNIFORM_PRUNED);
        assertThat(uni.priLoraConfig().rankSchedule()).isEqualTo(RankSchedule.uniform(8));
        assertThat(uni.priLoraConfig().pruning().fraction()).isEqualTo(0.5);
        FineTuneSettings per = p.withMethod(Method.PRILORA_PERSISTENT);
        assertThat(per.priLoraConfig().adapter().pruningMode()).isEqualTo(PruningMode.PERSISTENT_MASK);
        assertThat(p.priLoraConfig().adapter().pruningMode()).isEqualTo(PruningMode.REGROW);
        assertThat(p.withMethod(Method.FULL).runLearningRate()).isEqualTo(3e-5);
        assertThat(p.runLearningRate()).isEqualTo(1e-3);
    }

    static Stream<Arguments> badValues() {
        return Stream.of(
                Arguments.of(List.of("--epochs", "0"), List.of("'--epochs'", ": 0", "1..1000")),
                Arguments.of(List.of("--epochs", "abc"), List.of("'--epochs'", "abc")),
                Arguments.of(List.of("--batch-size", "0"), List.of("'--batch-size'", ": 0", "1..1024")),
                Arguments.of(List.of("--train-size", "-5"), List.of("'--train-size'", "-5", ">= 1")),
                Arguments.of(List.of("--lr", "0"), List.of("'--lr'", "0.0", "(0, 1)")),
                Arguments.of(List.of("--lr", "NaN"), List.of("'--lr'", "NaN", "(0, 1)")),
                Arguments.of(List.of("--lr", "2"), List.of("'--lr'", "2.0", "(0, 1)")),
                Arguments.of(List.of("--alpha", "-1"), List.of("'--alpha'", "-1.0", "> 0")),
                Arguments.of(List.of("--lora-rank", "0"), List.of("'--lora-rank'", ": 0", "1..384")),
                Arguments.of(List.of("--prune-fraction", "1"), List.of("'--prune-fraction'", "1.0", "[0, 1)")),
                Arguments.of(List.of("--prune-interval", "0"), List.of("'--prune-interval'", ": 0", ">= 1")),
                Arguments.of(List.of("--prune-start", "0"), List.of("'--prune-start'", ": 0", ">= 1")),
                Arguments.of(List.of("--ema-beta", "1"), List.of("'--ema-beta'", "1.0", "[0, 1)")),
                Arguments.of(List.of("--max-length", "1"), List.of("'--max-length'", ": 1", "2..512")),
                Arguments.of(List.of("--max-length", "1000"), List.of("'--max-length'", "1000", "2..512")),
                Arguments.of(List.of("--ranks", "0:12"), List.of("'--ranks'", "0:12", "rank >= 1")),
                Arguments.of(List.of("--ranks", "abc"), List.of("'--ranks'", "abc", "start:end")),
                Arguments.of(List.of("--ranks", "4,8"), List.of("'--ranks'", "4,8", "exactly 6")),
                Arguments.of(List.of("--ranks", "400"), List.of("'--ranks'", "400", "1..384")),
                Arguments.of(List.of("--method", "bert"), List.of("'--method'", "bert", "prilora|lora|linear-unpruned|uniform-pruned|prilora-persistent|full|head-only")),
                Arguments.of(List.of("--jobs", "0"), List.of("'--jobs'", "0", "1..64")),
                Arguments.of(List.of("--workers", "65"), List.of("'--workers'", "65", "1..64")),
                Arguments.of(List.of("--spark", "local[2]", "--workers", "2"), List.of("'--workers'", "2", "with --spark")),
                Arguments.of(List.of("--spark", " "), List.of("'--spark'", "master URL")),
                Arguments.of(List.of("--full-lr", "2"), List.of("'--full-lr'", "2", "(0, 1)")),
                Arguments.of(List.of("--compare-methods", "lora,lora"), List.of("'--compare-methods'", "distinct")),
                Arguments.of(List.of("--prune-mode", "sometimes"), List.of("'--prune-mode'", "sometimes", "REGROW")),
                Arguments.of(List.of("--seeds", "1,1"), List.of("'--seeds'", "[1, 1]", "distinct")),
                Arguments.of(List.of("--seeds", "1,x"), List.of("'--seeds'", "x")),
                Arguments.of(List.of("--no-such-option"), List.of("--no-such-option")));
    }

    @ParameterizedTest
    @MethodSource("badValues")
    void badValuesAreRejectedWithOptionValueAndRange(List<String> args, List<String> expected) {
        assertThatThrownBy(() -> parse(args.toArray(String[]::new)))
                .isInstanceOf(CommandLine.ParameterException.class)
                .satisfies(e -> assertThat(e.getMessage()).contains(expected));
    }

    @Test
    void badValueExitsWithUsageCodeBeforeLoadingAnything() {
        String[] r = run("--epochs", "0");
        assertThat(r[0]).isEqualTo("2");
        assertThat(r[2]).contains("Invalid value for option '--epochs': 0 (allowed: 1..1000)").contains("Usage:");
        assertThat(r[1]).doesNotContain("Acceptability data");
    }

    @Test
    void sparkWithoutTheSparkModuleSaysWhereItIsBeforeLoadingAnything() {
        // the main job's module does not bring Spark: only samples/spark does
        assertThatThrownBy(() -> Class.forName("org.apache.spark.SparkContext")).isInstanceOf(ClassNotFoundException.class);
        String[] r = run("--spark", "local[2]");
        assertThat(r[0]).isEqualTo("2");
        assertThat(r[2]).contains("--spark local[2]: no cluster backend on the class path", "samples/spark");
        assertThat(r[1]).doesNotContain("Acceptability data");
    }

    @Test
    void helpListsEveryOption() {
        String[] r = run("--help");
        assertThat(r[0]).isEqualTo("0");
        assertThat(r[1]).contains("--method", "--train-size", "--epochs", "--batch-size", "--lr", "--ranks", "--alpha",
                "--prune-fraction", "--prune-interval", "--prune-start", "--ema-beta", "--prune-mode", "--seed", "--out",
                "--max-length", "--compare", "--seeds", "--workers", "--spark", "--skip-test", "--lora-rank", "--[no-]balanced", "exec.args", "default: 4:12");
    }

    @Test
    void blankArgumentsFromAnEmptyMavenPropertyAreIgnored() {
        assertThat(AcceptabilityFineTune.execute("", "--version")).isZero();
    }
}
