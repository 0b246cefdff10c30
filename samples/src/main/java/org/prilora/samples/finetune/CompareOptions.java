package org.prilora.samples.finetune;

import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;

/**
 * The {@code --compare} options every task's command shares (a picocli mixin), and the grid run with its report
 * rewritten after every finished run.
 */
final class CompareOptions {

    /** Writes a task's compare report for the runs so far. */
    @FunctionalInterface
    interface Report<R> {
        void write(List<R> runs, String command) throws IOException;
    }

    @Option(names = "--compare", description = "Run every --compare-methods method with the same data, steps and --seeds; "
            + "write compare.json, compare.md and compare-loss.png to --out (paired differences against lora), each run "
            + "under --out/runs/.")
    boolean compare;

    @Option(names = "--compare-methods", split = ",", converter = AcceptabilityFineTune.MethodConverter.class,
            paramLabel = "METHOD", defaultValue = "head-only,full,lora,prilora,linear-unpruned,uniform-pruned,prilora-persistent",
            description = "Methods of --compare, comma-separated (default: ${DEFAULT-VALUE}).")
    List<Method> compareMethods;

    @Option(names = "--seeds", split = ",", defaultValue = "1,2,3,4,5", paramLabel = "SEED",
            description = "Seeds for --compare, comma-separated, distinct (default: ${DEFAULT-VALUE}).")
    List<Long> seeds;

    @Option(names = "--resume", description = "With --compare: reuse every run whose folder under --out/runs already holds "
            + "a metrics.json with exactly that run's settings (an interrupted compare continues where it stopped).")
    boolean resume;

    @Option(names = "--jobs", defaultValue = "1", paramLabel = "N",
            description = "Runs of --compare trained at the same time, each on one thread, 1..64 (default: "
                    + "${DEFAULT-VALUE}; 2 uses both cores of a 2-core machine). Results do not depend on it.")
    int jobs;

    /** Checks the ranges, naming the option, the value and the allowed range. */
    void check(CommandSpec spec) {
        OptionChecks.check(spec, jobs >= 1 && jobs <= 64, "--jobs", jobs, "1..64");
        OptionChecks.check(spec, compareMethods != null && !compareMethods.isEmpty()
                && new HashSet<>(compareMethods).size() == compareMethods.size(), "--compare-methods", compareMethods,
                "one or more distinct methods");
        OptionChecks.check(spec, seeds != null && !seeds.isEmpty(), "--seeds", seeds, "one or more comma-separated seeds");
        OptionChecks.check(spec, new HashSet<>(seeds).size() == seeds.size(), "--seeds", seeds, "distinct seeds");
    }

    /** @return a progress bar factory: log lines when several runs train at once, else this process's default */
    ProgressBars bars(PrintStream stdout) {
        return compare && jobs > 1 ? new ProgressBars(false, stdout) : ProgressBars.forThisProcess();
    }

    /**
     * Runs the grid ({@link CompareRuns#run}) and writes the report after every finished run (marked partial, so an
     * interrupted grid still leaves its finished runs) and at the end.
     *
     * @return the results
     */
    <R extends CompareRuns.Result> List<R> runGrid(CompareRuns.Runner<R> runner, FineTuneSettings s, Path out,
                                                   PrintStream stdout, String commandLine, Report<R> report) throws Exception {
        int total = compareMethods.size() * seeds.size();
        List<R> runs = CompareRuns.run(runner, s, compareMethods, seeds, jobs, out.resolve("runs"), stdout, resume,
                partial -> {
                    try {
                        report.write(partial, commandLine + "   [partial: " + partial.size() + " of " + total + " runs]");
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                });
        report.write(runs, commandLine);
        return runs;
    }
}
