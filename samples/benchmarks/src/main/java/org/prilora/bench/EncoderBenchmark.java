package org.prilora.bench;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.prilora.bert.BertConfig;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.PriLoraListener;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;
import org.prilora.PriLora;
import org.prilora.PriLoraSummary;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * Optimizer-step time of a BERT-style encoder of MiniLM dimensions (6 blocks, width 384, 12 heads, FFN 1536,
 * vocabulary 30522) with a 2-class head, batch 32 × 64 tokens, Adam, float32: full fine-tuning of the blocks vs
 * LoRA (uniform r = 8) vs PRILoRA (4 → 12, statistics and pruning on), plus the same LoRA encoder run through the
 * SameDiff graph runtime of the blocks (the reference the native runtime replaced). All run interleaved in one process;
 * the GEMM reference rate is measured in the same run. Also: the cost of one pruning step, updater state bytes,
 * off-heap memory, and (with {@code --scaling}) PRILoRA step time over rank, sequence length and batch size.
 *
 * <p>Rerun: {@code mvn -B -q install -DskipTests && mvn -B -q -pl samples/benchmarks initialize exec:exec
 * -Dexec.args="-Xmx8g -classpath %classpath org.prilora.bench.EncoderBenchmark --scaling --out ../../docs/benchmarks"}
 */
@Command(name = "encoder-benchmark", mixinStandardHelpOptions = true, description = "Full FT vs LoRA vs PRILoRA step time on a MiniLM-sized encoder.")
public final class EncoderBenchmark implements Callable<Integer> {

    @Mixin
    BenchOptions options = new BenchOptions(10, 2);
    @Option(names = "--batch", description = "Batch size (default: ${DEFAULT-VALUE}).")
    int batch = 32;
    @Option(names = "--seq", description = "Sequence length (default: ${DEFAULT-VALUE}).")
    int seq = 64;
    @Option(names = "--scaling", description = "Also time PRILoRA over ranks, sequence lengths and batch sizes.")
    boolean scaling;

    static final BertConfig MINILM = new BertConfig(30522, 384, 6, 12, 1536, 512, 2, 1e-12);

    /**
     * Entry point.
     *
     * @param args options ({@code --help} lists them)
     */
    public static void main(String[] args) {
        System.exit(new CommandLine(new EncoderBenchmark()).execute(args));
    }

    static MultiLayerNetwork encoder(String variant, RankSchedule ranks) {
        BertEncoderFactory.Builder b = BertEncoderFactory.builder(MINILM).seed(7).updater(new Adam(1e-4)).classifier(2);
        switch (variant) {
            case "full":
                b.plain();
                break;
            case "lora-graph":
                // The same LoRA encoder with every block run as a SameDiff graph (the reference runtime).
                b.graphRuntime(true).rankSchedule(ranks);
                break;
            default:
                b.rankSchedule(ranks);
        }
        MultiLayerNetwork net = b.build();
        if ("prilora".equals(variant)) {
            net.setListeners(new PriLoraListener(PruningSchedule.builder().fraction(0.25).interval(10).startStep(1).build()));
        }
        return net;
    }

    static DataSet data(int mb, int t) {
        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(3);
        INDArray ids = Nd4j.rand(rng, mb, t).muli(30000).castTo(DataType.INT).castTo(DataType.FLOAT);
        INDArray feats = BertEncoderFactory.features(ids, Nd4j.zeros(DataType.FLOAT, mb, t), DataType.FLOAT);
        INDArray labels = Nd4j.zeros(DataType.FLOAT, mb, 2);
        for (int i = 0; i < mb; i++) {
            labels.putScalar(i, i % 2, 1.0);
        }
        return new DataSet(feats, labels, Nd4j.ones(DataType.FLOAT, mb, t), null);
    }

