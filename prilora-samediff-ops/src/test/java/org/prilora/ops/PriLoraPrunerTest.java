package org.prilora.ops;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PriLoraPrunerTest {

    /** Brute force: sort each row's column indices by (score, column) and zero the first k. */
    private static double[][] refPrune(double[][] a, double[] xbar, int k, double[][] mask) {
        double[][] out = new double[a.length][];
        for (int i = 0; i < a.length; i++) {
            final int row = i;
            out[i] = a[i].clone();
            Integer[] cols = new Integer[xbar.length];
            for (int j = 0; j < cols.length; j++) cols[j] = j;
            Comparator<Integer> byScore = Comparator.comparingDouble(j -> {
                boolean masked = mask != null && mask[row][j] == 0;
                return masked ? -1.0 : Math.abs(a[row][j]) * xbar[j];
            });
            Arrays.sort(cols, byScore.thenComparingInt(j -> j));
            for (int p = 0; p < k; p++) {
                out[i][cols[p]] = 0.0;
                if (mask != null) {
                    mask[row][cols[p]] = -2; // marker: pruned
                }
            }
        }
        if (mask != null) {
            for (double[] m : mask) for (int j = 0; j < m.length; j++) m[j] = m[j] == -2 ? 0 : 1;
        }
        return out;
    }

    private static double[][] random(Random r, int rows, int cols, int distinctValues) {
        double[][] a = new double[rows][cols];
        for (double[] row : a) {
            for (int j = 0; j < cols; j++) {
                // few distinct values force many ties; signs differ so |a| ties across signs too
                row[j] = distinctValues > 0 ? (r.nextInt(distinctValues) - distinctValues / 2) * 0.5 : r.nextGaussian();
            }
        }
        return a;
    }

    private void check(int r, int nIn, double fraction, int distinct, long seed, DataType dt) {
        Random rnd = new Random(seed);
        double[][] a = random(rnd, r, nIn, distinct);
        double[] xbar = new double[nIn];
        for (int j = 0; j < nIn; j++) xbar[j] = distinct > 0 ? 1 + rnd.nextInt(2) : rnd.nextDouble() * 2;
        int k = PriLoraPruner.prunedPerRow(fraction, nIn);
        double[][] expected = refPrune(a, xbar, k, null);

        INDArray aArr = Nd4j.create(a).castTo(dt);
        long zeroed = PriLoraPruner.prune(aArr, Nd4j.create(xbar).castTo(dt), fraction, null);
        assertThat(zeroed).isEqualTo((long) r * k);
        assertThat(aArr.castTo(DataType.DOUBLE).toDoubleMatrix()).isDeepEqualTo(
                Nd4j.create(expected).castTo(dt).castTo(DataType.DOUBLE).toDoubleMatrix());
    }

    @Test
    void matchesBruteForceOnRandomMatrices() {
        for (long seed = 0; seed < 10; seed++) {
            check(4, 37, 0.3, 0, seed, DataType.DOUBLE);
            check(3, 64, 0.5, 0, seed, DataType.FLOAT);
        }
    }

    @Test
    void tiesGoToTheLowestColumnIndex() {
        for (long seed = 0; seed < 20; seed++) {
            check(5, 23, 0.4, 3, seed, DataType.FLOAT);
            check(2, 10, 0.75, 2, seed, DataType.DOUBLE);
        }
        // all-equal row: the first k columns go
        INDArray a = Nd4j.ones(DataType.FLOAT, 1, 6);
        PriLoraPruner.prune(a, Nd4j.ones(DataType.FLOAT, 6), 0.5, null);
        assertThat(a.toFloatVector()).containsExactly(0f, 0f, 0f, 1f, 1f, 1f);
    }

    @Test
    void edgeCases() {
        // γ = 0: nothing happens
        INDArray a = Nd4j.rand(DataType.FLOAT, 3, 5);
        INDArray before = a.dup();
        assertThat(PriLoraPruner.prune(a, Nd4j.ones(5), 0.0, null)).isZero();
        assertThat(a).isEqualTo(before);
        // γ close to 1: all but one per row
        check(3, 20, 0.99, 0, 3, DataType.FLOAT);
        check(3, 20, 0.999, 4, 5, DataType.DOUBLE);
        // nIn = 1: floor(γ·1) = 0 for every γ < 1
        INDArray one = Nd4j.create(new double[][]{{2.0}, {-1.0}});
        assertThat(PriLoraPruner.prune(one, Nd4j.ones(1), 0.9, null)).isZero();
        assertThat(one.toDoubleMatrix()).isDeepEqualTo(new double[][]{{2.0}, {-1.0}});
        // r = 1
        check(1, 17, 0.5, 0, 11, DataType.FLOAT);
        check(1, 17, 0.5, 2, 12, DataType.FLOAT);
    }

    @Test
    void persistentMaskKeepsPrunedEntriesPrunedAndHoldsExactlyKZerosPerRow() {
        Random rnd = new Random(3);
        int r = 4, nIn = 12;
        double fraction = 0.25;
        int k = PriLoraPruner.prunedPerRow(fraction, nIn);
        double[][] aRef = random(rnd, r, nIn, 0);
        double[] xbar = new double[nIn];
        for (int j = 0; j < nIn; j++) xbar[j] = rnd.nextDouble();
        double[][] maskRef = new double[r][nIn];
        for (double[] m : maskRef) Arrays.fill(m, 1);

        INDArray a = Nd4j.create(aRef);
        INDArray mask = Nd4j.ones(r, nIn);
        for (int step = 0; step < 3; step++) {
            double[][] expected = refPrune(aRef, xbar, k, maskRef);
            PriLoraPruner.prune(a, Nd4j.create(xbar), fraction, mask);
            assertThat(a.toDoubleMatrix()).isDeepEqualTo(expected);
            assertThat(mask.toDoubleMatrix()).isDeepEqualTo(maskRef);
            for (int i = 0; i < r; i++) {
                assertThat(mask.getRow(i).sumNumber().intValue()).isEqualTo(nIn - k);
            }
            // training moves A (masked entries may drift in storage; the mask keeps them out)
            double[][] drift = random(rnd, r, nIn, 0);
            for (int i = 0; i < r; i++) for (int j = 0; j < nIn; j++) aRef[i][j] = expected[i][j] + drift[i][j];
            a = Nd4j.create(aRef);
            // scores change: the statistics move too
            for (int j = 0; j < nIn; j++) xbar[j] = rnd.nextDouble();
        }
    }

    @Test
    void badInputNamesArgumentValueAndExpectation() {
        INDArray a = Nd4j.ones(2, 4);
        assertThatThrownBy(() -> PriLoraPruner.prune(Nd4j.ones(4), Nd4j.ones(4), 0.5, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("a:").hasMessageContaining("[r, nIn]");
        assertThatThrownBy(() -> PriLoraPruner.prune(a, Nd4j.ones(3), 0.5, null))
                .hasMessageContaining("inputNorms").hasMessageContaining("nIn = 4").hasMessageContaining("[3]");
        assertThatThrownBy(() -> PriLoraPruner.prune(a, Nd4j.ones(4), 1.0, null))
                .hasMessageContaining("fraction").hasMessageContaining("[0, 1)").hasMessageContaining("1.0");
        assertThatThrownBy(() -> PriLoraPruner.prune(a, Nd4j.ones(4), 0.5, Nd4j.ones(2, 3)))
                .hasMessageContaining("mask").hasMessageContaining("[2, 4]").hasMessageContaining("[2, 3]");
    }
}
