package org.prilora.ops;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class InputNormStatsTest {

    /** Brute force: norm of feature j over rows b,t with mask[b][t] != 0, from [b][j][t] values. */
    private static double[] refNorms(double[][][] x, double[][] mask) {
        int mb = x.length, nIn = x[0].length, t = x[0][0].length;
        double[] n = new double[nIn];
        for (int j = 0; j < nIn; j++) {
            double s = 0;
            for (int b = 0; b < mb; b++) {
                for (int k = 0; k < t; k++) {
                    if (mask == null || mask[b][k] != 0) {
                        s += x[b][j][k] * x[b][j][k];
                    }
                }
            }
            n[j] = Math.sqrt(s);
        }
        return n;
    }

    private static double[][][] randomNcw(Random r, int mb, int nIn, int t) {
        double[][][] x = new double[mb][nIn][t];
        for (double[][] a : x) for (double[] b : a) for (int k = 0; k < t; k++) b[k] = r.nextGaussian() * 3;
        return x;
    }

    private static INDArray ncw(double[][][] x) {
        return Nd4j.create(x).castTo(DataType.DOUBLE);
    }

    private static INDArray nwc(double[][][] x) {
        return ncw(x).permute(0, 2, 1).dup('c');
    }

    @Test
    void emaOverMaskedBatchesMatchesBruteForceInBothLayouts() {
        Random r = new Random(7);
        int mb = 3, nIn = 5, t = 4;
        double beta = 0.8;
        InputNormStats ncwStats = new InputNormStats(nIn, beta);
        InputNormStats nwcStats = new InputNormStats(nIn, beta);
        double[] ref = null;
        for (int step = 0; step < 4; step++) {
            double[][][] x = randomNcw(r, mb, nIn, t);
            double[][] mask = new double[mb][t];
            for (int b = 0; b < mb; b++) for (int k = 0; k < t; k++) mask[b][k] = (k <= b + step % 2) ? 1 : 0;
            ncwStats.update(ncw(x), Nd4j.create(mask), SequenceLayout.NCW);
            nwcStats.update(nwc(x), Nd4j.create(mask), SequenceLayout.NWC);
            double[] n = refNorms(x, mask);
            if (ref == null) {
                ref = n;
            } else {
                for (int j = 0; j < nIn; j++) ref[j] = beta * ref[j] + (1 - beta) * n[j];
            }
            for (int j = 0; j < nIn; j++) {
                assertThat(ncwStats.norms().getDouble(j)).isCloseTo(ref[j], within(1e-4 * (1 + ref[j])));
                assertThat(nwcStats.norms().getDouble(j)).isCloseTo(ref[j], within(1e-4 * (1 + ref[j])));
            }
        }
        assertThat(ncwStats.batchesSeen()).isEqualTo(4);
    }

    @Test
    void twoDimensionalWithRowMask() {
        Random r = new Random(1);
        double[][] x = new double[4][3];
        for (double[] row : x) for (int j = 0; j < 3; j++) row[j] = r.nextGaussian();
        double[] mask = {1, 0, 1, 1};
        InputNormStats s = new InputNormStats(3, 0.5);
        s.update(Nd4j.create(x), Nd4j.create(mask).reshape(4, 1));
        for (int j = 0; j < 3; j++) {
            double e = 0;
            for (int b = 0; b < 4; b++) if (mask[b] != 0) e += x[b][j] * x[b][j];
            assertThat(s.norms().getDouble(j)).isCloseTo(Math.sqrt(e), within(1e-5));
        }
        // beta = 0 keeps only the latest batch
        InputNormStats latest = new InputNormStats(3, 0.0);
        latest.update(Nd4j.ones(2, 3), null);
        latest.update(Nd4j.ones(2, 3).muli(2), null);
        assertThat(latest.norms().getDouble(0)).isCloseTo(Math.sqrt(8), within(1e-6));
    }

    @Test
    void wrappedStateIsUpdatedInPlaceAndRestores() {
        INDArray backing = Nd4j.zeros(DataType.FLOAT, 1, 4);
        InputNormStats s = InputNormStats.wrap(backing, 0.9);
        s.update(Nd4j.ones(DataType.FLOAT, 4, 3), null);
        assertThat(backing.getDouble(0, 0)).isCloseTo(2.0, within(1e-6));
        assertThat(backing.getDouble(0, 3)).isEqualTo(1.0);
        InputNormStats restored = InputNormStats.wrap(backing.dup(), 0.9);
        assertThat(restored.isInitialized()).isTrue();
        restored.update(Nd4j.zeros(DataType.FLOAT, 4, 3), null);
        assertThat(restored.norms().getDouble(0)).isCloseTo(1.8, within(1e-6));
    }

    @Test
    void nonFiniteBatchIsRejectedAndStateUnchanged() {
        InputNormStats s = new InputNormStats(2, 0.9);
        s.update(Nd4j.ones(3, 2), null);
        INDArray before = s.state().dup();
        INDArray bad = Nd4j.ones(3, 2);
        bad.putScalar(1, 1, Double.NaN);
        assertThatThrownBy(() -> s.update(bad, null)).isInstanceOf(NonFiniteInputException.class).hasMessageContaining("NaN");
        INDArray inf = Nd4j.ones(3, 2);
        inf.putScalar(0, 0, Double.POSITIVE_INFINITY);
        assertThatThrownBy(() -> s.update(inf, null)).isInstanceOf(NonFiniteInputException.class);
        assertThat(s.state()).isEqualTo(before);
    }

    @Test
    void shapeMismatchesNameTheArgumentAndTheExpectedShape() {
        InputNormStats s = new InputNormStats(3, 0.9);
        assertThatThrownBy(() -> s.update(Nd4j.ones(2, 4), null)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("activations").hasMessageContaining("[mb, 3]").hasMessageContaining("[2, 4]");
        assertThatThrownBy(() -> s.update(Nd4j.ones(2, 3, 5), null, SequenceLayout.NWC))
                .hasMessageContaining("NWC").hasMessageContaining("[mb, T, 3]");
        assertThatThrownBy(() -> s.update(Nd4j.ones(2, 3, 5), Nd4j.ones(2, 4), SequenceLayout.NCW))
                .hasMessageContaining("mask").hasMessageContaining("[2, 5]").hasMessageContaining("[2, 4]");
        assertThatThrownBy(() -> s.update(Nd4j.ones(2, 3), Nd4j.ones(3))).hasMessageContaining("mask");
        assertThatThrownBy(() -> new InputNormStats(0, 0.9)).hasMessageContaining("nIn").hasMessageContaining("0");
        assertThatThrownBy(() -> new InputNormStats(3, 1.0)).hasMessageContaining("beta").hasMessageContaining("[0, 1)");
        assertThatThrownBy(() -> InputNormStats.wrap(Nd4j.ones(2, 2), 0.9)).hasMessageContaining("state");
    }

    @Test
    void nonFiniteValuesAtMaskedPositionsNeverReachTheStatistics() {
        // 2-D: row 1 is padding and holds NaN and infinity; the norms are those of rows 0 and 2.
        INDArray x = Nd4j.create(new double[][]{{1, 2}, {Double.NaN, Double.POSITIVE_INFINITY}, {3, -4}});
        INDArray mask = Nd4j.create(new double[]{1, 0, 1});
        INDArray norms = InputNormStats.batchNorms(x, mask, null, 2);
        assertThat(norms.toDoubleVector()).containsExactly(Math.sqrt(10), Math.sqrt(20));
        // 3-D, both layouts: example 0 has a NaN at its padded step t = 2.
        double[][][] seq = {{{1, 2, Double.NaN}, {3, 4, Double.NEGATIVE_INFINITY}}, {{5, 6, 7}, {8, 9, 10}}};  // [mb][nIn][T]
        INDArray mask3 = Nd4j.create(new double[][]{{1, 1, 0}, {1, 1, 1}});
        double[] expected = {Math.sqrt(1 + 4 + 25 + 36 + 49), Math.sqrt(9 + 16 + 64 + 81 + 100)};
        assertThat(InputNormStats.batchNorms(ncw(seq), mask3, SequenceLayout.NCW, 2).toDoubleVector()).containsExactly(expected);
        assertThat(InputNormStats.batchNorms(nwc(seq), mask3, SequenceLayout.NWC, 2).toDoubleVector()).containsExactly(expected);
        // A non-finite value at a real position still makes the batch non-finite (and rejected by the listeners).
        mask3.putScalar(0, 2, 1);
        assertThat(InputNormStats.batchNorms(ncw(seq), mask3, SequenceLayout.NCW, 2).sumNumber().doubleValue()).isNaN();
    }
}
