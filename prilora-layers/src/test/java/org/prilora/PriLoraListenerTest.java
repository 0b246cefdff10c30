package org.prilora;

import org.prilora.config.AdapterSettings;

import org.prilora.config.NonFinitePolicy;
import org.prilora.layers.PriLoraLayer;

import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.RnnOutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.optimize.api.BaseTrainingListener;
import org.deeplearning4j.nn.api.Model;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.prilora.layers.PriLoraDense;
import org.prilora.layers.PriLoraSelfAttention;
import org.prilora.layers.TestNets;
import org.prilora.config.PruningMode;
import org.prilora.config.PruningSchedule;
import org.prilora.ops.NonFiniteInputException;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class PriLoraListenerTest {

    static final int NIN = 6, HEADS = 2, T = 5, MB = 3;

    private static MultiLayerNetwork attentionThenDense(PruningMode mode, DataType dt) {
        return TestNets.init(TestNets.base(dt).updater(new Adam(0.05)).list()
                .layer(new PriLoraSelfAttention.Builder().nIn(NIN).nOut(NIN).nHeads(HEADS).rank(2)
                        .adapter(AdapterSettings.builder().alpha(4).pruningMode(mode).build()).build())
                .layer(new PriLoraDense.Builder().nOut(8).rank(3).adapter(AdapterSettings.builder().alpha(3).pruningMode(mode).build())
                        .activation(Activation.TANH).build())
                .layer(new RnnOutputLayer.Builder().nOut(2).activation(Activation.SOFTMAX).lossFunction(LossFunctions.LossFunction.MCXENT).build())
                .setInputType(InputType.recurrent(NIN)).build());
    }

    private static DataSet batch(long seed, DataType dt) {
        Nd4j.getRandom().setSeed(seed);
        INDArray x = Nd4j.rand(dt, MB, NIN, T).subi(0.5).muli(2);
        INDArray y = Nd4j.zeros(dt, MB, 2, T);
        for (int b = 0; b < MB; b++) for (int t = 0; t < T; t++) y.putScalar(b, (b + t + (int) seed) % 2, t, 1.0);
        INDArray mask = TestNets.randomMask(MB, T, seed, dt);
        return new DataSet(x, y, mask, mask);
    }

    // ---- brute-force references, written with loops over double[][] ----

    private static double[][] mat(INDArray a) {
        return a.castTo(DataType.DOUBLE).toDoubleMatrix();
    }

    /** rows (b·T+t) of an NCW batch. */
    private static double[][] rows(INDArray xNcw) {
        double[][] r = new double[MB * T][NIN];
        for (int b = 0; b < MB; b++) for (int t = 0; t < T; t++) for (int j = 0; j < NIN; j++) r[b * T + t][j] = xNcw.getDouble(b, j, t);
        return r;
    }

    private static double[][] project(double[][] x, double[][] w, double[][] a, double[][] bm, double s) {
        int n = x.length, nOut = w[0].length, r = a.length;
        double[][] y = new double[n][nOut];
        for (int i = 0; i < n; i++) {
            double[] h = new double[r];
            for (int k = 0; k < r; k++) for (int j = 0; j < x[0].length; j++) h[k] += x[i][j] * a[k][j];
            for (int o = 0; o < nOut; o++) {
                double v = 0;
                for (int j = 0; j < x[0].length; j++) v += x[i][j] * w[j][o];
                for (int k = 0; k < r; k++) v += s * h[k] * bm[o][k];
                y[i][o] = v;
            }
        }
        return y;
    }

    /** The attention context (input of the output projection) by loops: softmax over unmasked keys per head. */
    private static double[][] context(double[][] q, double[][] k, double[][] v, INDArray mask) {
        int d = NIN / HEADS;
        double[][] ctx = new double[MB * T][NIN];
        for (int b = 0; b < MB; b++) for (int h = 0; h < HEADS; h++) for (int tq = 0; tq < T; tq++) {
            double[] sc = new double[T];
            double max = Double.NEGATIVE_INFINITY;
            for (int tk = 0; tk < T; tk++) {
                double dot = 0;
                for (int e = 0; e < d; e++) dot += q[b * T + tq][h * d + e] * k[b * T + tk][h * d + e];
                sc[tk] = dot / Math.sqrt(d) + (mask.getDouble(b, tk) == 0 ? -1e9 : 0);
                max = Math.max(max, sc[tk]);
            }
            double z = 0;
            for (int tk = 0; tk < T; tk++) { sc[tk] = Math.exp(sc[tk] - max); z += sc[tk]; }
            for (int e = 0; e < d; e++) {
                double acc = 0;
                for (int tk = 0; tk < T; tk++) acc += sc[tk] / z * v[b * T + tk][h * d + e];
                ctx[b * T + tq][h * d + e] = acc;
            }
        }
        return ctx;
    }

    private static double[] maskedNorms(double[][] rows, INDArray mask) {
        double[] n = new double[rows[0].length];
        for (int i = 0; i < rows.length; i++) {
            if (mask.getDouble(i / T, i % T) == 0) continue;
            for (int j = 0; j < n.length; j++) n[j] += rows[i][j] * rows[i][j];
        }
        for (int j = 0; j < n.length; j++) n[j] = Math.sqrt(n[j]);
        return n;
    }

    @Test
    void statisticsEqualBruteForceRecomputationOverTheSameBatches() {
        double beta = 0.7;
        MultiLayerNetwork net = attentionThenDense(PruningMode.REGROW, DataType.DOUBLE);
        TestNets.randomizeAdapters(net.getLayers(), 4);
        net.setListeners(new PriLoraListener(PruningSchedule.builder().fraction(0.0).emaBeta(beta).build()));
        double[] emaQ = null, emaO = null, emaDense = null;
        for (int step = 0; step < 3; step++) {
            DataSet ds = batch(10 + step, DataType.DOUBLE);
            // reference with the parameters as they are before this step
            var att = net.getLayer(0);
            double sAtt = 4.0 / 2;
            double[][] x = rows(ds.getFeatures());
            double[][] q = project(x, mat(att.getParam("qW")), mat(att.getParam("qloraA")), mat(att.getParam("qloraB")), sAtt);
            double[][] k = project(x, mat(att.getParam("kW")), mat(att.getParam("kloraA")), mat(att.getParam("kloraB")), sAtt);
            double[][] v = project(x, mat(att.getParam("vW")), mat(att.getParam("vloraA")), mat(att.getParam("vloraB")), sAtt);
            double[][] ctx = context(q, k, v, ds.getFeaturesMaskArray());
            double[][] attOut = project(ctx, mat(att.getParam("oW")), mat(att.getParam("oloraA")), mat(att.getParam("oloraB")), sAtt);
            double[] nq = maskedNorms(x, ds.getFeaturesMaskArray());
            double[] no = maskedNorms(ctx, ds.getFeaturesMaskArray());
            double[] nd = maskedNorms(attOut, ds.getFeaturesMaskArray());
            emaQ = ema(emaQ, nq, beta);
            emaO = ema(emaO, no, beta);
            emaDense = ema(emaDense, nd, beta);
            net.fit(ds);
            assertClose(net.getLayer(0).getParam("qxnorm"), emaQ, step + 1);
            assertClose(net.getLayer(0).getParam("kxnorm"), emaQ, step + 1);
            assertClose(net.getLayer(0).getParam("oxnorm"), emaO, step + 1);
            assertClose(net.getLayer(1).getParam("xnorm"), emaDense, step + 1);
        }
    }

    private static double[] ema(double[] prev, double[] n, double beta) {
        if (prev == null) return n.clone();
        double[] out = new double[n.length];
        for (int j = 0; j < n.length; j++) out[j] = beta * prev[j] + (1 - beta) * n[j];
        return out;
    }

    private static void assertClose(INDArray state, double[] expected, long batches) {
        for (int j = 0; j < expected.length; j++) {
            assertThat(state.getDouble(0, j)).as("feature %d", j).isCloseTo(expected[j], within(1e-9 * (1 + expected[j])));
        }
        assertThat(state.getDouble(0, expected.length)).isEqualTo((double) batches);
    }

    /** Counts zeros per row of A⊙M for every site after every iteration. */
    private static final class ZeroCounter extends BaseTrainingListener {
        final List<List<int[]>> perStep = new ArrayList<>();

        @Override
        public void iterationDone(Model model, int iteration, int epoch) {
            List<int[]> rows = new ArrayList<>();
            for (var l : PriLoraListener.adaptedLayers(model)) {
                for (var s : ((org.prilora.layers.PriLoraLayer) l.conf().getLayer()).adapterModules()) {
                    INDArray a = l.getParam(s.aKey());
                    if (s.maskKey() != null) a = a.mul(l.getParam(s.maskKey()));
                    int[] z = new int[(int) a.size(0)];
                    for (int i = 0; i < z.length; i++) for (int j = 0; j < a.size(1); j++) if (a.getDouble(i, j) == 0.0) z[i]++;
                    rows.add(z);
                }
            }
            perStep.add(rows);
        }
    }

    @Test
    void pruningLeavesExactlyFloorGammaNInZerosPerRowOnlyInsideTheWindow() {
        for (PruningMode mode : PruningMode.values()) {
            MultiLayerNetwork net = attentionThenDense(mode, DataType.FLOAT);
            PruningSchedule sched = PruningSchedule.builder().fraction(0.5).interval(2).startStep(3).endStep(7).build();
            PriLoraListener listener = new PriLoraListener(sched);
            ZeroCounter counter = new ZeroCounter();
            net.setListeners(listener, counter); // counter runs after the pruning listener
            for (int i = 0; i < 10; i++) {
                net.fit(batch(i, DataType.FLOAT));
            }
            int kAtt = 3, kDense = 3; // floor(0.5·6) for attention q/k/v/o (nIn 6) and dense (nIn 6)
            for (int step = 1; step <= 10; step++) {
                List<int[]> rows = counter.perStep.get(step - 1);
                boolean pruned = sched.isPruningStep(step);
                boolean afterFirstPrune = step >= 3;
                for (int site = 0; site < rows.size(); site++) {
                    int k = site < 4 ? kAtt : kDense;
                    for (int z : rows.get(site)) {
                        if (pruned || (mode == PruningMode.PERSISTENT_MASK && afterFirstPrune)) {
                            assertThat(z).as("%s step %d site %d", mode, step, site).isEqualTo(k);
                        } else if (step < 3) {
                            assertThat(z).as("%s step %d site %d before the window", mode, step, site).isZero();
                        }
                    }
                }
            }
            assertThat(listener.getPruningStepsDone()).isEqualTo(3); // steps 3, 5, 7
            assertThat(listener.getLastPrunedStep()).isEqualTo(7);
            if (mode == PruningMode.REGROW) {
                // pruned entries stay trainable: some grow back after the window
                List<int[]> last = counter.perStep.get(9);
                assertThat(last.stream().mapToInt(r -> java.util.Arrays.stream(r).sum()).sum()).isLessThan(
                        counter.perStep.get(6).stream().mapToInt(r -> java.util.Arrays.stream(r).sum()).sum());
            }
            assertThat(PriLoraListener.figures(net)).hasSize(5).allSatisfy(f -> assertThat(f.batchesSeen()).isEqualTo(10));
        }
    }

    @Test
    void nonFiniteBatchFailsBeforeTheStepOrIsSkippedFromStatistics() {
        MultiLayerNetwork net = attentionThenDense(PruningMode.REGROW, DataType.FLOAT);
        net.setListeners(new PriLoraListener(PruningSchedule.builder().fraction(0.5).interval(1).startStep(1).build()));
        net.fit(batch(1, DataType.FLOAT));
        INDArray before = net.params().dup();
        DataSet bad = batch(2, DataType.FLOAT);
        bad.getFeatures().putScalar(0, 0, 0, Float.NaN);
        assertThatThrownBy(() -> net.fit(bad)).isInstanceOf(NonFiniteInputException.class)
                .hasMessageContaining("layer").hasMessageContaining("step 2");
        assertThat(net.params()).isEqualTo(before);

        MultiLayerNetwork net2 = attentionThenDense(PruningMode.REGROW, DataType.FLOAT);
        PriLoraListener skip = new PriLoraListener(PruningSchedule.none(), NonFinitePolicy.SKIP_STATISTICS);
        net2.setListeners(skip);
        net2.fit(batch(1, DataType.FLOAT));
        INDArray stats = net2.getLayer(0).getParam("qxnorm").dup();
        net2.fit(bad);
        assertThat(skip.getSkippedBatches()).isEqualTo(1);
        assertThat(net2.getLayer(0).getParam("qxnorm")).isEqualTo(stats);
    }
}
