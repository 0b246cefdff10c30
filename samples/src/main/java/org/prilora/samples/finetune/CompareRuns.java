package org.prilora.samples.finetune;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorCompletionService;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * Runs the {@code --compare} grid of a task ({@link Runner}: acceptability, error detection) (methods × seeds), {@code jobs} runs at a time on their own threads. Every run is
 * fully determined by its settings (seeded sample, batch order and initialisation; ND4J's random generator is per
 * thread), so the results do not depend on {@code jobs}. Where the runner asks ({@link Runner#headOnlyFirst()}),
 * head-only runs go first on the calling thread: in the acceptability task they share the frozen encoder's embedding
 * cache.
 */
final class CompareRuns {

    /** What a run of the grid reports: at least the settings it ran with. */
    interface Result {
        /** @return the run's settings (method and seed included) */
        FineTuneSettings settings();
    }

    /** Trains and evaluates one run of a task; shared state (data, caches) lives in the implementation. */
    interface Runner<R extends Result> {
        /** Trains, evaluates and writes one run's outputs into {@code dir}. */
        R run(FineTuneSettings s, Path dir) throws Exception;

        /** @return the run recorded in {@code dir} with exactly these settings, or null (for {@code --resume}) */
        R reuse(FineTuneSettings s, Path dir) throws IOException;

        /** Warms the shared caches before runs start on several threads. */
        void prepare(FineTuneSettings shared);

        /** @return whether head-only runs go first, one at a time on the calling thread (they share a cache) */
        default boolean headOnlyFirst() {
            return false;
        }
    }

    private CompareRuns() {
    }

    /**
     * @param runner  the runner (shared data and caches)
     * @param s       shared settings
     * @param methods methods to run
     * @param seeds   seeds to run
     * @param jobs    runs at a time
     * @param runsDir parent of the per-run folders ({@code <method>-seed<seed>})
     * @param out     where the "run k of n" lines go
     * @param resume  reuse a run whose folder already holds a metrics.json with exactly its settings
     * @param done    called with all results so far after every finished run (the caller writes a partial report)
     * @return the results, ordered by method (as given) then seed
     * @throws Exception the first failure of a run (the other runs are cancelled)
     */
    static <R extends Result> List<R> run(Runner<R> runner, FineTuneSettings s, List<Method> methods, List<Long> seeds,
                                          int jobs, Path runsDir, PrintStream out, boolean resume,
                                          Consumer<List<R>> done) throws Exception {
        List<FineTuneSettings> grid = new ArrayList<>();
        for (Method m : methods) {
            for (long seed : seeds) {
                grid.add(s.withMethod(m).withSeed(seed));
            }
        }
        List<R> results = new ArrayList<>();
        if (resume) {
            List<FineTuneSettings> left = new ArrayList<>();
            for (FineTuneSettings rs : grid) {
                R r = runner.reuse(rs, dir(runsDir, rs));
                if (r != null) {
                    results.add(r);
                } else {
                    left.add(rs);
                }
            }
            out.printf(Locale.ROOT, "--resume: %d of %d runs reused from %s, %d to run%n", results.size(), grid.size(),
                    runsDir, left.size());
            grid = left;
        }
        int total = grid.size();
        AtomicInteger started = new AtomicInteger();
        boolean headOnlyFirst = runner.headOnlyFirst();
        for (FineTuneSettings rs : grid) {
            if (headOnlyFirst && rs.method() == Method.HEAD_ONLY) {
                results.add(one(runner, rs, runsDir, started.incrementAndGet(), total, out));
                done.accept(sorted(results, methods, seeds));
            }
        }
        List<FineTuneSettings> encoderRuns = grid.stream()
                .filter(rs -> !headOnlyFirst || rs.method() != Method.HEAD_ONLY).toList();
        runner.prepare(s);
        ExecutorService pool = Executors.newFixedThreadPool(jobs, r -> {
            Thread t = new Thread(r, "compare-run");
            t.setDaemon(true);
            return t;
        });
        ExecutorCompletionService<R> completion = new ExecutorCompletionService<>(pool);
        List<Future<R>> futures = new ArrayList<>();
        try {
            for (FineTuneSettings rs : encoderRuns) {
                futures.add(completion.submit(() -> one(runner, rs, runsDir, started.incrementAndGet(), total, out)));
            }
            for (int i = 0; i < futures.size(); i++) {
                try {
                    results.add(completion.take().get());
                } catch (ExecutionException e) {
                    futures.forEach(x -> x.cancel(true));
                    throw e.getCause() instanceof Exception ex ? ex : e;
                }
                done.accept(sorted(results, methods, seeds));
            }
        } finally {
            pool.shutdownNow();
        }
        return sorted(results, methods, seeds);
    }

    private static <R extends Result> List<R> sorted(List<R> results, List<Method> methods, List<Long> seeds) {
        List<R> l = new ArrayList<>(results);
        l.sort(Comparator.comparingInt((R r) -> methods.indexOf(r.settings().method()))
                .thenComparingInt(r -> seeds.indexOf(r.settings().seed())));
        return l;
    }

    private static <R extends Result> R one(Runner<R> runner, FineTuneSettings rs, Path runsDir, int k, int total,
                                 PrintStream out) throws Exception {
        out.printf(Locale.ROOT, "%n--- compare run %d of %d: %s seed %d ---%n", k, total, rs.method(), rs.seed());
        return runner.run(rs, dir(runsDir, rs));
    }

    static Path dir(Path runsDir, FineTuneSettings rs) {
        return runsDir.resolve(rs.method().cliName() + "-seed" + rs.seed());
    }
}
