package org.prilora.serving;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.TestModels;
import org.prilora.config.PruningMode;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Adapters registered and unregistered, and evicted and reloaded under a small budget, while three threads send mixed
 * batches: every answer equals, row by row, the merged network of the adapter that row named (a request either fails
 * with {@link UnknownAdapterException} for an id unregistered before it resolved, or is answered in full).
 */
class ConcurrentRegistryTest {
    @TempDir
    Path dir;

    @Test
    void loadAndUnloadDuringInFlightPredictionsNeverChangesAnAnswer() throws Exception {
        MultiLayerNetwork base = TestModels.pretrainedMlp();
        INDArray x = TestModels.data(3).getFeatures();
        String[] ids = {"a", "b", "c", "d"};
        Map<String, Path> files = new HashMap<>();
        Map<String, INDArray> refs = new HashMap<>();
        for (int k = 0; k < ids.length; k++) {
            Path f = ServingFixtures.adapterFile(base, TestModels.config(k % 2 == 0 ? PruningMode.REGROW : PruningMode.PERSISTENT_MASK),
                    60 + k, dir.resolve(ids[k] + ".prilora"));
            files.put(ids[k], f);
            refs.put(ids[k], ServingFixtures.output(ServingFixtures.merged(base, f), x, null));
        }
        refs.put(AdapterRegistry.BASE, base.output(x));
        AdapterRegistry probe = AdapterRegistry.builder(base).build();
        probe.register("a", files.get("a"));
        long one = probe.residentAdapterBytes();

        // room for about two adapters: requests over three or four keep evicting and reloading
        AdapterRegistry registry = AdapterRegistry.builder(base).memoryBudgetBytes(one * 2 + one / 2).build();
        registry.register("a", files.get("a"));
        registry.register("b", files.get("b"));
        ExecutorService pool = Executors.newFixedThreadPool(4);
        AtomicInteger answered = new AtomicInteger();
        AtomicInteger answeredChurned = new AtomicInteger();
        AtomicInteger unknown = new AtomicInteger();
        List<Future<?>> futures = new ArrayList<>();
        futures.add(pool.submit(() -> {
            for (int i = 0; i < 25; i++) {
                registry.register("c", files.get("c"));
                registry.register("d", files.get("d"));
                Thread.sleep(2);
                registry.unregister("c");
                Thread.sleep(1);
                registry.unregister("d");
            }
            return null;
        }));
        for (int t = 0; t < 3; t++) {
            long seed = t;
            futures.add(pool.submit(() -> {
                Random r = new Random(seed);
                String[] choices = {"a", "b", "c", "d", AdapterRegistry.BASE};
                for (int i = 0; i < 40; i++) {
                    int n = 1 + r.nextInt(8);
                    int[] rows = new int[n];
                    List<String> rowIds = new ArrayList<>();
                    for (int j = 0; j < n; j++) {
                        rows[j] = r.nextInt((int) x.size(0));
                        rowIds.add(choices[r.nextInt(choices.length)]);
                    }
                    INDArray batch = Nd4j.pullRows(x, 1, rows);
                    INDArray y;
                    try {
                        y = registry.predict(rowIds, batch, null);
                    } catch (UnknownAdapterException e) {
                        assertThat(e.adapterId()).isIn("c", "d");
                        unknown.incrementAndGet();
                        continue;
                    }
                    for (int j = 0; j < n; j++) {
                        ServingFixtures.assertRowEquals(y, j, refs.get(rowIds.get(j)), rows[j], 1e-5,
                                "adapter " + rowIds.get(j) + " (source row " + rows[j] + ")");
                    }
                    answered.incrementAndGet();
                    if (rowIds.contains("c") || rowIds.contains("d")) {
                        answeredChurned.incrementAndGet();
                    }
                }
                return null;
            }));
        }
        pool.shutdown();
        assertThat(pool.awaitTermination(120, TimeUnit.SECONDS)).as("finished within 120 s").isTrue();
        for (Future<?> f : futures) {
            f.get(); // rethrows an assertion error of any thread
        }
        assertThat(answered.get() + unknown.get()).isEqualTo(120);
        assertThat(answered.get()).isPositive();
        assertThat(registry.ids()).containsExactly("a", "b");
        assertThat(registry.residentAdapterBytes()).isLessThanOrEqualTo(registry.memoryBudgetBytes());
        System.out.printf("answered %d (with a churned adapter: %d), unknown id %d, loads %s%n", answered.get(),
                answeredChurned.get(), unknown.get(), registry.adapters());
    }
}
