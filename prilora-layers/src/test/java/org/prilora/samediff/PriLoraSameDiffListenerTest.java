package org.prilora.samediff;

import org.deeplearning4j.datasets.iterator.ExistingDataSetIterator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.BaseListener;
import org.nd4j.autodiff.listeners.Loss;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.NonFinitePolicy;
import org.prilora.config.PruningMode;
import org.prilora.samediff.SdGraphs.Style;
import org.prilora.ops.NonFiniteInputException;

import java.io.File;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.prilora.samediff.SameDiffPriLoraTest.MLP_WEIGHTS;
import static org.prilora.samediff.SameDiffPriLoraTest.cfg;

class PriLoraSameDiffListenerTest {

    static final double BETA = 0.5;     // cfg(): emaBeta 0.5, fraction 0.25, pruning at steps 2, 4, 6, …
    static final int K = 2;             // floor(0.25 · 8) entries pruned per row (every nIn is 8)

    // ------------------------------------------------------------------ brute-force references (plain loops)

    /** x̄ per input name, by loops in double. */
    static final class BruteEma {
        final Map<String, double[]> ema = new HashMap<>();
        final Map<String, Integer> count = new HashMap<>();

        void update(String name, INDArray x) {
            double[][] m = x.castTo(DataType.DOUBLE).toDoubleMatrix();
            double[] n = new double[m[0].length];
            for (double[] row : m) {
                for (int j = 0; j < n.length; j++) {
                    n[j] += row[j] * row[j];
                }
            }
            for (int j = 0; j < n.length; j++) {
                n[j] = Math.sqrt(n[j]);
            }
            double[] e = ema.get(name);
            if (e == null) {
                ema.put(name, n);
            } else {
                for (int j = 0; j < n.length; j++) {
                    e[j] = BETA * e[j] + (1 - BETA) * n[j];
                }
            }
            count.merge(name, 1, Integer::sum);
        }
    }

    /** The adapted inputs of one batch, computed by inference on the graph's current parameters. */
    static Map<String, INDArray> inputs(SameDiff sd, String placeholder, INDArray features, List<GraphModule> sites) {
        Map<String, INDArray> out = new TreeMap<>();
        List<String> computed = new ArrayList<>();
        for (GraphModule s : sites) {
            if (s.inputName().equals(placeholder)) {
                out.put(placeholder, features);
            } else if (!computed.contains(s.inputName())) {
                computed.add(s.inputName());
            }
        }
        if (!computed.isEmpty()) {
            sd.output(Map.of(placeholder, features), computed.toArray(new String[0])).forEach((k, v) -> out.put(k, v.dup('c')));
        }
        return out;
    }