    /** Forward FLOPs per token of the 6 blocks (projections + attention), the standard 2·m·n·k count. */
    static double forwardFlopsPerToken(int t) {
        double h = MINILM.hidden();
        double f = MINILM.intermediate();
        return MINILM.numLayers() * (2 * (4 * h * h + 2 * h * f) + 2 * 2 * t * h);
    }

    /**
     * What PRILoRA's input statistics add to one training step of the 6-block encoder: the per-feature norms of the
     * 4 distinct inputs of every block (x for Q/K/V, the attention context, h1, the GELU output; rows masked) in a
     * reused workspace, as the block runtime measures them, plus the 36 EMA updates the listener makes.
     */
    static double statisticsMs(int rows) {
        long h = MINILM.hidden();
        long f = MINILM.intermediate();
        INDArray[] inputs = {Nd4j.rand(DataType.FLOAT, rows, h), Nd4j.rand(DataType.FLOAT, rows, h),
                Nd4j.rand(DataType.FLOAT, rows, h), Nd4j.rand(DataType.FLOAT, rows, f)};
        INDArray mask = Nd4j.ones(DataType.FLOAT, rows);
        long[] siteNIn = {h, h, h, h, h, f};
        INDArray[] states = new INDArray[6 * siteNIn.length];
        for (int i = 0; i < states.length; i++) {
            states[i] = Nd4j.zeros(DataType.FLOAT, 1, siteNIn[i % siteNIn.length] + 1);
        }
        org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration wsConf = org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration
                .builder().initialSize(64L << 20).policyLearning(org.nd4j.linalg.api.memory.enums.LearningPolicy.FIRST_LOOP).build();
        Runnable step = () -> {
            try (org.nd4j.linalg.api.memory.MemoryWorkspace ws = Nd4j.getWorkspaceManager().getAndActivateWorkspace(wsConf, "STATS_BENCH")) {
                for (int b = 0; b < 6; b++) {
                    INDArray[] norms = new INDArray[inputs.length];
                    for (int k = 0; k < inputs.length; k++) {
                        norms[k] = org.prilora.ops.InputNormStats.batchNorms(inputs[k], mask, null, inputs[k].size(1)).detach();
                    }
                    for (int site = 0; site < siteNIn.length; site++) {
                        INDArray n = norms[site < 3 ? 0 : site - 2];
                        org.prilora.ops.InputNormStats.wrap(states[b * siteNIn.length + site], 0.9).updateFromBatchNorms(n);
                    }
                }
            }
        };
        return new Interleaved().add("statistics", step).run(3, 10).get("statistics").minMs();
    }

