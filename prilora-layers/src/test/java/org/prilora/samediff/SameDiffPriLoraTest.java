package org.prilora.samediff;

import org.deeplearning4j.datasets.iterator.ExistingDataSetIterator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.ops.LoraLinear;
import org.prilora.config.ScalingMode;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.PruningMode;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;
import org.prilora.samediff.SdGraphs.Style;

import java.io.File;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.prilora.samediff.SdGraphs.NIN;
import static org.prilora.samediff.SdGraphs.features;

class SameDiffPriLoraTest {

    static final WeightSelector MLP_WEIGHTS = WeightSelector.regex("layer_(\\d+)/W");

    static PriLoraConfig cfg(PruningMode mode) {
        return PriLoraConfig.builder().rankSchedule(RankSchedule.linear(2, 6)).alpha(4).seed(7)
                .pruning(PruningSchedule.builder().fraction(0.25).interval(2).startStep(2).emaBeta(0.5).build()).pruningMode(mode)
                .build();
    }

    /**
     * One output, as a c-ordered copy: in ND4J M2.1 the output of xw_plus_b (nn.linear) carries order flag 'f' with
     * c strides, which Java-side ops such as castTo and sub misread.
     */
    static INDArray out(SameDiff sd, String ph, INDArray x, String name) {
        return sd.output(Map.of(ph, x), name).get(name).dup('c');
    }