    /** A with, in every row, the k entries of smallest |A|·x̄ zeroed (ties: lowest column first). */
    static double[][] bruteForcePrune(double[][] a, double[] xbar, int k) {
        double[][] out = new double[a.length][];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i].clone();
            boolean[] taken = new boolean[xbar.length];
            for (int n = 0; n < k; n++) {
                int best = -1;
                for (int j = 0; j < xbar.length; j++) {
                    if (!taken[j] && (best < 0 || Math.abs(a[i][j]) * xbar[j] < Math.abs(a[i][best]) * xbar[best])) {
                        best = j;
                    }
                }
                taken[best] = true;
                out[i][best] = 0.0;
            }
        }
        return out;
    }

    static int[] zerosPerRow(INDArray m) {
        double[][] d = m.castTo(DataType.DOUBLE).toDoubleMatrix();
        int[] z = new int[d.length];
        for (int i = 0; i < d.length; i++) {
            for (double v : d[i]) {
                if (v == 0.0) {
                    z[i]++;
                }
            }
        }
        return z;
    }

    /** Copies every site's A at iterationDone; placed before the PRILoRA listener, it sees A after the update, before pruning. */
    static final class CaptureA extends BaseListener {
        final List<GraphModule> sites;
        final Map<String, INDArray> a = new HashMap<>();

        CaptureA(List<GraphModule> sites) {
            this.sites = sites;
        }

        @Override
        public boolean isActive(Operation operation) {
            return operation == Operation.TRAINING;
        }

        @Override
        public void iterationDone(SameDiff sd, At at, MultiDataSet dataSet, Loss loss) {
            for (GraphModule s : sites) {
                a.put(s.weightName(), s.a(sd).dup());
            }
        }
    }

    // ------------------------------------------------------------------ statistics

    @ParameterizedTest
    @ValueSource(strings = {"mlp", "linear-chain", "attention"})
    void statisticsEqualABruteForceRecomputation(String graph) {
        boolean mlp = !graph.equals("attention");
        SameDiff sd = graph.equals("mlp") ? SdGraphs.mlp(Style.MMUL, 3) : mlp ? SdGraphs.linearChain(3) : SdGraphs.attention(3);
        String ph = mlp ? "in" : "x";
        WeightSelector sel = graph.equals("mlp") ? MLP_WEIGHTS : mlp ? WeightSelector.names("top/W")
                : WeightSelector.regex("attn/[qkvo]/W");
        InjectionReport r = SameDiffPriLora.inject(sd, cfg(PruningMode.REGROW), sel);
        List<DataSet> batches = mlp ? SdGraphs.mlpBatches(5, 21) : SdGraphs.attentionBatches(5, 21);
        PriLoraSameDiffListener listener = new PriLoraSameDiffListener();
        BruteEma ref = new BruteEma();
        for (int step = 1; step <= batches.size(); step++) {
            DataSet ds = batches.get(step - 1);
            inputs(sd, ph, ds.getFeatures(), r.modules()).forEach(ref::update);
            sd.fit(ds, listener);
            for (GraphModule s : r.modules()) {
                double[] state = s.inputNormState(sd).castTo(DataType.DOUBLE).toDoubleVector();
                double[] expected = ref.ema.get(s.inputName());
                assertThat(state).hasSize(expected.length + 1);
                for (int j = 0; j < expected.length; j++) {
                    assertThat(Math.abs(state[j] - expected[j])).as("%s x̄[%d] at step %d", s.weightName(), j, step)
                            .isLessThanOrEqualTo(1e-5 * Math.max(1.0, Math.abs(expected[j])));
                }
                assertThat(state[expected.length]).as("batch count").isEqualTo(step);
            }
        }
        assertThat(sd.getTrainingConfig().getIterationCount()).isEqualTo(batches.size());
        assertThat(listener.getPruningStepsDone()).isEqualTo(2);   // steps 2 and 4
        assertThat(listener.getLastPrunedStep()).isEqualTo(4);
    }

    @Test
    void inferenceDoesNotTouchTheStatistics() {
        SameDiff sd = SdGraphs.mlp(Style.LINEAR, 3);
        InjectionReport r = SameDiffPriLora.inject(sd, cfg(PruningMode.REGROW), MLP_WEIGHTS);
        sd.setListeners(new PriLoraSameDiffListener());
        sd.fit(SdGraphs.mlpBatches(1, 2).get(0));
        INDArray state = r.modules().get(1).inputNormState(sd).dup();
        sd.output(Map.of("in", SdGraphs.features(3, 4, SdGraphs.NIN)), "logits");
        assertThat(r.modules().get(1).inputNormState(sd)).isEqualTo(state);
        assertThat(state.getDouble(SdGraphs.HID)).isEqualTo(1.0);
    }

    // ------------------------------------------------------------------ pruning

    @Test
    void regrowPruningZeroesExactlyTheLowestScoringEntriesOfEachRow() {
        SameDiff sd = SdGraphs.mlp(Style.MMUL, 4);
        InjectionReport r = SameDiffPriLora.inject(sd, cfg(PruningMode.REGROW), MLP_WEIGHTS);
        PriLoraSameDiffListener listener = new PriLoraSameDiffListener();
        CaptureA capture = new CaptureA(r.modules());
        BruteEma ref = new BruteEma();
        List<DataSet> batches = SdGraphs.mlpBatches(5, 31);
        for (int step = 1; step <= batches.size(); step++) {
            DataSet ds = batches.get(step - 1);
            inputs(sd, "in", ds.getFeatures(), r.modules()).forEach(ref::update);
            sd.fit(ds, capture, listener);
            boolean pruning = step % 2 == 0;
            for (GraphModule s : r.modules()) {
                INDArray updated = capture.a.get(s.weightName());
                INDArray a = s.a(sd);
                if (!pruning) {
                    assertThat(a).as("step %d does not prune", step).isEqualTo(updated);
                    continue;
                }
                double[][] expected = bruteForcePrune(updated.castTo(DataType.DOUBLE).toDoubleMatrix(),
                        ref.ema.get(s.inputName()), K);
                assertThat(a.castTo(DataType.DOUBLE).toDoubleMatrix()).as("%s at step %d", s.weightName(), step)
                        .isDeepEqualTo(expected);
                assertThat(zerosPerRow(a)).as("zeros per row of %s", s.weightName()).containsOnly(K);
            }
        }
        // REGROW: pruned entries were trained again after step 4.
        assertThat(zerosPerRow(r.modules().get(0).a(sd))).containsOnly(0);
    }

    @Test
    void persistentMaskKeepsTheSamePrunedEntriesAtZeroAtEveryLaterStep() {
        SameDiff sd = SdGraphs.mlp(Style.LINEAR, 5);
        InjectionReport r = SameDiffPriLora.inject(sd, cfg(PruningMode.PERSISTENT_MASK), MLP_WEIGHTS);
        PriLoraSameDiffListener listener = new PriLoraSameDiffListener();
        Map<String, INDArray> firstMask = new HashMap<>();
        List<DataSet> batches = SdGraphs.mlpBatches(7, 41);
        for (int step = 1; step <= batches.size(); step++) {
            sd.fit(batches.get(step - 1), listener);
            for (GraphModule s : r.modules()) {
                INDArray mask = s.mask(sd);
                INDArray a = s.a(sd);
                if (step < 2) {
                    assertThat(zerosPerRow(mask)).containsOnly(0);
                    continue;
                }
                assertThat(zerosPerRow(mask)).as("%s mask at step %d", s.weightName(), step).containsOnly(K);
                assertThat(a.mul(mask.rsub(1.0)).amaxNumber().doubleValue()).as("A outside the mask").isZero();
                assertThat(zerosPerRow(a)).as("%s A at step %d", s.weightName(), step).containsOnly(K);
                firstMask.putIfAbsent(s.weightName(), mask.dup());
                assertThat(mask).isEqualTo(firstMask.get(s.weightName()));
            }
        }
        assertThat(listener.getPruningStepsDone()).isEqualTo(3);
    }

    // ------------------------------------------------------------------ save / load / resume

    @ParameterizedTest
    @EnumSource(PruningMode.class)
    void saveLoadAndContinueEqualsUninterruptedTraining(PruningMode mode, @TempDir File dir) {
        List<DataSet> batches = SdGraphs.mlpBatches(6, 51);
        PriLoraConfig c = cfg(mode);

        SameDiff straight = SdGraphs.mlp(Style.MMUL, 6);
        InjectionReport r = SameDiffPriLora.inject(straight, c, MLP_WEIGHTS);
        straight.fit(new ExistingDataSetIterator(batches), 1, new PriLoraSameDiffListener());

        SameDiff first = SdGraphs.mlp(Style.MMUL, 6);
        SameDiffPriLora.inject(first, c, MLP_WEIGHTS);
        first.fit(new ExistingDataSetIterator(batches.subList(0, 3)), 1, new PriLoraSameDiffListener());
        File f = new File(dir, "half.fb");
        first.save(f, true);
        SameDiff resumed = SameDiff.load(f, true);
        assertThat(resumed.getTrainingConfig().getIterationCount()).isEqualTo(3);
        assertThat(resumed.getUpdaterMap()).as("sd.save(file, true) keeps Adam's state").isNotEmpty();
        PriLoraSameDiffListener second = new PriLoraSameDiffListener();
        resumed.fit(new ExistingDataSetIterator(batches.subList(3, 6)), 1, second);
        assertThat(second.getLastPrunedStep()).isEqualTo(6);
        assertThat(second.getPruningStepsDone()).isEqualTo(2);   // steps 4 and 6

        for (GraphModule s : r.modules()) {
            assertThat(s.a(resumed)).as(s.aName()).isEqualTo(s.a(straight));
            assertThat(s.b(resumed)).as(s.bName()).isEqualTo(s.b(straight));
            assertThat(s.inputNormState(resumed)).as(s.stateName()).isEqualTo(s.inputNormState(straight));
            if (mode == PruningMode.PERSISTENT_MASK) {
                assertThat(s.mask(resumed)).as(s.maskName()).isEqualTo(s.mask(straight));
            }
            assertThat(s.storedWeight(resumed)).isEqualTo(s.storedWeight(straight));
            assertThat(s.inputNormState(resumed).getDouble(s.nIn())).isEqualTo(6.0);
        }
    }

    // ------------------------------------------------------------------ bad batches and misuse

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void nonFiniteBatchIsRejectedBeforeAnythingChanges(boolean placeholderInput) {
        SameDiff sd = SdGraphs.mlp(Style.MMUL, 7);
        WeightSelector sel = placeholderInput ? MLP_WEIGHTS : WeightSelector.regex("layer_([12])/W");
        InjectionReport r = SameDiffPriLora.inject(sd, cfg(PruningMode.PERSISTENT_MASK), sel);
        PriLoraSameDiffListener listener = new PriLoraSameDiffListener();
        sd.fit(new ExistingDataSetIterator(SdGraphs.mlpBatches(2, 61)), 1, listener);
        Map<String, INDArray> before = new HashMap<>();
        for (GraphModule s : r.modules()) {
            for (String v : List.of(s.aName(), s.bName(), s.stateName(), s.maskName())) {
                before.put(v, sd.getArrForVarName(v).dup());
            }
        }
        DataSet bad = SdGraphs.mlpBatches(1, 62).get(0);
        bad.getFeatures().putScalar(1, 3, Double.NaN);

        assertThatThrownBy(() -> sd.fit(bad, listener))
                .isInstanceOf(NonFiniteInputException.class)
                .hasMessageContaining("NaN or infinity at step 3")
                .hasMessageContaining(placeholderInput ? "input 'in' of [layer_0/W]" : "input 'layer_0/out' of [layer_1/W]");
        before.forEach((v, arr) -> assertThat(sd.getArrForVarName(v)).as(v).isEqualTo(arr));
        assertThat(sd.getTrainingConfig().getIterationCount()).isEqualTo(2);

        // Training goes on with the next good batch, as step 3.
        sd.fit(SdGraphs.mlpBatches(1, 63).get(0), listener);
        assertThat(r.modules().get(0).inputNormState(sd).getDouble(r.modules().get(0).nIn())).isEqualTo(3.0);
    }

    @Test
    void skipStatisticsPolicyLeavesTheBatchOutOfTheStatistics() {
        SameDiff sd = SdGraphs.mlp(Style.MMUL, 8);
        InjectionReport r = SameDiffPriLora.inject(sd, cfg(PruningMode.REGROW), MLP_WEIGHTS);
        PriLoraSameDiffListener listener = new PriLoraSameDiffListener(null, NonFinitePolicy.SKIP_STATISTICS);
        sd.fit(SdGraphs.mlpBatches(1, 71).get(0), listener);
        Map<String, INDArray> states = new HashMap<>();
        r.modules().forEach(s -> states.put(s.stateName(), s.inputNormState(sd).dup()));
        DataSet bad = SdGraphs.mlpBatches(1, 72).get(0);
        bad.getFeatures().putScalar(0, 0, Double.POSITIVE_INFINITY);
        sd.fit(bad, listener);
        assertThat(listener.getSkippedBatches()).isEqualTo(1);
        states.forEach((v, arr) -> assertThat(sd.getArrForVarName(v)).as(v).isEqualTo(arr));
    }

    @Test
    void listenerNeedsAnAdaptedGraph() {
        SameDiff plain = SdGraphs.mlp(Style.MMUL, 9);
        assertThatThrownBy(() -> plain.fit(SdGraphs.mlpBatches(1, 1).get(0), new PriLoraSameDiffListener()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("holds no adapters");
    }
}
