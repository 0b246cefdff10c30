package org.prilora.ops;

import org.prilora.config.AdapterInit;
import org.prilora.config.ScalingMode;

import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.BaseListener;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.autodiff.validation.GradCheckUtil;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class LoraLinearTest {

    private static double[][] rand(Random r, int rows, int cols) {
        double[][] m = new double[rows][cols];
        for (double[] row : m) for (int j = 0; j < cols; j++) row[j] = r.nextGaussian();
        return m;
    }

    /** y[n][o] = sum_i x[n][i] W0[i][o] + b0[o] + s * sum_k (sum_i x[n][i] A[k][i] M[k][i]) B[o][k], by loops. */
    private static double[][] refForward(double[][] x, double[][] w0, double[] b0, double[][] a, double[][] b,
                                         double[][] mask, double s) {
        int n = x.length, nIn = w0.length, nOut = w0[0].length, r = a.length;
        double[][] y = new double[n][nOut];
        for (int row = 0; row < n; row++) {
            double[] h = new double[r];
            for (int k = 0; k < r; k++) {
                for (int i = 0; i < nIn; i++) {
                    h[k] += x[row][i] * a[k][i] * (mask == null ? 1 : mask[k][i]);
                }
            }
            for (int o = 0; o < nOut; o++) {
                double v = b0 == null ? 0 : b0[o];
                for (int i = 0; i < nIn; i++) v += x[row][i] * w0[i][o];
                double d = 0;
                for (int k = 0; k < r; k++) d += h[k] * b[o][k];
                y[row][o] = v + s * d;
            }
        }
        return y;
    }

    private static final class Graph {
        SameDiff sd = SameDiff.create();
        SDVariable x, w0, b0, a, b, mask, y;
    }

    private static Graph build(double[][] x, double[][] w0, double[] b0, double[][] a, double[][] b, double[][] mask, double s) {
        Graph g = new Graph();
        g.x = g.sd.var("x", Nd4j.create(x));
        g.w0 = g.sd.var("w0", Nd4j.create(w0));
        g.b0 = b0 == null ? null : g.sd.var("b0", Nd4j.create(b0).reshape(1, b0.length));
        g.a = g.sd.var("a", Nd4j.create(a));
        g.b = g.sd.var("b", Nd4j.create(b));
        g.mask = mask == null ? null : g.sd.constant("mask", Nd4j.create(mask));
        g.y = LoraLinear.forward(g.sd, g.x, g.w0, g.b0, g.a, g.b, g.mask, s);
        return g;
    }

    @Test
    void forwardMatchesLoopReferenceWithAndWithoutBiasAndMask() {
        Random r = new Random(42);
        int n = 5, nIn = 7, nOut = 4, rank = 3;
        double[][] x = rand(r, n, nIn), w0 = rand(r, nIn, nOut), a = rand(r, rank, nIn), b = rand(r, nOut, rank);
        double[] b0 = rand(r, 1, nOut)[0];
        double[][] mask = new double[rank][nIn];
        for (double[] m : mask) for (int j = 0; j < nIn; j++) m[j] = r.nextBoolean() ? 1 : 0;
        double s = 16.0 / rank;
        for (boolean withBias : new boolean[]{true, false}) {
            for (boolean withMask : new boolean[]{true, false}) {
                double[] bias = withBias ? b0 : null;
                double[][] m = withMask ? mask : null;
                Graph g = build(x, w0, bias, a, b, m, s);
                double[][] got = g.y.eval().toDoubleMatrix();
                double[][] want = refForward(x, w0, bias, a, b, m, s);
                for (int i = 0; i < n; i++) for (int o = 0; o < nOut; o++) {
                    assertThat(got[i][o]).isCloseTo(want[i][o], within(1e-9));
                }
                // ND4J-side merge gives the same function
                INDArray merged = LoraLinear.mergedWeight(Nd4j.create(w0), Nd4j.create(a), Nd4j.create(b),
                        m == null ? null : Nd4j.create(m), s);
                INDArray viaMerge = Nd4j.create(x).mmul(merged);
                if (bias != null) viaMerge.addiRowVector(Nd4j.create(bias));
                for (int i = 0; i < n; i++) for (int o = 0; o < nOut; o++) {
                    assertThat(viaMerge.getDouble(i, o)).isCloseTo(want[i][o], within(1e-9));
                }
            }
        }
    }

    @Test
    void zeroBLeavesTheBaseMapUnchanged() {
        Random r = new Random(1);
        double[][] x = rand(r, 3, 4), w0 = rand(r, 4, 2), a = rand(r, 2, 4), b = new double[2][2];
        Graph g = build(x, w0, null, a, b, null, 8.0);
        double[][] want = refForward(x, w0, null, a, b, null, 0.0);
        double[][] got = g.y.eval().toDoubleMatrix();
        for (int i = 0; i < 3; i++) for (int o = 0; o < 2; o++) assertThat(got[i][o]).isCloseTo(want[i][o], within(1e-12));
    }

    @Test
    void gradientCheckOnAAndBAndInputWithFrozenBaseGettingNoGradient() {
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
        Random r = new Random(3);
        int n = 4, nIn = 6, nOut = 5, rank = 2;
        double[][] mask = new double[rank][nIn];
        for (double[] m : mask) for (int j = 0; j < nIn; j++) m[j] = j % 3 == 0 ? 0 : 1;
        Graph g = build(rand(r, n, nIn), rand(r, nIn, nOut), rand(r, 1, nOut)[0], rand(r, rank, nIn),
                rand(r, nOut, rank), mask, 2.0 / rank);
        SDVariable loss = g.y.mul(g.y).sum().mul(0.5).add(g.y.sum());
        loss.markAsLoss();
        g.sd.createGradFunction();
        boolean ok = GradCheckUtil.checkGradients(g.sd, null, 1e-6, 1e-5, 1e-8, false, false, true, false,
                java.util.Set.of("w0", "b0"), null);
        assertThat(ok).isTrue();

        // Frozen parameters: gradient exactly zero; masked entries of A: gradient exactly zero.
        Map<String, INDArray> grads = g.sd.calculateGradients(null, "w0", "b0", "a", "b", "x");
        assertThat(grads.get("w0").sumNumber().doubleValue()).isZero();
        assertThat(Nd4j.getExecutioner().exec(new org.nd4j.linalg.api.ops.impl.reduce.longer.CountNonZero(grads.get("w0"))).getInt(0)).isZero();
        for (int k = 0; k < rank; k++) for (int j = 0; j < nIn; j++) {
            if (mask[k][j] == 0) {
                assertThat(grads.get("a").getDouble(k, j)).isZero();
            }
        }
    }

    @Test
    void backwardExecutesNoProductForTheFrozenWeightGradient() {
        Random r = new Random(5);
        int n = 8, nIn = 6, nOut = 5, rank = 2;
        Graph g = build(rand(r, n, nIn), rand(r, nIn, nOut), null, rand(r, rank, nIn), rand(r, nOut, rank), null, 1.0);
        SDVariable loss = g.y.sum();
        loss.markAsLoss();
        List<String> products = new ArrayList<>();
        g.sd.setListeners(new BaseListener() {
            @Override
            public boolean isActive(Operation operation) {
                return true;
            }

            @Override
            public void opExecution(SameDiff sd, At at, MultiDataSet batch, SameDiffOp op, OpContext opContext, INDArray[] outputs) {
                String name = op.getOp().opName();
                if (name.contains("mmul") || name.contains("matmul") || name.contains("gemm")) {
                    for (INDArray o : outputs) {
                        products.add(name + java.util.Arrays.toString(o.shape()));
                    }
                }
            }
        });
        g.sd.calculateGradients(null, "a", "b", "x");
        // A product shaped like W0 ([nIn, nOut] = [6, 5]) would be the frozen weight's gradient.
        assertThat(products).isNotEmpty().noneMatch(p -> p.endsWith("[6, 5]"));
        // ...while the input gradient [n, nIn] through W0 is computed.
        assertThat(products).anyMatch(p -> p.endsWith("[8, 6]"));
    }

    @Test
    void shapeChecksNameTheArgument() {
        assertThatThrownBy(() -> LoraLinear.mergedWeight(Nd4j.ones(4, 3), Nd4j.ones(2, 5), Nd4j.ones(3, 2), null, 1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("a:").hasMessageContaining("[r, 4]").hasMessageContaining("[2, 5]");
        assertThatThrownBy(() -> LoraLinear.mergedWeight(Nd4j.ones(4, 3), Nd4j.ones(2, 4), Nd4j.ones(3, 3), null, 1))
                .hasMessageContaining("b:").hasMessageContaining("[3, 2]");
        assertThatThrownBy(() -> LoraLinear.mergedWeight(Nd4j.ones(4, 3), Nd4j.ones(2, 4), Nd4j.ones(3, 2), Nd4j.ones(2, 3), 1))
                .hasMessageContaining("mask");
        assertThatThrownBy(() -> ScalingMode.ALPHA_OVER_R.scale(8, 0)).hasMessageContaining("r:");
        assertThat(ScalingMode.ALPHA_OVER_SQRT_R.scale(8, 4)).isEqualTo(4.0);
        assertThat(ScalingMode.ALPHA_OVER_R.scale(8, 4)).isEqualTo(2.0);
    }

    @Test
    void initialisersFollowPeft() {
        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(123);
        INDArray a = Nd4j.zeros(DataType.FLOAT, 64, 400);
        AdapterInit.KAIMING_UNIFORM.initA(a, rng);
        assertThat(a.maxNumber().doubleValue()).isLessThanOrEqualTo(1 / Math.sqrt(400)).isGreaterThan(0.9 / Math.sqrt(400));
        assertThat(a.minNumber().doubleValue()).isGreaterThanOrEqualTo(-1 / Math.sqrt(400)).isLessThan(-0.9 / Math.sqrt(400));
        INDArray g = Nd4j.zeros(DataType.FLOAT, 8, 5000);
        AdapterInit.GAUSSIAN.initA(g, rng);
        assertThat(g.stdNumber().doubleValue()).isCloseTo(1.0 / 8, within(0.005));
    }
}
