package org.prilora.samples.finetune;

import org.prilora.ModuleFigures;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The fraction of exact zeros in all A matrices (entries weighted equally) after every optimizer step of a pruned
 * run, and from it how much of each pruning survives until the next one.
 *
 * <p>In REGROW mode the pruned entries of A are set to 0 and Adam updates them again at the next step; in
 * PERSISTENT_MASK mode they stay 0. The survival of pruning step {@code p_i} is the zero fraction just before the
 * next pruning step ({@code p_{i+1} − 1}) divided by the zero fraction right after {@code p_i}.
 */
final class SparsityTrace {

    /**
     * What the trace says about the pruning steps.
     *
     * @param pruningSteps       1-based steps at which the listener pruned
     * @param afterPruning       mean zero fraction right after a pruning step
     * @param beforeNextPruning  mean zero fraction one step before the next pruning step
     * @param survival           mean over consecutive pruning pairs of {@code beforeNextPruning / afterPruning}
     * @param afterOneStep       mean zero fraction one step after a pruning step
     * @param finalSparsity      zero fraction after the last step
     */
    record Survival(int[] pruningSteps, double afterPruning, double beforeNextPruning, double survival,
                    double afterOneStep, double finalSparsity) {
    }

    private final double[] zeros;
    private final List<Integer> pruningSteps = new ArrayList<>();
    private long lastPruningCount;
    private int recorded;

    /** @param steps optimizer steps of the run */
    SparsityTrace(int steps) {
        this.zeros = new double[steps];
    }

    /**
     * Records the state after one step.
     *
     * @param step         1-based step
     * @param figures      the adapted modules' figures after the step
     * @param pruningCount pruning steps the listener has run so far
     */
    void record(int step, List<ModuleFigures> figures, long pruningCount) {
        double z = 0;
        double n = 0;
        for (ModuleFigures f : figures) {
            double size = (double) f.rank() * f.nIn();
            z += f.aSparsity() * size;
            n += size;
        }
        zeros[step - 1] = n == 0 ? 0 : z / n;
        if (pruningCount > lastPruningCount) {
            pruningSteps.add(step);
            lastPruningCount = pruningCount;
        }
        recorded = Math.max(recorded, step);
    }

    /** @return the zero fraction after every recorded step */
    double[] zeros() {
        return Arrays.copyOf(zeros, recorded);
    }

    /** @return the survival figures, or null when nothing was pruned */
    Survival survival() {
        if (pruningSteps.isEmpty()) {
            return null;
        }
        int[] p = pruningSteps.stream().mapToInt(Integer::intValue).toArray();
        double after = 0;
        double oneStep = 0;
        int oneStepCount = 0;
        for (int s : p) {
            after += zeros[s - 1];
            if (s < recorded) {
                oneStep += zeros[s];
                oneStepCount++;
            }
        }
        double before = 0;
        double survival = 0;
        int pairs = 0;
        for (int i = 0; i + 1 < p.length; i++) {
            double z = zeros[p[i] - 1];
            double b = zeros[p[i + 1] - 2];
            before += b;
            survival += z > 0 ? b / z : 0;
            pairs++;
        }
        return new Survival(p, after / p.length, pairs == 0 ? Double.NaN : before / pairs,
                pairs == 0 ? Double.NaN : survival / pairs, oneStepCount == 0 ? Double.NaN : oneStep / oneStepCount,
                zeros[recorded - 1]);
    }
}
