package org.prilora.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.DoubleSupplier;

/**
 * Times several variants side by side in one process: after a warm-up of each, the variants run in
 * alternating rounds (A, B, C, A, B, C, …) so that machine noise hits them alike; reports min and median.
 * A variant is timed here ({@link #add}) or times itself and reports its milliseconds ({@link #addReported}: a step
 * run by another process, where the time of the request and answer is not part of the step).
 */
public final class Interleaved {

    /** Timing of one variant, in milliseconds per call. */
    public record Timing(String name, double minMs, double medianMs, double[] samplesMs) {

        /**
         * Median over rounds of this variant's time divided by {@code other}'s in the same round: the two ran back to
         * back, so slow drifts of a shared machine cancel better than in a ratio of minima.
         */
        public double pairedMedianRatio(Timing other) {
            int n = Math.min(samplesMs.length, other.samplesMs.length);
            double[] r = new double[n];
            for (int i = 0; i < n; i++) {
                r[i] = samplesMs[i] / other.samplesMs[i];
            }
            Arrays.sort(r);
            return n % 2 == 1 ? r[n / 2] : (r[n / 2 - 1] + r[n / 2]) / 2;
        }
    }

    /** One call of each variant, returning its time in milliseconds. */
    private final Map<String, DoubleSupplier> variants = new LinkedHashMap<>();

    /**
     * Adds a variant.
     *
     * @param name its name in the result
     * @param r    one call of it (e.g. one training step)
     * @return this
     */
    public Interleaved add(String name, Runnable r) {
        variants.put(name, () -> {
            long t0 = System.nanoTime();
            r.run();
            return (System.nanoTime() - t0) / 1e6;
        });
        return this;
    }

    /**
     * Adds a variant that measures itself.
     *
     * @param name its name in the result
     * @param msOfOneCall runs one call (e.g. asks a subprocess for one training step) and returns its milliseconds
     * @return this
     */
    public Interleaved addReported(String name, DoubleSupplier msOfOneCall) {
        variants.put(name, msOfOneCall);
        return this;
    }

    /**
     * Warms every variant up, then times them in alternating rounds.
     *
     * @param warmup untimed calls of each variant first
     * @param rounds timed rounds (one call of each variant per round)
     * @return timing by variant name, in the order added
     */
    public Map<String, Timing> run(int warmup, int rounds) {
        for (DoubleSupplier r : variants.values()) {
            for (int i = 0; i < warmup; i++) {
                r.getAsDouble();
            }
        }
        Map<String, List<Double>> samples = new LinkedHashMap<>();
        variants.keySet().forEach(k -> samples.put(k, new ArrayList<>()));
        for (int round = 0; round < rounds; round++) {
            for (Map.Entry<String, DoubleSupplier> e : variants.entrySet()) {
                samples.get(e.getKey()).add(e.getValue().getAsDouble());
            }
        }
        Map<String, Timing> out = new LinkedHashMap<>();
        for (Map.Entry<String, List<Double>> e : samples.entrySet()) {
            double[] s = e.getValue().stream().mapToDouble(Double::doubleValue).toArray();
            double[] sorted = s.clone();
            Arrays.sort(sorted);
            double median = sorted.length % 2 == 1 ? sorted[sorted.length / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
            out.put(e.getKey(), new Timing(e.getKey(), sorted[0], median, s));
        }
        return out;
    }
}
