package org.prilora.samples.finetune;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prilora.bert.BertConfig;
import org.prilora.config.PriLoraConfig;
import org.prilora.ModuleFigures;
import org.prilora.config.PruningMode;
import org.prilora.config.RankSchedule;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** metrics.json, charts and the compare table, written from hand-made results (no training). */
class RunOutputsTest {

    private static final byte[] PNG_MAGIC = {(byte) 0x89, 'P', 'N', 'G'};

    static FineTuneSettings settings(Method m, long seed) {
        return new FineTuneSettings(m, seed, 100, 1, 32, 1e-3, 1e-4, RankSchedule.linear(4, 12), 8, 16, 0.25, 10, 10,
                0.9, PruningMode.REGROW, 64, true, true, false);
    }

    static RunResult result(Method m, long seed, BinaryConfusion dev, BinaryConfusion test) {
        FineTuneSettings s = settings(m, seed);
        List<ModuleFigures> figures = new ArrayList<>();
        String config = null;
        if (m.usesAdapters()) {
            config = s.priLoraConfig().toJson();
            int[] ranks = s.rankSchedule().ranks(6);
            for (int b = 0; b < 6; b++) {
                figures.add(new ModuleFigures("encoder.layer." + b, "attention.self.query", ranks[b], 384, 384, 0.25, 1.5, 0.1, 3, 4));
                figures.add(new ModuleFigures("encoder.layer." + b, "output.dense", ranks[b], 1536, 384, 0.0, 0.5, 0.1, 3, 4));
            }
        }
        return new RunResult(s, config, 100, 74, 2505, test == null ? 0 : 2559, dev, test, m.usesAdapters() ? 332_546 : 770,
                22_918_694, m.usesAdapters() ? "adapter.prilora" : "head.safetensors", m.usesAdapters() ? 1_300_788 : 3_400,
                4, 12.5 + seed, 20.0 + seed, 30, new double[]{0.7, 0.65, 0.6, 0.55 - 0.01 * seed}, new double[]{5, 2.5, 2.4, 2.6},
                figures, m == Method.PRILORA ? 1 : 0, "class prior: none",
                m == Method.PRILORA ? new SparsityTrace.Survival(new int[]{10, 20}, 0.1, 0.0, 0.0, 0.0, 0.1) : null);
    }

    @Test
    @SuppressWarnings("unchecked")
    void metricsJsonHoldsEverythingAskedFor(@TempDir Path dir) throws IOException {
        BinaryConfusion dev = new BinaryConfusion(1700, 300, 366, 139);
        BinaryConfusion test = new BinaryConfusion(1800, 250, 414, 95);
        RunResult r = result(Method.PRILORA, 7, dev, test);
        RunOutputs.write(r, dir);
        RunOutputs.write(r, dir); // rewriting replaces atomically

        Map<String, Object> m = Json.readObject(dir.resolve(RunOutputs.METRICS));
        assertThat(m).containsEntry("method", "prilora").containsEntry("seed", 7)
                .containsEntry("trainableParams", 332_546).containsEntry("allParams", 22_918_694)
                .containsEntry("adapterFileBytes", 1_300_788).containsEntry("steps", 4).containsEntry("pruningSteps", 1);
        assertThat((Double) m.get("trainSeconds")).isEqualTo(19.5);
        Map<String, Object> d = (Map<String, Object>) m.get("dev");
        assertThat((Double) d.get("mcc")).isCloseTo(dev.mcc(), within(1e-6));
        assertThat((Double) d.get("accuracy")).isCloseTo(2000 / 2505.0, within(1e-6));
        assertThat(d).containsEntry("tp", 1700).containsEntry("fn", 139);
        assertThat((Double) ((Map<String, Object>) m.get("test")).get("mcc")).isCloseTo(test.mcc(), within(1e-6));
        assertThat((Map<String, Object>) m.get("data")).containsEntry("trainSentences", 100)
                .containsEntry("devSentences", 2505).containsEntry("testSentences", 2559);
        assertThat((Map<String, Object>) m.get("settings")).containsEntry("ranks", "4:12").containsEntry("pruneInterval", 10);
        // the recorded configuration is the PriLoraConfig itself, round-trippable
        PriLoraConfig cfg = PriLoraConfig.fromJson(Json.toJson(m.get("config")));
        assertThat(cfg).isEqualTo(r.settings().priLoraConfig());
        List<Map<String, Object>> proj = (List<Map<String, Object>>) m.get("projections");
        assertThat(proj).hasSize(12);
        assertThat(proj.get(0)).containsEntry("module", "encoder.layer.0.attention.self.query").containsEntry("rank", 4)
                .containsEntry("finalASparsity", 0.25);
        assertThat(proj.get(11)).containsEntry("rank", 12);
        assertThat((List<Object>) m.get("losses")).hasSize(4);
        assertThat((Double) m.get("medianStepSeconds")).isEqualTo(2.55);

        assertThat(Files.readAllBytes(dir.resolve(RunOutputs.LOSS_CHART))).startsWith(PNG_MAGIC);
        assertThat(Files.readAllBytes(dir.resolve(RunOutputs.RANK_CHART))).startsWith(PNG_MAGIC);
        try (Stream<Path> files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder(
                    RunOutputs.METRICS, RunOutputs.LOSS_CHART, RunOutputs.RANK_CHART); // no temporary files left
        }
    }

