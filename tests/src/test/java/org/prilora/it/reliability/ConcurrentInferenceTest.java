package org.prilora.it.reliability;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.PriLora;
import org.prilora.layers.AdapterStatsSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

/**
 * Inference from several threads at once, each on its own {@link MultiLayerNetwork#clone()} of an adapted network
 * or of its merged network, plus one thread on each original network, which the main thread also uses before and
 * after. (DL4J networks are not thread-safe; {@code MultiLayerNetwork.output} is {@code synchronized} on the network,
 * so threads that share one network only take turns: real parallel inference needs one network per thread.)
 *
 * <p>Every output is compared bit for bit with the single-thread output for the same batch, computed before the
 * threads start. Exact equality is the right check: it is the same float32 ops on the same data with the same shapes,
 * OpenBLAS splits a GEMM over rows and columns, never over the summed dimension, and the only reduction (the 3-way
 * softmax) is within one row, so which thread computes an element does not change its bits. A difference therefore
 * means state leaked between threads, batches or networks, not rounding (a scratch buffer shared by the layers of
 * the clones, put in on purpose to try this test, showed up as differences of order 1e-2 in every run). The batches have different sizes and each thread
 * runs them in its own shuffled order, so consecutive calls on one network keep changing the batch size.
 *
 * <p>Afterwards the parameters of every network (weights, adapters, PRILoRA masks and input-norm statistics, all in
 * {@code params()}) are bit for bit what they were, no PRILoRA layer holds input norms for the listener, and the
 * single-thread outputs are unchanged: inference changes no state.
 */
class ConcurrentInferenceTest {

    private static final int CLONES_PER_NET = 3;
    /** Passes of every thread over all batches (about 2 s in all on 2 cores; races between threads need repeats). */
    private static final int ROUNDS = 20;
    /** Two different batches of each size; the large ones keep the GEMMs, and so any race window, long enough. */
    private static final int[] BATCH_SIZES = {1, 3, 16, 17, 64, 256};
    private static final long TIMEOUT_SECONDS = 60;

    private static MultiLayerNetwork adapted;
    private static MultiLayerNetwork merged;
    private static List<INDArray> inputs;

    @BeforeAll
    static void trainAndMerge() {
        adapted = ReliabilityFixture.adaptedNet();
        ReliabilityFixture.trainTo(adapted, 4); // pruned at step 3: masks with zeros, statistics from 4 batches
        merged = PriLora.merge(adapted);
        inputs = new ArrayList<>();
        for (int size : BATCH_SIZES) {
            for (int variant = 0; variant < 2; variant++) {
                inputs.add(features(31 * size + variant, size));
            }
        }
    }

    private static INDArray features(long seed, int rows) {
        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(seed);
        return Nd4j.rand(rng, rows, 12).castTo(DataType.FLOAT);
    }

    @Test
    void theStateComparedAfterwardsHoldsMasksAndStatistics() {
        // fc2, pruned at step 3: some of its A's entries are masked
        INDArray mask = adapted.getLayer(1).getParam("loraM");
        assertThat(mask).isNotNull();
        assertThat(mask.sumNumber().doubleValue()).isLessThan(mask.length());
        INDArray stats = adapted.getLayer(1).getParam("xnorm");
        assertThat(stats).isNotNull();
        assertThat(stats.getDouble(stats.length() - 1)).as("batches seen").isEqualTo(4.0);
        assertThat(adapted.params().length()).isEqualTo(Arrays.stream(adapted.getLayers())
                .mapToLong(l -> l.paramTable().values().stream().mapToLong(INDArray::length).sum()).sum());
    }

