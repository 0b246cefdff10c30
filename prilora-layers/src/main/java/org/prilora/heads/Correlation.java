package org.prilora.heads;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Objects;

/** Correlation of predictions with gold values, the metrics of STS-B: Pearson's r and Spearman's ρ. */
public final class Correlation {
    private Correlation() {
    }

    /**
     * Pearson's product-moment correlation.
     *
     * @throws IllegalArgumentException when the lengths differ, fewer than 2 values are given, or either side is constant
     */
    public static double pearson(double[] x, double[] y) {
        check(x, y);
        double mx = Arrays.stream(x).average().orElseThrow();
        double my = Arrays.stream(y).average().orElseThrow();
        double sxy = 0;
        double sxx = 0;
        double syy = 0;
        for (int i = 0; i < x.length; i++) {
            double dx = x[i] - mx;
            double dy = y[i] - my;
            sxy += dx * dy;
            sxx += dx * dx;
            syy += dy * dy;
        }
        if (sxx == 0 || syy == 0) {
            throw new IllegalArgumentException("correlation: undefined for constant values (" + (sxx == 0 ? "x" : "y") + " is constant)");
        }
        return sxy / Math.sqrt(sxx * syy);
    }

    /** Spearman's rank correlation: Pearson's r of the ranks, tied values sharing their average rank. */
    public static double spearman(double[] x, double[] y) {
        check(x, y);
        return pearson(ranks(x), ranks(y));
    }

    /** Ranks 1..n, ties given the mean of the ranks they span. */
    static double[] ranks(double[] v) {
        Integer[] order = new Integer[v.length];
        for (int i = 0; i < v.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, Comparator.comparingDouble(i -> v[i]));
        double[] r = new double[v.length];
        for (int i = 0; i < v.length; ) {
            int j = i;
            while (j + 1 < v.length && v[order[j + 1]] == v[order[i]]) {
                j++;
            }
            double rank = (i + j) / 2.0 + 1;
            for (int k = i; k <= j; k++) {
                r[order[k]] = rank;
            }
            i = j + 1;
        }
        return r;
    }

    private static void check(double[] x, double[] y) {
        Objects.requireNonNull(x, "x");
        Objects.requireNonNull(y, "y");
        if (x.length != y.length || x.length < 2) {
            throw new IllegalArgumentException("correlation: expected two arrays of equal length >= 2, got " + x.length + " and " + y.length);
        }
        for (int i = 0; i < x.length; i++) {
            if (!Double.isFinite(x[i]) || !Double.isFinite(y[i])) {
                throw new IllegalArgumentException("correlation: expected finite values, got " + x[i] + " and " + y[i] + " at " + i);
            }
        }
    }
}