    static double maxRelDiff(INDArray actual, INDArray expected) {
        double diff = actual.castTo(DataType.DOUBLE).sub(expected.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
        return diff / Math.max(1e-12, expected.amaxNumber().doubleValue());
    }

    static Map<String, INDArray> snapshot(SameDiff sd, VariableType type) {
        Map<String, INDArray> m = new TreeMap<>();
        for (SDVariable v : sd.variables()) {
            if (v.getVariableType() == type && v.dataType().isFPType()) {
                m.put(v.name(), v.getArr().dup());
            }
        }
        return m;
    }

    static Map<String, Long> opTypes(SameDiff sd) {
        return sd.getOps().values().stream().collect(Collectors.groupingBy(o -> o.getOp().opName(), TreeMap::new,
                Collectors.counting()));
    }

    // ------------------------------------------------------------------ inject

    @ParameterizedTest
    @EnumSource(Style.class)
    void injectedMlpStartsEqualToTheOriginalAndReportsItsSites(Style style) {
        SameDiff base = SdGraphs.mlp(style, 1);
        SameDiff sd = SdGraphs.mlp(style, 1);
        InjectionReport r = SameDiffPriLora.inject(sd, cfg(PruningMode.REGROW), MLP_WEIGHTS);

        INDArray x = features(11, 5, NIN);
        for (String name : List.of("layer_0/out", "layer_1/out", "logits")) {
            assertThat(maxRelDiff(out(sd, "in", x, name), out(base, "in", x, name))).as(name).isLessThanOrEqualTo(1e-6);
        }

        assertThat(r.numBlocks()).isEqualTo(3);
        assertThat(r.modules()).extracting(GraphModule::weightName).containsExactly("layer_0/W", "layer_1/W", "layer_2/W");
        assertThat(r.modules()).extracting(GraphModule::block).containsExactly(0, 1, 2);
        assertThat(r.modules()).extracting(GraphModule::rank).containsExactly(2, 4, 6);
        assertThat(r.modules()).extracting(GraphModule::inputName).containsExactly("in", "layer_0/out", "layer_1/out");
        GraphModule s2 = r.module("layer_2/W");
        assertThat(s2.moduleName()).isEqualTo("layer_2/W");
        assertThat(s2.opKind()).isEqualTo(style == Style.MMUL ? GraphModule.OpKind.MMUL : GraphModule.OpKind.XW_PLUS_B);
        assertThat(s2.biasName()).isEqualTo(style == Style.MMUL ? null : "layer_2/b");
        assertThat(s2.outputName()).isEqualTo(style == Style.MMUL ? "layer_2/z" : "logits");
        assertThat(s2.nIn()).isEqualTo(SdGraphs.HID);
        assertThat(s2.nOut()).isEqualTo(SdGraphs.NOUT);
        assertThat(s2.scale()).isEqualTo(ScalingMode.ALPHA_OVER_R.scale(4, 6));
        assertThat(s2.aName()).isEqualTo("layer_2/W_lora_A");
        assertThat(s2.bName()).isEqualTo("layer_2/W_lora_B");
        assertThat(s2.stateName()).isEqualTo("layer_2/W_lora_state");
        assertThat(s2.maskName()).isNull();
        assertThat(s2.a(sd).shape()).containsExactly(6, SdGraphs.HID);
        assertThat(s2.b(sd).shape()).containsExactly(SdGraphs.NOUT, 6);
        assertThat(s2.b(sd).amaxNumber().doubleValue()).isZero();
        assertThat(s2.a(sd).amaxNumber().doubleValue()).isPositive().isLessThanOrEqualTo(1 / Math.sqrt(SdGraphs.HID));
        assertThat(s2.inputNormState(sd).shape()).containsExactly(SdGraphs.HID + 1);
        assertThat(s2.w0(sd)).isEqualTo(base.getArrForVarName("layer_2/W"));
        assertThat(r.frozenVariables()).containsExactlyInAnyOrder("layer_0/W", "layer_0/b", "layer_1/W", "layer_1/b",
                "layer_2/W", "layer_2/b");
        assertThat(SameDiffPriLora.report(sd)).isEqualTo(r);
        assertThat(SameDiffPriLora.isAdapted(sd)).isTrue();
        assertThat(SameDiffPriLora.isAdapted(base)).isFalse();
    }

    @Test
    void seededInitialisationIsReproducible() {
        SameDiff a = SdGraphs.mlp(Style.MMUL, 1);
        SameDiff b = SdGraphs.mlp(Style.MMUL, 1);
        InjectionReport ra = SameDiffPriLora.inject(a, cfg(PruningMode.REGROW), MLP_WEIGHTS);
        SameDiffPriLora.inject(b, cfg(PruningMode.REGROW), MLP_WEIGHTS);
        for (GraphModule s : ra.modules()) {
            assertThat(s.a(b)).isEqualTo(s.a(a));
        }
        SameDiff c = SdGraphs.mlp(Style.MMUL, 1);
        SameDiffPriLora.inject(c, cfg(PruningMode.REGROW).toBuilder().seed(8).build(), MLP_WEIGHTS);
        assertThat(ra.modules().get(0).a(c)).isNotEqualTo(ra.modules().get(0).a(a));
    }

    @ParameterizedTest
    @EnumSource(Style.class)
    void onlyAAndBAreTrainedAndFrozenWeightsStayBitIdentical(Style style) {
        SameDiff sd = SdGraphs.mlp(style, 2);
        InjectionReport r = SameDiffPriLora.inject(sd, cfg(PruningMode.REGROW), MLP_WEIGHTS);
        Set<String> adapters = r.modules().stream().flatMap(s -> List.of(s.aName(), s.bName()).stream()).collect(Collectors.toSet());

        assertThat(snapshot(sd, VariableType.VARIABLE).keySet()).containsExactlyInAnyOrderElementsOf(adapters);
        for (GraphModule s : r.modules()) {
            assertThat(sd.getVariable(s.weightName()).getVariableType()).isEqualTo(VariableType.CONSTANT);
            assertThat(sd.getVariable(s.stateName()).getVariableType()).isEqualTo(VariableType.CONSTANT);
        }
        DataSet batch = SdGraphs.mlpBatches(1, 3).get(0);
        Map<String, INDArray> grads = sd.calculateGradients(Map.of("in", batch.getFeatures(), "label", batch.getLabels()),
                new ArrayList<>(adapters));
        for (GraphModule s : r.modules()) {
            assertThat(grads.get(s.bName()).amaxNumber().doubleValue()).as(s.bName()).isPositive();   // B = 0, so dA = 0
            assertThat(sd.getGradForVariable(s.weightName())).as("no gradient for " + s.weightName()).isNull();
        }

        Map<String, INDArray> frozenBefore = snapshot(sd, VariableType.CONSTANT);
        Map<String, INDArray> trainedBefore = snapshot(sd, VariableType.VARIABLE);
        sd.fit(new ExistingDataSetIterator(SdGraphs.mlpBatches(4, 4)), 1, new PriLoraSameDiffListener());
        Map<String, INDArray> frozenAfter = snapshot(sd, VariableType.CONSTANT);
        for (GraphModule s : r.modules()) {
            assertThat(frozenAfter.get(s.weightName())).as(s.weightName()).isEqualTo(frozenBefore.get(s.weightName()));
            assertThat(sd.getArrForVarName(s.aName())).isNotEqualTo(trainedBefore.get(s.aName()));
            assertThat(sd.getArrForVarName(s.bName())).isNotEqualTo(trainedBefore.get(s.bName()));
        }
        for (String f : r.frozenVariables()) {
            assertThat(frozenAfter.get(f)).as(f).isEqualTo(frozenBefore.get(f));
        }
        assertThat(sd.getUpdaterMap().keySet()).containsExactlyInAnyOrderElementsOf(adapters);
    }

    @Test
    void modulesToSaveStayTrainableAndMergeRestoresVariableTypes() {
        SameDiff sd = SdGraphs.mlp(Style.LINEAR, 5);
        PriLoraConfig c = cfg(PruningMode.REGROW).toBuilder().modulesToSave("layer_2/b").build();
        InjectionReport r = SameDiffPriLora.inject(sd, c, MLP_WEIGHTS);
        assertThat(r.frozenVariables()).doesNotContain("layer_2/b");
        assertThat(sd.getVariable("layer_2/b").getVariableType()).isEqualTo(VariableType.VARIABLE);
        INDArray before = sd.getArrForVarName("layer_2/b").dup();
        sd.fit(new ExistingDataSetIterator(SdGraphs.mlpBatches(2, 6)), 1, new PriLoraSameDiffListener());
        assertThat(sd.getArrForVarName("layer_2/b")).isNotEqualTo(before);
        SameDiff merged = SameDiffPriLora.merge(sd);
        for (String v : List.of("layer_0/W", "layer_0/b", "layer_1/W", "layer_1/b", "layer_2/W", "layer_2/b")) {
            assertThat(merged.getVariable(v).getVariableType()).as(v).isEqualTo(VariableType.VARIABLE);
        }
    }

    @Test
    void attentionProjectionsShareOneBlockAndStartEqual() {
        SameDiff base = SdGraphs.attention(3);
        SameDiff sd = SdGraphs.attention(3);
        InjectionReport r = SameDiffPriLora.inject(sd, cfg(PruningMode.REGROW),
                WeightSelector.regex("attn/[qkvo]/W").blockBy(n -> 0));
        assertThat(r.modules()).extracting(GraphModule::weightName).containsExactly("attn/q/W", "attn/k/W", "attn/v/W", "attn/o/W");
        assertThat(r.modules()).extracting(GraphModule::rank).containsOnly(4);    // one block: mean of 2 and 6
        assertThat(r.modules()).extracting(GraphModule::inputName).containsExactly("x", "x", "x", "ctx");
        INDArray x = features(12, SdGraphs.T, SdGraphs.D);
        assertThat(maxRelDiff(out(sd, "x", x, "out"), out(base, "x", x, "out"))).isLessThanOrEqualTo(1e-6);
        // The adapted output's layout is one that Java-side ops read correctly (see SameDiffPriLora.adapt).
        INDArray raw = sd.output(Map.of("x", x), "out").get("out");
        assertThat(raw.castTo(DataType.DOUBLE)).isEqualTo(raw.dup('c').castTo(DataType.DOUBLE));

        Map<String, INDArray> frozen = snapshot(sd, VariableType.CONSTANT);
        sd.fit(new ExistingDataSetIterator(SdGraphs.attentionBatches(3, 5)), 1, new PriLoraSameDiffListener());
        for (GraphModule s : r.modules()) {
            assertThat(sd.getArrForVarName(s.weightName())).isEqualTo(frozen.get(s.weightName()));
        }
        // In place, on the graph that was just trained (it has a gradient function and updater state).
        INDArray adapted = out(sd, "x", x, "out");
        SameDiff merged = SameDiffPriLora.mergeInPlace(sd);
        assertThat(merged).isSameAs(sd);
        assertThat(maxRelDiff(out(merged, "x", x, "out"), adapted)).isLessThanOrEqualTo(1e-5);
        assertThat(opTypes(merged)).isEqualTo(opTypes(base));
        assertThat(merged.getVariables().keySet()).containsExactlyInAnyOrderElementsOf(base.getVariables().keySet());
        merged.fit(SdGraphs.attentionBatches(1, 6).get(0));
        assertThat(merged.getUpdaterMap().keySet()).containsExactlyInAnyOrder("attn/q/W", "attn/k/W", "attn/v/W", "attn/o/W");
    }

    @Test
    void transposedWeightIsAdaptedAndMergedInItsOwnOrientation() {
        Random rnd = new Random(9);
        SameDiff[] g = new SameDiff[2];
        for (int i = 0; i < 2; i++) {
            rnd = new Random(9);
            SameDiff sd = SameDiff.create();
            SDVariable in = sd.placeHolder("in", DataType.FLOAT, -1, NIN);
            SDVariable label = sd.placeHolder("label", DataType.FLOAT, -1, SdGraphs.NOUT);
            SDVariable wt = sd.var("proj/W", SdGraphs.rand(rnd, 0.5, SdGraphs.NOUT, NIN));   // [nOut, nIn]
            SDVariable y = sd.mmul("y", in, wt, false, true, false);
            sd.loss.softmaxCrossEntropy("loss", label, y, null);
            sd.setLossVariables("loss");
            sd.setTrainingConfig(SdGraphs.trainingConfig("in", "label"));
            g[i] = sd;
        }
        SameDiff base = g[0], sd = g[1];
        InjectionReport r = SameDiffPriLora.inject(sd, cfg(PruningMode.PERSISTENT_MASK), WeightSelector.names("proj/W"));
        GraphModule s = r.modules().get(0);
        assertThat(s.weightTransposed()).isTrue();
        assertThat(s.nIn()).isEqualTo(NIN);
        assertThat(s.nOut()).isEqualTo(SdGraphs.NOUT);
        assertThat(s.w0(sd).shape()).containsExactly(NIN, SdGraphs.NOUT);
        INDArray x = features(13, 4, NIN);
        assertThat(maxRelDiff(out(sd, "in", x, "y"), out(base, "in", x, "y"))).isLessThanOrEqualTo(1e-6);

        sd.fit(new ExistingDataSetIterator(SdGraphs.mlpBatches(4, 10)), 1, new PriLoraSameDiffListener());
        SameDiff merged = SameDiffPriLora.merge(sd);
        assertThat(merged.getArrForVarName("proj/W").shape()).containsExactly(SdGraphs.NOUT, NIN);
        assertThat(maxRelDiff(out(merged, "in", x, "y"), out(sd, "in", x, "y"))).isLessThanOrEqualTo(1e-5);
        assertThat(opTypes(merged)).isEqualTo(opTypes(base));
    }

    // ------------------------------------------------------------------ merge

    @ParameterizedTest
    @EnumSource(PruningMode.class)
    void mergeRestoresTheOriginalStructureWithEqualOutputs(PruningMode mode, @TempDir File dir) {
        SameDiff base = SdGraphs.mlp(Style.MMUL, 4);
        SameDiff sd = SdGraphs.mlp(Style.MMUL, 4);
        InjectionReport r = SameDiffPriLora.inject(sd, cfg(mode), MLP_WEIGHTS);
        sd.fit(new ExistingDataSetIterator(SdGraphs.mlpBatches(5, 8)), 1, new PriLoraSameDiffListener());
        INDArray x = features(14, 7, NIN);
        INDArray adapted = out(sd, "in", x, "logits");
        assertThat(maxRelDiff(adapted, out(base, "in", x, "logits"))).as("training changed the outputs").isGreaterThan(1e-4);

        SameDiff merged = SameDiffPriLora.merge(sd);
        assertThat(maxRelDiff(out(merged, "in", x, "logits"), adapted)).isLessThanOrEqualTo(1e-5);
        assertThat(merged.getVariables().keySet()).containsExactlyInAnyOrderElementsOf(base.getVariables().keySet());
        assertThat(opTypes(merged)).isEqualTo(opTypes(base));
        assertThat(SameDiffPriLora.isAdapted(merged)).isFalse();
        for (GraphModule s : r.modules()) {
            assertThat(merged.getVariable(s.weightName()).getVariableType()).isEqualTo(VariableType.VARIABLE);
            INDArray expected = LoraLinear.mergedWeight(s.w0(sd), s.a(sd), s.b(sd), s.mask(sd), s.scale());
            assertThat(merged.getArrForVarName(s.weightName())).isEqualTo(expected);
        }
        // The adapted graph itself is untouched and still trains.
        assertThat(SameDiffPriLora.isAdapted(sd)).isTrue();
        assertThat(out(sd, "in", x, "logits")).isEqualTo(adapted);
        // The merged graph saves and loads like any graph.
        File f = new File(dir, "merged.fb");
        merged.save(f, false);
        assertThat(out(SameDiff.load(f, false), "in", x, "logits")).isEqualTo(out(merged, "in", x, "logits"));
        // The merged graph is a plain, consistent graph: it trains every weight again.
        INDArray w0 = merged.getArrForVarName("layer_0/W").dup();
        merged.fit(SdGraphs.mlpBatches(1, 9).get(0));
        assertThat(merged.getArrForVarName("layer_0/W")).isNotEqualTo(w0);
        assertThat(merged.getUpdaterMap().keySet()).containsExactlyInAnyOrderElementsOf(
                snapshot(base, VariableType.VARIABLE).keySet());
    }

    @Test
    void mergeInPlaceWorksOnALoadedGraph(@TempDir File dir) {
        SameDiff sd = SdGraphs.mlp(Style.LINEAR, 6);
        SameDiffPriLora.inject(sd, cfg(PruningMode.PERSISTENT_MASK), MLP_WEIGHTS);
        sd.fit(new ExistingDataSetIterator(SdGraphs.mlpBatches(4, 8)), 1, new PriLoraSameDiffListener());
        File f = new File(dir, "adapted.fb");
        sd.save(f, true);
        SameDiff loaded = SameDiff.load(f, true);
        INDArray x = features(15, 3, NIN);
        INDArray adapted = out(sd, "in", x, "logits");
        assertThat(out(loaded, "in", x, "logits")).isEqualTo(adapted);
        assertThat(SameDiffPriLora.report(loaded)).isEqualTo(SameDiffPriLora.report(sd));

        SameDiff same = SameDiffPriLora.mergeInPlace(loaded);
        assertThat(same).isSameAs(loaded);
        assertThat(maxRelDiff(out(loaded, "in", x, "logits"), adapted)).isLessThanOrEqualTo(1e-5);
        assertThat(loaded.getUpdaterMap().keySet()).containsExactlyInAnyOrder("layer_0/W", "layer_0/b", "layer_1/W",
                "layer_1/b", "layer_2/W", "layer_2/b");
        loaded.fit(SdGraphs.mlpBatches(1, 9).get(0));
    }

    // ------------------------------------------------------------------ a graph that was already trained

    @Test
    void graphRestoredWithUpdaterStateCanBeAdapted(@TempDir File dir) {
        SameDiff pre = SdGraphs.mlp(Style.MMUL, 7);
        pre.fit(SdGraphs.mlpBatches(1, 1).get(0));
        assertThatThrownBy(() -> SameDiffPriLora.inject(pre, cfg(PruningMode.REGROW), MLP_WEIGHTS))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("already has a gradient function")
                .hasMessageContaining("before the first gradient computation");

        File f = new File(dir, "pretrained.fb");
        pre.save(f, true);
        SameDiff sd = SameDiff.load(f, true);
        assertThat(sd.isInitializedTraining()).isTrue();
        InjectionReport r = SameDiffPriLora.inject(sd, cfg(PruningMode.REGROW), MLP_WEIGHTS);
        Set<String> adapters = r.modules().stream().flatMap(s -> List.of(s.aName(), s.bName()).stream()).collect(Collectors.toSet());
        assertThat(sd.getUpdaterMap().keySet()).containsExactlyInAnyOrderElementsOf(adapters);
        Map<String, INDArray> frozen = snapshot(sd, VariableType.CONSTANT);
        sd.fit(new ExistingDataSetIterator(SdGraphs.mlpBatches(2, 2)), 1, new PriLoraSameDiffListener());
        assertThat(snapshot(sd, VariableType.CONSTANT).get("layer_1/W")).isEqualTo(frozen.get("layer_1/W"));
    }

    // ------------------------------------------------------------------ errors

    @Test
    void selectorThatMatchesNothingListsTheWeightsFound() {
        SameDiff sd = SdGraphs.mlp(Style.MMUL, 1);
        Map<String, Long> opsBefore = opTypes(sd);
        assertThatThrownBy(() -> SameDiffPriLora.inject(sd, cfg(PruningMode.REGROW), WeightSelector.regex("dense_\\d+/kernel")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("matched no weight")
                .hasMessageContaining("dense_\\d+/kernel")
                .hasMessageContaining("[layer_0/W, layer_1/W, layer_2/W]");
        assertThat(opTypes(sd)).isEqualTo(opsBefore);
        assertThat(SameDiffPriLora.isAdapted(sd)).isFalse();
        assertThat(sd.getVariable("layer_0/W").getVariableType()).isEqualTo(VariableType.VARIABLE);
    }

    @Test
    void injectingTwiceFails() {
        SameDiff sd = SdGraphs.mlp(Style.MMUL, 1);
        SameDiffPriLora.inject(sd, cfg(PruningMode.REGROW), WeightSelector.names("layer_0/W"));
        assertThatThrownBy(() -> SameDiffPriLora.inject(sd, cfg(PruningMode.REGROW), MLP_WEIGHTS))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("already holds adapters on [layer_0/W]");
    }

    @Test
    void injectingAfterGradientsExistFails() {
        SameDiff sd = SdGraphs.mlp(Style.MMUL, 1);
        DataSet b = SdGraphs.mlpBatches(1, 1).get(0);
        sd.calculateGradients(Map.of("in", b.getFeatures(), "label", b.getLabels()), "layer_0/W");
        assertThatThrownBy(() -> SameDiffPriLora.inject(sd, cfg(PruningMode.REGROW), MLP_WEIGHTS))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("already has a gradient function");
    }

    @Test
    void transposedInputAndSharedWeightsAreRejectedBeforeAnythingChanges() {
        SameDiff sd = SameDiff.create();
        SDVariable xt = sd.placeHolder("xt", DataType.FLOAT, NIN, -1);
        SDVariable w = sd.var("t/W", Nd4j.rand(DataType.FLOAT, NIN, 4));
        SDVariable shared = sd.var("s/W", Nd4j.rand(DataType.FLOAT, 4, 4));
        SDVariable h = sd.mmul("h", xt, w, true, false, false);      // xtᵀ·W
        sd.mmul("o", sd.mmul("h2", h, shared), shared);               // the same weight twice
        assertThatThrownBy(() -> SameDiffPriLora.inject(sd, cfg(PruningMode.REGROW), WeightSelector.regex(".*/W")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("weight 't/W'")
                .hasMessageContaining("transposeA=true")
                .hasMessageContaining("weight 's/W'")
                .hasMessageContaining("shared weights are not supported");
        assertThat(sd.getVariable("t/W").getVariableType()).isEqualTo(VariableType.VARIABLE);
        assertThat(sd.hasVariable("t/W_lora_A")).isFalse();
    }

    @Test
    void badBlockGroupAndModulesToSaveAreReported() {
        SameDiff sd = SdGraphs.mlp(Style.MMUL, 1);
        assertThatThrownBy(() -> SameDiffPriLora.inject(sd, cfg(PruningMode.REGROW).toBuilder().modulesToSave("nope").build(),
                MLP_WEIGHTS))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("modulesToSave names 'nope'");
        assertThatThrownBy(() -> SameDiffPriLora.inject(sd, cfg(PruningMode.REGROW), WeightSelector.regex("(layer)_\\d/W")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("must hold the block number");
        assertThat(SameDiffPriLora.isAdapted(sd)).isFalse();
        assertThatThrownBy(() -> SameDiffPriLora.merge(sd))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("holds no adapters");
    }

    @Test
    void weightSelectorDensifiesBlockNumbers() {
        assertThat(WeightSelector.regex("layer_(\\d+)/W").blocks(List.of("layer_3/W", "layer_1/W", "layer_7/W")))
                .containsExactly(1, 0, 2);
        assertThat(WeightSelector.regex("b(?<blk>\\d+)/(q|k)").blockFromGroup("blk").blocks(List.of("b2/q", "b2/k", "b5/q")))
                .containsExactly(0, 0, 1);
        assertThat(WeightSelector.regex("w.*").blocks(List.of("wa", "wb"))).containsExactly(0, 1);
        assertThat(WeightSelector.regex("layer_(x|y)/W").blockByGraphOrder().blocks(List.of("layer_x/W", "layer_y/W")))
                .containsExactly(0, 1);
        assertThatThrownBy(() -> WeightSelector.regex("layer_(x|y)/W").blocks(List.of("layer_x/W")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("must hold the block number");
        Map<String, Integer> depth = new HashMap<>(Map.of("a", 10, "b", 10, "c", 3));
        assertThat(WeightSelector.names("a", "b", "c").blockBy(depth::get).blocks(List.of("a", "b", "c")))
                .containsExactly(1, 1, 0);
    }

    @Test
    void namesOfAddedOpsAreScopedUnderTheWeight() {
        SameDiff sd = SdGraphs.mlp(Style.MMUL, 1);
        InjectionReport r = SameDiffPriLora.inject(sd, cfg(PruningMode.PERSISTENT_MASK), MLP_WEIGHTS);
        for (GraphModule s : r.modules()) {
            assertThat(s.addedOps()).isNotEmpty().allSatisfy(o -> assertThat(o).startsWith(s.weightName() + "_lora/"));
            assertThat(s.addedVariables()).contains(s.aName(), s.bName(), s.stateName(), s.maskName());
            assertThat(sd.getVariable(s.maskName()).getVariableType()).isEqualTo(VariableType.CONSTANT);
            // The consumers of the adapted output are the original ones.
            SameDiffOp producer = sd.getOps().get(sd.getVariables().get(s.outputName()).getOutputOfOp());
            assertThat(s.addedOps()).contains(producer.getName());
        }
        assertThat(sd.getVariables().get("layer_0/z").getInputsForOp()).hasSize(1);
    }
}