    @Test
    void headOnlyHasNoConfigNoProjectionsAndNoRankChart(@TempDir Path dir) throws IOException {
        RunResult r = result(Method.HEAD_ONLY, 1, new BinaryConfusion(10, 5, 3, 2), null);
        RunOutputs.write(r, dir);
        Map<String, Object> m = Json.readObject(dir.resolve(RunOutputs.METRICS));
        assertThat(m).containsEntry("config", null).containsEntry("test", null).containsEntry("method", "head-only")
                .containsEntry("adapterFile", "head.safetensors");
        assertThat(dir.resolve(RunOutputs.RANK_CHART)).doesNotExist();
        assertThat(dir.resolve(RunOutputs.LOSS_CHART)).exists();
    }

    @Test
    void meanAndSampleStandardDeviation() {
        CompareReport.MeanStd s = CompareReport.MeanStd.of(new double[]{1, 2, 3, 4});
        assertThat(s.mean()).isEqualTo(2.5);
        assertThat(s.std()).isCloseTo(Math.sqrt(5 / 3.0), within(1e-12)); // sum of squares 5, n - 1 = 3
        assertThat(s.format(2)).isEqualTo("2.50 ± 1.29");
        assertThat(CompareReport.MeanStd.of(new double[]{0.3}).std()).isZero();
    }

    @Test
    void movingAverageIsTrailing() {
        assertThat(RunOutputs.movingAverage(new double[]{1, 2, 3, 4, 5}, 2)).containsExactly(1, 1.5, 2.5, 3.5, 4.5);
        assertThat(RunOutputs.movingAverage(new double[]{4, 2}, 10)).containsExactly(4, 3);
    }

    @Test
    @SuppressWarnings("unchecked")
    void compareTableAndJson(@TempDir Path dir) throws IOException {
        List<RunResult> runs = new ArrayList<>();
        for (long seed : new long[]{1, 2, 3}) {
            runs.add(result(Method.HEAD_ONLY, seed, new BinaryConfusion(1800, 10, 656, 39), new BinaryConfusion(1850, 12, 652, 45)));
            runs.add(result(Method.LORA, seed, new BinaryConfusion(1700, 300 + seed, 366 - seed, 139), new BinaryConfusion(1800, 250, 414, 95)));
            runs.add(result(Method.PRILORA, seed, new BinaryConfusion(1710, 310, 356 - seed, 129 + seed), new BinaryConfusion(1810, 260, 404, 85)));
        }
        FineTuneSettings s = settings(Method.PRILORA, 1);
        CompareReport.write(dir, runs, s, List.of(1L, 2L, 3L), "AcceptabilityFineTune --compare");

        Map<String, Object> json = Json.readObject(dir.resolve(CompareReport.JSON));
        List<Map<String, Object>> methods = (List<Map<String, Object>>) json.get("methods");
        assertThat(methods).extracting(x -> x.get("method")).containsExactly("head-only", "lora", "prilora");
        Map<String, Object> lora = methods.get(1);
        double[] mccs = runs.stream().filter(r -> r.settings().method() == Method.LORA).mapToDouble(r -> r.dev().mcc()).toArray();
        CompareReport.MeanStd expected = CompareReport.MeanStd.of(mccs);
        assertThat((Double) ((Map<String, Object>) lora.get("devMcc")).get("mean")).isCloseTo(expected.mean(), within(1e-6));
        assertThat((Double) ((Map<String, Object>) lora.get("devMcc")).get("std")).isCloseTo(expected.std(), within(1e-6));
        assertThat(lora).containsEntry("trainableParams", 332_546).containsEntry("runs", 3);
        assertThat((List<Object>) lora.get("perSeed")).hasSize(3);
        assertThat(json).containsEntry("command", "AcceptabilityFineTune --compare");

        String md = Files.readString(dir.resolve(CompareReport.MARKDOWN));
        assertThat(md).contains("| method | dev MCC | dev acc | test MCC | test acc | trainable params | saved file | train s |")
                .contains("| lora | " + expected.format(3)).contains("| head-only |").contains("770")
                .contains("1.24 MiB (adapter.prilora)").contains("3.3 KiB (head.safetensors)");
        assertThat(Files.readAllBytes(dir.resolve(CompareReport.LOSS_CHART))).startsWith(PNG_MAGIC);
        assertThat(md).contains("| prilora − lora |").contains("| head-only − lora |")
                .contains("Majority class (always \"acceptable\"): dev accuracy 0.734");
        assertThat((List<Object>) json.get("pairedDevMcc")).hasSize(2);
    }

