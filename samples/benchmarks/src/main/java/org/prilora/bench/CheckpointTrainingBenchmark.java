package org.prilora.bench;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.prilora.PriLora;
import org.prilora.PriLoraSummary;
import org.prilora.bert.BertConfig;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.BertWeights;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;
import org.prilora.heads.SentenceLabels;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * A PRILoRA training step on real checkpoints: all-MiniLM-L6-v2 (6 blocks) next to bge-small-en-v1.5 (12 blocks),
 * both read from their Maven artifacts, adapted with PRILoRA 4 → 12 (alpha 16, statistics on, pruning 25% every 10
 * steps, the 2-class head trained; each model pooled as it embeds: mean for MiniLM, [CLS] for bge), Adam(1e-4), the
 * same batch of real text (LanguageTool sentences with their acceptability labels, {@code --batch} × {@code --seq}
 * tokens). Step times interleaved in one process with the GEMM reference; memory of each model in a fresh JVM, as
 * {@link EncoderBenchmark} measures it (peak resident set, DL4J workspaces, heap after GC), plus the peak of the
 * training steps alone (the peak is reset after the checkpoint is loaded and the network built; it still contains
 * the resident heap of the loading).
 *
 * <p>Rerun: {@code mvn -B -q -pl samples/benchmarks initialize exec:exec -Dexec.args="-Xmx8g
 * -Dorg.bytedeco.javacpp.maxbytes=6G -Dorg.bytedeco.javacpp.maxphysicalbytes=10G -classpath %classpath
 * org.prilora.bench.CheckpointTrainingBenchmark --out ../../docs/benchmarks"}
 */
@Command(name = "checkpoint-training-benchmark", mixinStandardHelpOptions = true,
        description = "PRILoRA training step time and memory on the real MiniLM and bge-small checkpoints.")
public final class CheckpointTrainingBenchmark implements Callable<Integer> {

    @Mixin
    BenchOptions options = new BenchOptions(5, 1);
    @Option(names = "--batch", description = "Rows per batch (default: ${DEFAULT-VALUE}).")
    int batch = 32;
    @Option(names = "--seq", description = "Tokens per row (default: ${DEFAULT-VALUE}).")
    int seq = 64;
    @Option(names = "--sentences", description = "One sentence per row, padded to --seq (default: sentences joined and truncated).")
    boolean sentences;
    @Option(names = "--models", split = ",", description = "Checkpoints, of ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).")
    List<Checkpoint> models = new ArrayList<>(List.of(Checkpoint.MINILM, Checkpoint.BGE));
    @Option(names = "--no-memory", description = "Skip the per-model memory probes (a fresh JVM each).")
    boolean noMemory;

    /**
     * Entry point.
     *
     * @param args options ({@code --help} lists them)
     */
    public static void main(String[] args) {
        System.exit(new CommandLine(new CheckpointTrainingBenchmark()).execute(args));
    }

    /** The adapted network of a checkpoint, with its listener, and the batch it trains on. */
    record Setup(MultiLayerNetwork net, DataSet data, BertConfig config, double meanRealLength) {
    }

    static Setup setup(Checkpoint c, int batch, int seq, boolean sentences) throws Exception {
        Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
        BertWeights w = Checkpoint.weights(c.onnxBytes());
        int[] labels = new int[batch];
        BertTokenizer.Batch tok = c.realText(batch, seq, !sentences, labels);
        MultiLayerNetwork base = BertEncoderFactory.builder(w.config()).plain().pooling(c.pooling).classifier(2).seed(5)
                .updater(new Adam(1e-4)).build(w);
        PriLoraConfig cfg = PriLoraConfig.builder().rankSchedule(RankSchedule.linear(4, 12)).alpha(16)
                .pruning(PruningSchedule.builder().fraction(0.25).interval(10).startStep(1).build())
                .modulesToSave(BertEncoderFactory.CLASSIFIER_NAME).seed(7).build();
        MultiLayerNetwork net = PriLora.adapt(base, cfg);
        net.setListeners(PriLora.listener(cfg));
        DataSet ds = new DataSet(tok.features(DataType.FLOAT, true), SentenceLabels.oneHot(labels, 2, DataType.FLOAT),
                tok.maskArray(DataType.FLOAT), null);
        return new Setup(net, ds, w.config(), Checkpoint.meanRealLength(tok));
    }

    /**
     * Child-JVM entry point: loads one checkpoint, builds and adapts it, resets the peak resident set, trains 3
     * steps, and prints the peaks (whole process; training steps alone), DL4J's workspace bytes and the heap after a
     * GC.
     */
    public static final class MemoryProbe {
        /**
         * Child-JVM entry point.
         *
         * @param args checkpoint name, batch size, sequence length, "sentences" or "passages"
         * @throws Exception if the checkpoint cannot be loaded or trained
         */
        public static void main(String[] args) throws Exception {
            Setup s = setup(Checkpoint.valueOf(args[0]), Integer.parseInt(args[1]), Integer.parseInt(args[2]), "sentences".equals(args[3]));
            System.gc();
            long peakLoading = ChildJvm.procStatusBytes("VmHWM");
            long rssBefore = ChildJvm.procStatusBytes("VmRSS");
            boolean reset = ChildJvm.resetPeakRss();
            for (int i = 0; i < 3; i++) {
                s.net().fit(s.data());
            }
            long peakTraining = reset ? ChildJvm.procStatusBytes("VmHWM") : -1;
            long workspaces = 0;
            for (MemoryWorkspace ws : Nd4j.getWorkspaceManager().getAllWorkspacesForCurrentThread()) {
                workspaces += ws.getCurrentSize();
            }
            System.gc();
            Runtime rt = Runtime.getRuntime();
            long heap = rt.totalMemory() - rt.freeMemory();
            System.out.println(ChildJvm.PREFIX + "peakRssBytes=" + Math.max(peakLoading, ChildJvm.procStatusBytes("VmHWM"))
                    + " peakRssBeforeTrainingBytes=" + peakLoading + " rssBeforeTrainingBytes=" + rssBefore
                    + " peakRssTrainingBytes=" + peakTraining + " workspaceBytes=" + workspaces
                    + " heapBytesAfterGc=" + heap);
            System.exit(0);
        }
    }

    @Override
    public Integer call() throws Exception {
        if (batch < 1 || seq < 2 || options.rounds < 1 || models.isEmpty()) {
            throw new CommandLine.ParameterException(new CommandLine(this), "expected --batch >= 1, --seq >= 2, --rounds >= 1 and a model");
        }
        Map<String, Object> json = options.begin("PRILoRA training step on real checkpoints",
                "mvn -B -q -pl samples/benchmarks initialize exec:exec -Dexec.args=\"-Xmx8g -Dorg.bytedeco.javacpp.maxbytes=6G "
                        + "-Dorg.bytedeco.javacpp.maxphysicalbytes=10G -classpath %classpath org.prilora.bench.CheckpointTrainingBenchmark"
                        + (sentences ? " --sentences" : "") + " --out <dir>\"");
        double gemm = BenchOptions.gemmReference(batch * seq, 384, 1536);
        Map<Checkpoint, Map<String, Object>> memory = new LinkedHashMap<>();
        for (Checkpoint c : models) {
            if (!noMemory) {
                memory.put(c, ChildJvm.probe(MemoryProbe.class, c.name(), Integer.toString(batch), Integer.toString(seq),
                        sentences ? "sentences" : "passages"));
                System.out.printf("%-18s memory, 3 PRILoRA steps in its own JVM: %s%n", c.displayName, memory.get(c));
            }
        }
        Map<Checkpoint, Setup> setups = new LinkedHashMap<>();
        for (Checkpoint c : models) {
            Setup s = setup(c, batch, seq, sentences);
            s.net().fit(s.data());
            setups.put(c, s);
        }
        Interleaved bench = new Interleaved();
        setups.forEach((c, s) -> bench.add(c.displayName, () -> s.net().fit(s.data())));
        double[] gemmBest = {gemm};
        bench.add("gemm-reference", () -> gemmBest[0] = Math.max(gemmBest[0], GemmReference.gflops(batch * seq, 384, 1536, 5)));
        Map<String, Interleaved.Timing> t = bench.run(options.warmup, options.rounds);
        gemm = gemmBest[0];
        System.out.printf("GEMM reference, best of the run: %.1f GFLOPS%n", gemm);

        List<Map<String, Object>> rows = new ArrayList<>();
        for (Map.Entry<Checkpoint, Setup> e : setups.entrySet()) {
            Checkpoint c = e.getKey();
            Setup s = e.getValue();
            Interleaved.Timing tt = t.get(c.displayName);
            PriLoraSummary sum = PriLora.summary(s.net());
            // useful work as in EncoderBenchmark: forward + input gradient of the projections and attention
            double flops = 2 * EncoderBenchmark.forwardFlopsPerToken(s.config(), seq) * batch * seq;
            double gflops = flops / (tt.minMs() / 1e3) / 1e9;
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("model", c.displayName);
            m.put("blocks", s.config().numLayers());
            m.put("pooling", c.pooling.toString());
            m.put("meanRealLength", s.meanRealLength());
            m.put("stepMinMs", tt.minMs());
            m.put("stepMedianMs", tt.medianMs());
            m.put("samplesMs", tt.samplesMs());
            m.put("trainableParams", sum.trainableParams());
            m.put("totalParams", sum.totalParams());
            m.put("updaterStateBytes", s.net().getUpdater().getStateViewArray().length() * 4L);
            m.put("usefulGflopPerStep", flops / 1e9);
            m.put("usefulGflops", gflops);
            m.put("fractionOfGemm", gflops / gemm);
            if (memory.containsKey(c)) {
                m.put("memory", memory.get(c));
            }
            rows.add(m);
            System.out.printf("%-18s %2d blocks: PRILoRA step min %8.1f ms, median %8.1f ms | trainable %,d | %.1f GFLOPS (%.0f%% of GEMM)%n",
                    c.displayName, s.config().numLayers(), tt.minMs(), tt.medianMs(), sum.trainableParams(), gflops, 100 * gflops / gemm);
        }
        json.put("batch", batch);
        json.put("seq", seq);
        json.put("text", sentences ? "one sentence per row, padded" : "consecutive sentences per row, truncated (every token real)");
        json.put("method", "PRILoRA 4 -> 12, alpha 16, statistics on, pruning 25% every 10 steps from step 1, head trained, Adam(1e-4)");
        json.put("gemmReferenceGflops", gemm);
        json.put("models", rows);
        if (setups.containsKey(Checkpoint.MINILM) && setups.containsKey(Checkpoint.BGE)) {
            Interleaved.Timing b = t.get(Checkpoint.BGE.displayName);
            Interleaved.Timing mi = t.get(Checkpoint.MINILM.displayName);
            json.put("bgeOverMiniLmMin", b.minMs() / mi.minMs());
            json.put("bgeOverMiniLmPairedMedian", b.pairedMedianRatio(mi));
            System.out.printf("bge / MiniLM step: %.3f (min), %.3f (paired median); 12 / 6 blocks%n", b.minMs() / mi.minMs(), b.pairedMedianRatio(mi));
        }
        CategoryChart chart = new CategoryChartBuilder().width(800).height(450)
                .title(String.format("PRILoRA step on real checkpoints, batch %d x %d (min of %d)", batch, seq, options.rounds))
                .xAxisTitle("checkpoint").yAxisTitle("ms per optimizer step").build();
        chart.addSeries("step", rows.stream().map(r -> (String) r.get("model")).toList(), rows.stream().map(r -> (Double) r.get("stepMinMs")).toList());
        options.write("checkpoint-training-benchmark", json, w -> {
            w.println("model,blocks,step_min_ms,step_median_ms,trainable_params,useful_gflops,fraction_of_gemm,peak_rss_bytes,peak_rss_training_bytes,workspace_bytes");
            for (Map<String, Object> r : rows) {
                Map<?, ?> mem = (Map<?, ?>) r.getOrDefault("memory", Map.of());
                w.printf("%s,%s,%.1f,%.1f,%s,%.2f,%.4f,%s,%s,%s%n", r.get("model"), r.get("blocks"), r.get("stepMinMs"), r.get("stepMedianMs"),
                        r.get("trainableParams"), r.get("usefulGflops"), r.get("fractionOfGemm"), mem.get("peakRssBytes"),
                        mem.get("peakRssTrainingBytes"), mem.get("workspaceBytes"));
            }
        }, chart);
        return 0;
    }
}