    /**
     * Runs {@link MemoryProbe} for one variant in a child JVM (same classpath, heap limit and environment) and parses
     * its one-line answer.
     */
    static Map<String, Object> memoryInChildJvm(String variant, int mb, int t) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        long xmx = Runtime.getRuntime().maxMemory();
        Process p = new ProcessBuilder(java, "-Xmx" + (xmx >> 20) + "m", "-cp", System.getProperty("java.class.path"),
                MemoryProbe.class.getName(), variant, Integer.toString(mb), Integer.toString(t))
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String answer = null;
        try (java.io.BufferedReader r = new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream()))) {
            for (String line; (line = r.readLine()) != null; ) {
                if (line.startsWith(MemoryProbe.PREFIX)) {
                    answer = line.substring(MemoryProbe.PREFIX.length());
                }
            }
        }
        int rc = p.waitFor();
        if (rc != 0 || answer == null) {
            throw new IllegalStateException("memory probe for '" + variant + "' failed (exit code " + rc + ")");
        }
        Map<String, Object> m = new LinkedHashMap<>();
        for (String kv : answer.trim().split(" ")) {
            String[] parts = kv.split("=");
            m.put(parts[0], Long.parseLong(parts[1]));
        }
        return m;
    }

    /**
     * Child-JVM entry point: builds one variant, trains 3 steps, and prints the process's peak resident set
     * ({@code VmHWM}: heap, off-heap and native code together), the bytes of DL4J's workspaces (the reused
     * per-step memory of forward and backward passes), and the Java heap in use after a GC.
     */
    public static final class MemoryProbe {
        static final String PREFIX = "MEMORY ";

        /**
         * Child-JVM entry point.
         *
         * @param args variant, batch size, sequence length
         * @throws Exception if the variant cannot be built or trained
         */
        public static void main(String[] args) throws Exception {
            MultiLayerNetwork net = encoder(args[0], "prilora".equals(args[0]) ? RankSchedule.linear(4, 12) : RankSchedule.uniform(8));
            DataSet ds = data(Integer.parseInt(args[1]), Integer.parseInt(args[2]));
            for (int i = 0; i < 3; i++) {
                net.fit(ds);
            }
            long workspaces = 0;   // DL4J's reused working/activation memory (ND4J arrays outside workspaces are in the RSS)
            for (org.nd4j.linalg.api.memory.MemoryWorkspace ws : Nd4j.getWorkspaceManager().getAllWorkspacesForCurrentThread()) {
                workspaces += ws.getCurrentSize();
            }
            System.gc();
            Runtime rt = Runtime.getRuntime();
            long heap = rt.totalMemory() - rt.freeMemory();
            long peakRss = -1;
            Path status = Path.of("/proc/self/status");   // Linux; elsewhere the peak stays -1 (unknown)
            for (String line : Files.exists(status) ? Files.readAllLines(status) : List.<String>of()) {
                if (line.startsWith("VmHWM:")) {
                    peakRss = Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024L;
                }
            }
            System.out.println(PREFIX + "peakRssBytes=" + peakRss + " workspaceBytes=" + workspaces + " heapBytesAfterGc=" + heap);
            System.exit(0);
        }
    }

    @Override
    public Integer call() throws Exception {
        Map<String, Object> json = options.begin("MiniLM-sized encoder training step", "mvn -B -q -pl samples/benchmarks "
                + "initialize exec:exec -Dexec.args=\"-Xmx8g -classpath %classpath org.prilora.bench.EncoderBenchmark"
                + (scaling ? " --scaling" : "") + " --out <dir>\"");
        double gemm = BenchOptions.gemmReference(batch * seq, 384, 1536);
        DataSet ds = data(batch, seq);

        Map<String, MultiLayerNetwork> nets = new LinkedHashMap<>();
        // Memory per variant in a fresh JVM each: in one process DL4J's workspaces are shared by every network.
        Map<String, Map<String, Object>> memory = new LinkedHashMap<>();
        for (String v : List.of("full", "lora", "prilora", "lora-graph")) {
            memory.put(v, memoryInChildJvm(v, batch, seq));
            System.out.printf("%-10s memory after 3 steps (own JVM): %s%n", v, memory.get(v));
        }
        for (String v : List.of("full", "lora", "prilora", "lora-graph")) {
            nets.put(v, encoder(v, "prilora".equals(v) ? RankSchedule.linear(4, 12) : RankSchedule.uniform(8)));
            nets.get(v).fit(ds);
        }
        Interleaved bench = new Interleaved();
        nets.forEach((v, n) -> bench.add(v, () -> n.fit(ds)));
        // The GEMM rate is measured again in every round, between the variants, and the best of the run is the
        // reference: one measurement at the start can catch a busy moment of the shared machine.
        double[] gemmBest = {gemm};
        bench.add("gemm-reference", () -> gemmBest[0] = Math.max(gemmBest[0], GemmReference.gflops(batch * seq, 384, 1536, 5)));
        Map<String, Interleaved.Timing> t = bench.run(options.warmup, options.rounds);
        gemm = gemmBest[0];
        System.out.printf("GEMM reference, best of the run: %.1f GFLOPS%n", gemm);

        double tokens = (double) batch * seq;
        double fwd = forwardFlopsPerToken(seq) * tokens;
        Map<String, Object> variants = new LinkedHashMap<>();
        for (String v : nets.keySet()) {
            MultiLayerNetwork n = nets.get(v);
            PriLoraSummary s = PriLora.summary(n);
            long updaterBytes = n.getUpdater().getStateViewArray().length() * 4L;
            // useful work: forward + input gradient (+ weight gradient for full fine-tuning)
            double flops = ("full".equals(v) ? 3 : 2) * fwd;
            double gflops = flops / (t.get(v).minMs() / 1e3) / 1e9;
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("stepMinMs", t.get(v).minMs());
            m.put("stepMedianMs", t.get(v).medianMs());
            m.put("trainableParams", s.trainableParams());
            m.put("updaterStateBytes", updaterBytes);
            m.putAll(memory.get(v));
            m.put("usefulGflops", gflops);
            m.put("fractionOfGemm", gflops / gemm);
            variants.put(v, m);
            System.out.printf("%-8s step min %8.1f ms median %8.1f ms | trainable %,11d | updater state %,12d B | %6.1f GFLOPS (%.0f%% of GEMM)%n",
                    v, t.get(v).minMs(), t.get(v).medianMs(), s.trainableParams(), updaterBytes, gflops, 100 * gflops / gemm);
        }
        double priVsLora = t.get("prilora").minMs() / t.get("lora").minMs();
        double priVsLoraMed = t.get("prilora").medianMs() / t.get("lora").medianMs();
        double loraVsFull = t.get("lora").minMs() / t.get("full").minMs();
        double priVsFull = t.get("prilora").minMs() / t.get("full").minMs();
        double priVsLoraPaired = t.get("prilora").pairedMedianRatio(t.get("lora"));
        double loraVsFullPaired = t.get("lora").pairedMedianRatio(t.get("full"));
        double nativeVsGraph = t.get("lora").minMs() / t.get("lora-graph").minMs();
        double stateRatio = ((Number) ((Map<?, ?>) variants.get("prilora")).get("updaterStateBytes")).doubleValue()
                / ((Number) ((Map<?, ?>) variants.get("full")).get("updaterStateBytes")).doubleValue();

        // Forward only (inference) of the PRILoRA encoder, interleaved with a plain GEMM of the same size.
        MultiLayerNetwork pri = nets.get("prilora");
        Map<String, Interleaved.Timing> fw = new Interleaved()
                .add("forward", () -> pri.output(ds.getFeatures(), false, ds.getFeaturesMaskArray(), null))
                .run(1, options.rounds);
        double fwdMs = fw.get("forward").minMs();
        double fwdGflops = fwd / (fwdMs / 1e3) / 1e9;
        System.out.printf("forward only (PRILoRA encoder): min %.1f ms, %.1f GFLOPS (%.0f%% of GEMM)%n", fwdMs, fwdGflops, 100 * fwdGflops / gemm);

        // One pruning step over all 36 projections, alone (the listener runs it every `interval` steps).
        PriLoraListener pruner = new PriLoraListener(PruningSchedule.builder().fraction(0.25).interval(1).startStep(1).build());
        Interleaved pr = new Interleaved().add("prune", () -> pruner.iterationDone(pri, 5, 0));
        double pruneMs = pr.run(2, 10).get("prune").minMs();
        double statsMs = statisticsMs(batch * seq);
        System.out.printf("input statistics per step (24 site inputs measured, 36 EMAs updated): %.2f ms (%.2f%% of a PRILoRA step)%n",
                statsMs, 100 * statsMs / t.get("prilora").minMs());

        System.out.printf("PRILoRA/LoRA step = %.3f (min), %.3f (median); LoRA/full = %.3f; PRILoRA/full = %.3f; updater state PRILoRA/full = %.4f%n",
                priVsLora, priVsLoraMed, loraVsFull, priVsFull, stateRatio);
        System.out.printf("LoRA step, native block runtime / SameDiff graph runtime = %.3f (min)%n", nativeVsGraph);
        System.out.printf("paired per-round medians: PRILoRA/LoRA = %.3f, LoRA/full = %.3f%n", priVsLoraPaired, loraVsFullPaired);
        System.out.printf("one pruning step over all projections: %.2f ms (%.2f%% of a PRILoRA step; amortised over the interval)%n",
                pruneMs, 100 * pruneMs / t.get("prilora").minMs());

        json.put("batch", batch);
        json.put("seq", seq);
        json.put("gemmReferenceGflops", gemm);
        json.put("variants", variants);
        json.put("priloraOverLoraMin", priVsLora);
        json.put("priloraOverLoraMedian", priVsLoraMed);
        json.put("loraOverFullMin", loraVsFull);
        json.put("priloraOverFullMin", priVsFull);
        json.put("updaterStatePriloraOverFull", stateRatio);
        json.put("loraNativeOverGraphMin", nativeVsGraph);
        json.put("priloraOverLoraPairedMedian", priVsLoraPaired);
        json.put("loraOverFullPairedMedian", loraVsFullPaired);
        json.put("pruningStepMs", pruneMs);
        json.put("statisticsPerStepMs", statsMs);
        json.put("forwardMinMs", fwdMs);
        json.put("forwardGflops", fwdGflops);

        if (scaling) {
            List<Map<String, Object>> rows = new ArrayList<>();
            for (int r : new int[]{4, 16, 64}) {
                rows.add(scalePoint("rank", r, RankSchedule.uniform(r), batch, seq));
            }
            for (int s : new int[]{32, 128, 256}) {
                rows.add(scalePoint("seq", s, RankSchedule.linear(4, 12), batch, s));
            }
            for (int b : new int[]{8, 64}) {
                rows.add(scalePoint("batch", b, RankSchedule.linear(4, 12), b, seq));
            }
            json.put("scaling", rows);
        }
        CategoryChart chart = new CategoryChartBuilder().width(800).height(450)
                .title(String.format("MiniLM-sized encoder, batch %d x %d tokens: step time (min of %d)", batch, seq, options.rounds))
                .xAxisTitle("method").yAxisTitle("ms per optimizer step").build();
        chart.addSeries("step", new ArrayList<>(nets.keySet()), nets.keySet().stream().map(v -> t.get(v).minMs()).toList());
        options.write("encoder-benchmark", json, w -> {
            w.println("variant,step_min_ms,step_median_ms,trainable_params,updater_state_bytes,useful_gflops,peak_rss_bytes,workspace_bytes,heap_bytes_after_gc");
            for (String v : nets.keySet()) {
                Map<?, ?> m = (Map<?, ?>) variants.get(v);
                w.printf("%s,%.1f,%.1f,%s,%s,%.2f,%s,%s,%s%n", v, m.get("stepMinMs"), m.get("stepMedianMs"), m.get("trainableParams"),
                        m.get("updaterStateBytes"), m.get("usefulGflops"), m.get("peakRssBytes"), m.get("workspaceBytes"),
                        m.get("heapBytesAfterGc"));
            }
        }, chart);
        return 0;
    }

    private Map<String, Object> scalePoint(String axis, int value, RankSchedule ranks, int mb, int t) {
        MultiLayerNetwork n = encoder("prilora", ranks);
        DataSet ds = data(mb, t);
        Interleaved.Timing timing = new Interleaved().add("p", () -> n.fit(ds)).run(1, 3).get("p");
        double gflops = 2 * forwardFlopsPerToken(t) * mb * t / (timing.minMs() / 1e3) / 1e9;
        System.out.printf("scaling %-5s = %4d: step min %8.1f ms (%.1f GFLOPS)%n", axis, value, timing.minMs(), gflops);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("axis", axis);
        m.put("value", value);
        m.put("ranks", ranks.toString());
        m.put("batch", mb);
        m.put("seq", t);
        m.put("stepMinMs", timing.minMs());
        m.put("usefulGflops", gflops);
        return m;
    }
}