    @Test
    void aFinishedRunIsReadBackForResumeOnlyWithItsOwnSettings(@TempDir Path dir) throws IOException {
        RunResult r = result(Method.PRILORA, 3, new BinaryConfusion(1700, 300, 366, 139), new BinaryConfusion(1800, 250, 414, 95));
        RunOutputs.write(r, dir);
        RunResult back = RunOutputs.read(dir.resolve(RunOutputs.METRICS), r.settings());
        assertThat(back).isNotNull();
        assertThat(back.dev()).isEqualTo(r.dev());
        assertThat(back.test()).isEqualTo(r.test());
        assertThat(back.losses()).containsExactly(r.losses());
        assertThat(back.stepSeconds()).containsExactly(r.stepSeconds());
        assertThat(back.figures()).isEqualTo(r.figures());
        assertThat(back.survival().pruningSteps()).containsExactly(10, 20);
        assertThat(back.survival().afterPruning()).isEqualTo(0.1);
        assertThat(back.survival().survival()).isEqualTo(0.0);
        assertThat(back.trainableParams()).isEqualTo(r.trainableParams());
        assertThat(back.adapterFileBytes()).isEqualTo(r.adapterFileBytes());
        assertThat(back.priorNote()).isEqualTo(r.priorNote());
        assertThat(CompareReport.markdown(List.of(back), back.settings(), List.of(3L), "c"))
                .isEqualTo(CompareReport.markdown(List.of(r), r.settings(), List.of(3L), "c"));
        // other settings (here another seed, or another learning rate) are never reused
        assertThat(RunOutputs.read(dir.resolve(RunOutputs.METRICS), r.settings().withSeed(4))).isNull();
        assertThat(RunOutputs.read(dir.resolve("missing.json"), r.settings())).isNull();
    }

    @Test
    void pairedDifferencesAndTheirInterval() {
        List<RunResult> runs = new ArrayList<>();
        // dev MCC of LoRA and PRILoRA per seed, built from confusion counts; differences computed here by hand
        long[][] lora = {{1700, 300, 366, 139}, {1690, 310, 356, 149}, {1720, 280, 386, 119}};
        long[][] pri = {{1710, 320, 346, 129}, {1690, 300, 366, 149}, {1730, 300, 366, 109}};
        double[] d = new double[3];
        for (int i = 0; i < 3; i++) {
            BinaryConfusion l = new BinaryConfusion(lora[i][0], lora[i][1], lora[i][2], lora[i][3]);
            BinaryConfusion p = new BinaryConfusion(pri[i][0], pri[i][1], pri[i][2], pri[i][3]);
            runs.add(result(Method.LORA, i + 1, l, null));
            runs.add(result(Method.PRILORA, i + 1, p, null));
            d[i] = p.mcc() - l.mcc();
        }
        double mean = (d[0] + d[1] + d[2]) / 3;
        double sd = Math.sqrt(((d[0] - mean) * (d[0] - mean) + (d[1] - mean) * (d[1] - mean) + (d[2] - mean) * (d[2] - mean)) / 2);
        double t975df2 = 4.302652729911275; // Student t, 2 degrees of freedom, from a printed table
        CompareReport.Paired p = CompareReport.Paired.of(runs, Method.PRILORA, Method.LORA, r -> r.dev().mcc());
        assertThat(p.diffs()).containsExactly(d[0], d[1], d[2]);
        assertThat(p.mean()).isCloseTo(mean, within(1e-12));
        assertThat(p.ciLow()).isCloseTo(mean - t975df2 * sd / Math.sqrt(3), within(1e-9));
        assertThat(p.ciHigh()).isCloseTo(mean + t975df2 * sd / Math.sqrt(3), within(1e-9));
        assertThat(p.positive() + p.negative()).isLessThanOrEqualTo(3);
        assertThat(p.positive()).isEqualTo((int) java.util.Arrays.stream(d).filter(x -> x > 0).count());
    }

    @Test
    void loraAndPriloraHaveTheSameTrainableBudgetOnMiniLm() {
        BertConfig miniLm = new BertConfig(30522, 384, 6, 12, 1536, 512, 2, 1e-12);
        long prilora = ParameterBudget.trainable(miniLm, RankSchedule.linear(4, 12), 2);
        long lora = ParameterBudget.trainable(miniLm, RankSchedule.uniform(8), 2);
        // per rank and block: 4 x (384 + 384) + 2 x (384 + 1536) = 6912; ranks sum to 48; head 384 x 2 + 2
        assertThat(prilora).isEqualTo(lora).isEqualTo(48L * 6912 + 770);
        assertThat(ParameterBudget.head(miniLm, 2)).isEqualTo(770);
    }
}
