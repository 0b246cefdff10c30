package org.prilora.parallel;

import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.dataset.api.iterator.DataSetIterator;
import org.nd4j.linalg.dataset.api.iterator.MultiDataSetIterator;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Synchronous data-parallel PRILoRA training on the cores of one machine: each step splits the global batch into
 * {@code workers} contiguous shards (sizes differ by at most one; a short last batch is fine), computes every
 * shard's gradient on its own network copy in its own thread, sums the results in shard order and lets the
 * {@link SyncDriver} take one step on the given network. The result equals {@code net.fit(globalBatch)} with a
 * {@code PriLoraListener} up to floating-point summation order, except with dropout (each worker draws its own
 * random masks).
 *
 * <pre>{@code
 * net.setListeners(new PriLoraListener(schedule));            // or ParallelConfig.builder().pruning(schedule)
 * try (LocalParallelTrainer t = new LocalParallelTrainer(net, ParallelConfig.builder().workers(2).build())) {
 *     for (int e = 0; e < epochs; e++) {
 *         t.fit(trainIterator);                                // one epoch; or t.step(globalBatch) per batch
 *     }
 * }
 * }</pre>
 *
 * <p>{@code net} itself is the model being trained (checkpoint it with {@code PriLoraCheckpoints} between steps);
 * the workers' copies are made once, at construction. Not thread-safe: one thread drives it.
 */
public final class LocalParallelTrainer implements SyncTrainer {
    private final SyncDriver driver;
    private final ShardWorker[] workers;
    private final ExecutorService[] threads;
    private final int previousMaxThreads;
    private final int previousMaxMasterThreads;
    private final boolean limitedThreads;

    public LocalParallelTrainer(Model net, ParallelConfig config) {
        this.driver = new SyncDriver(net, config);
        int k = config.workers();
        this.workers = new ShardWorker[k];
        this.threads = new ExecutorService[k];
        for (int w = 0; w < k; w++) {
            Model copy = net instanceof MultiLayerNetwork ? ((MultiLayerNetwork) net).clone() : ((ComputationGraph) net).clone();
            workers[w] = new ShardWorker(copy);
            final int id = w;
            // One thread per worker, always the same: DL4J workspaces are per thread and per network.
            threads[w] = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "prilora-worker-" + id);
                t.setDaemon(true);
                return t;
            });
        }
        this.limitedThreads = config.singleThreadedNd4j();
        this.previousMaxThreads = Nd4j.getEnvironment().maxThreads();
        this.previousMaxMasterThreads = Nd4j.getEnvironment().maxMasterThreads();
        if (limitedThreads) {
            Nd4j.getEnvironment().setMaxThreads(1);
            Nd4j.getEnvironment().setMaxMasterThreads(1);
        }
    }

    @Override
    public SyncDriver driver() {
        return driver;
    }

    /** The network being trained (the one given to the constructor). */
    @Override
    public Model model() {
        return driver.network();
    }

    /** Number of workers. */
    public int workers() {
        return workers.length;
    }

    @Override
    public StepResult step(MultiDataSet globalBatch) {
        int n = Batches.rows(globalBatch);
        int[] sizes = Batches.shardSizes(n, workers.length);
        int step = driver.iteration() + 1;
        int iteration = driver.iteration();
        int epoch = driver.epoch();
        FlatValues shipped = driver.shippedParams();
        List<Future<ShardResult>> futures = new ArrayList<>();
        int from = 0;
        for (int w = 0; w < workers.length; w++) {
            if (sizes[w] == 0) {
                continue;
            }
            final int start = from;
            final int to = from + sizes[w];
            final int worker = w;
            MultiDataSet shard = Batches.rows(globalBatch, start, to);
            futures.add(threads[w].submit(() -> workers[worker].compute(iteration, epoch, shipped, shard,
                    r -> "worker " + worker + ", row " + r + " of its shard (row " + (start + r) + " of the global batch of"
                            + " step " + step + ")",
                    r -> (long) (start + r), worker)));
            from = to;
        }
        ShardResult total = ShardResult.empty();
        RuntimeException failure = null;
        for (Future<ShardResult> f : futures) {
            try {
                ShardResult r = f.get();
                if (failure == null) {
                    total.plus(r);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for the workers", e);
            } catch (ExecutionException e) {
                if (failure == null) {
                    failure = e.getCause() instanceof RuntimeException ? (RuntimeException) e.getCause()
                            : new IllegalStateException("a worker failed: " + e.getCause(), e.getCause());
                }
            }
        }
        if (failure != null) {
            throw failure;   // every worker has finished; the model is unchanged
        }
        return driver.apply(total);
    }

    /** One epoch over {@code data} (reset first when it supports it), then the epoch count is incremented. */
    public List<StepResult> fit(DataSetIterator data) {
        if (data.resetSupported()) {
            data.reset();
        }
        List<StepResult> out = new ArrayList<>();
        while (data.hasNext()) {
            out.add(step(data.next()));
        }
        driver.endEpoch();
        return out;
    }

    /** One epoch over {@code data} (reset first when it supports it), then the epoch count is incremented. */
    public List<StepResult> fit(MultiDataSetIterator data) {
        if (data.resetSupported()) {
            data.reset();
        }
        List<StepResult> out = new ArrayList<>();
        while (data.hasNext()) {
            out.add(step(data.next()));
        }
        driver.endEpoch();
        return out;
    }

    /** Frees the workers' workspaces, stops their threads and restores ND4J's thread settings; the model stays usable. */
    @Override
    public void close() {
        List<Future<?>> freed = new ArrayList<>();
        for (ExecutorService t : threads) {
            freed.add(t.submit(() -> Nd4j.getWorkspaceManager().destroyAllWorkspacesForCurrentThread()));
            t.shutdown();
        }
        for (Future<?> f : freed) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            } catch (ExecutionException e) {
                // a worker's workspaces could not be freed: they go with its thread
            }
        }
        if (limitedThreads) {
            Nd4j.getEnvironment().setMaxThreads(previousMaxThreads);
            Nd4j.getEnvironment().setMaxMasterThreads(previousMaxMasterThreads);
        }
    }
}