    @Test
    void clonesAndSharedNetworksInferConcurrentlyAsOneThreadDoesAndChangeNoState() throws Exception {
        List<MultiLayerNetwork> originals = List.of(adapted, merged);
        List<List<INDArray>> expected = new ArrayList<>();
        List<INDArray> paramsBefore = new ArrayList<>();
        for (MultiLayerNetwork net : originals) {
            List<INDArray> outs = new ArrayList<>();
            for (INDArray x : inputs) {
                outs.add(net.output(x).dup());
            }
            expected.add(outs);
            paramsBefore.add(net.params().dup());
        }
        // A thread given the wrong batch's output (or a stale one) must be caught: the two batches of each size differ.
        for (List<INDArray> outs : expected) {
            for (int i = 0; i < outs.size(); i += 2) {
                assertThat(maxAbsDiff(outs.get(i), outs.get(i + 1))).as("batch %d vs %d", i, i + 1).isGreaterThan(1e-3);
            }
        }

        List<MultiLayerNetwork> nets = new ArrayList<>();
        List<Integer> netOf = new ArrayList<>();
        for (int n = 0; n < originals.size(); n++) {
            nets.add(originals.get(n)); // the original itself: its worker thread shares it with the main thread
            netOf.add(n);
            for (int c = 0; c < CLONES_PER_NET; c++) {
                MultiLayerNetwork clone = originals.get(n).clone();
                assertThat(bitsDiffering(clone.params(), paramsBefore.get(n))).as("clone's parameters").isZero();
                nets.add(clone);
                netOf.add(n);
            }
        }

        int tasks = nets.size();
        CyclicBarrier start = new CyclicBarrier(tasks);
        AtomicInteger inFlight = new AtomicInteger();
        AtomicInteger maxInFlight = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(tasks);
        List<Future<List<String>>> results = new ArrayList<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
        int[] comparisons = new int[tasks];
        try {
            for (int t = 0; t < tasks; t++) {
                final int task = t;
                final MultiLayerNetwork net = nets.get(t);
                final List<INDArray> want = expected.get(netOf.get(t));
                Callable<List<String>> work = () -> {
                    List<Integer> order = new ArrayList<>();
                    for (int r = 0; r < ROUNDS; r++) {
                        for (int i = 0; i < inputs.size(); i++) {
                            order.add(i);
                        }
                    }
                    Collections.shuffle(order, new Random(task));
                    List<String> mismatches = new ArrayList<>();
                    int wrong = 0;
                    start.await(TIMEOUT_SECONDS, TimeUnit.SECONDS);
                    for (int i : order) {
                        maxInFlight.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
                        INDArray got;
                        try {
                            got = net.output(inputs.get(i));
                        } finally {
                            inFlight.decrementAndGet();
                        }
                        comparisons[task]++;
                        INDArray w = want.get(i);
                        if ((!Arrays.equals(got.shape(), w.shape()) || bitsDiffering(got, w) != 0) && wrong++ < 5) {
                            mismatches.add("task " + task + ", batch " + i + " (" + inputs.get(i).size(0) + " rows): shape "
                                    + Arrays.toString(got.shape()) + ", max |diff| "
                                    + (Arrays.equals(got.shape(), w.shape()) ? maxAbsDiff(got, w) : Double.NaN));
                        }
                    }
                    if (wrong > 5) {
                        mismatches.add("task " + task + ": " + (wrong - 5) + " more");
                    }
                    return mismatches;
                };
                results.add(pool.submit(work));
            }
            List<String> mismatches = new ArrayList<>();
            for (Future<List<String>> f : results) {
                try {
                    mismatches.addAll(f.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS));
                } catch (TimeoutException e) {
                    fail("inference threads still running after " + TIMEOUT_SECONDS + " s");
                } catch (ExecutionException e) {
                    throw new AssertionError("an inference thread failed", e.getCause());
                }
            }
            assertThat(mismatches).as("outputs that differ from the single-thread outputs").isEmpty();
        } finally {
            pool.shutdownNow();
            pool.awaitTermination(10, TimeUnit.SECONDS);
        }
        assertThat(Arrays.stream(comparisons).sum()).isEqualTo(tasks * ROUNDS * inputs.size());
        assertThat(maxInFlight.get()).as("threads inside output() at the same time").isGreaterThanOrEqualTo(2);

        int statsSources = 0;
        for (int t = 0; t < tasks; t++) {
            MultiLayerNetwork net = nets.get(t);
            assertThat(bitsDiffering(net.params(), paramsBefore.get(netOf.get(t))))
                    .as("parameters of network %d after concurrent inference", t).isZero();
            for (Layer l : net.getLayers()) {
                if (l instanceof AdapterStatsSource) {
                    statsSources++;
                    assertThat(((AdapterStatsSource) l).takeBatchNorms()).as("input norms queued by inference").isEmpty();
                }
            }
        }
        assertThat(statsSources).as("PRILoRA layers checked").isEqualTo(3 * (1 + CLONES_PER_NET)); // fc1-fc3 of each adapted net
        // and the single-thread outputs are still the same afterwards
        for (int n = 0; n < originals.size(); n++) {
            for (int i = 0; i < inputs.size(); i++) {
                assertThat(bitsDiffering(originals.get(n).output(inputs.get(i)), expected.get(n).get(i))).isZero();
            }
        }
    }

    /** Number of elements whose float32 bits differ (the arrays have the same length). */
    private static long bitsDiffering(INDArray a, INDArray b) {
        float[] x = a.reshape(a.length()).toFloatVector();
        float[] y = b.reshape(b.length()).toFloatVector();
        assertThat(x).hasSameSizeAs(y);
        long n = 0;
        for (int i = 0; i < x.length; i++) {
            if (Float.floatToRawIntBits(x[i]) != Float.floatToRawIntBits(y[i])) {
                n++;
            }
        }
        return n;
    }

    private static double maxAbsDiff(INDArray a, INDArray b) {
        return a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    }
}
