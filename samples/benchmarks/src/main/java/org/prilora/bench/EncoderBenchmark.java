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
 * <p>PyTorch anchor: unless {@code --no-pytorch}, {@code pytorch/encoder_step.py} runs the same encoder in PyTorch
 * (full fine-tuning, LoRA r = 8, linear ranks 4 → 12 without PRILoRA's statistics and pruning; one thread) as a
 * subprocess ({@link PyTorchAnchor}), one step per round next to the matching Java variant, so the ratios ours /
 * PyTorch come from the same minutes of the machine. Without python, torch or Debian's OpenBLAS the result says
 * {@code "pytorch": {"skipped": "<reason>"}} and the rest runs as before.
 *
 * <p>Rerun: {@code mvn -B -q install -DskipTests && mvn -B -q -pl samples/benchmarks initialize exec:exec
 * -Dexec.args="-Xmx8g -Dorg.bytedeco.javacpp.maxbytes=6G -Dorg.bytedeco.javacpp.maxphysicalbytes=10G -classpath
 * %classpath org.prilora.bench.EncoderBenchmark --scaling --python /usr/bin/python3 --out ../../docs/benchmarks"}
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
    @Option(names = "--no-pytorch", description = "Leave out the PyTorch anchor.")
    boolean noPytorch;
    @Option(names = "--python", description = "Interpreter of the PyTorch anchor; it must import torch (Debian's "
            + "python3-torch: /usr/bin/python3) (default: ${DEFAULT-VALUE}).")
    String python = "python3";
    @Option(names = "--torch-script", description = "The PyTorch anchor script (default: ${DEFAULT-VALUE}, relative to samples/benchmarks).")
    Path torchScript = Path.of("pytorch", "encoder_step.py");
    @Option(names = "--torch-openblas", description = "Directory of Debian's OpenBLAS libblas.so.3, put first on the "
            + "anchor's LD_LIBRARY_PATH; 'none' keeps the BLAS torch links (Debian: the reference BLAS, ~6 GFLOPS); "
            + "'auto' takes the apt-get install location, else the dpkg -x one of the README (default: ${DEFAULT-VALUE}).")
    String torchOpenblas = PyTorchAnchor.DEFAULT_OPENBLAS_DIR;
    @Option(names = "--torch-timeout", description = "Longest wait in seconds for one PyTorch answer (default: ${DEFAULT-VALUE}).")
    long torchTimeout = 600;

    /** PyTorch anchor variant of each Java variant it is compared with (lora-graph has none). */
    static final Map<String, String> TORCH_OF = Map.of("full", "full", "lora", "lora", "prilora", "linear");

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
        return forwardFlopsPerToken(MINILM, t);
    }

    /**
     * Forward FLOPs per token of an encoder's blocks at sequence length {@code t}: the six projections
     * ({@code 2·(4h² + 2hf)}) and the two attention matmuls ({@code 2·2·t·h}); embeddings, pooling and the head are
     * left out (under 0.1%).
     */
    static double forwardFlopsPerToken(BertConfig c, int t) {
        double h = c.hidden();
        double f = c.intermediate();
        return c.numLayers() * (2 * (4 * h * h + 2 * h * f) + 2 * 2 * t * h);
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
        return ChildJvm.probe(MemoryProbe.class, variant, Integer.toString(mb), Integer.toString(t));
    }

    /**
     * Child-JVM entry point: builds one variant, trains 3 steps, and prints the process's peak resident set
     * ({@code VmHWM}: heap, off-heap and native code together), the bytes of DL4J's workspaces (the reused
     * per-step memory of forward and backward passes), and the Java heap in use after a GC.
     */
    public static final class MemoryProbe {
        static final String PREFIX = ChildJvm.PREFIX;

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
            long peakRss = ChildJvm.procStatusBytes("VmHWM");   // Linux; elsewhere -1 (unknown)
            System.out.println(PREFIX + "peakRssBytes=" + peakRss + " workspaceBytes=" + workspaces + " heapBytesAfterGc=" + heap);
            System.exit(0);
        }
    }

    @Override
    public Integer call() throws Exception {
        Map<String, Object> json = options.begin("MiniLM-sized encoder training step", "mvn -B -q -pl samples/benchmarks "
                + "initialize exec:exec -Dexec.args=\"-Xmx8g -Dorg.bytedeco.javacpp.maxbytes=6G -Dorg.bytedeco.javacpp.maxphysicalbytes=10G"
                + " -classpath %classpath org.prilora.bench.EncoderBenchmark" + (scaling ? " --scaling" : "")
                + (noPytorch ? " --no-pytorch" : " --python " + python) + " --out <dir>\"");
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
        Map<String, Object> pytorchJson = new LinkedHashMap<>();
        PyTorchAnchor torch = startPyTorch(pytorchJson);
        Interleaved bench = new Interleaved();
        nets.forEach((v, n) -> {
            bench.add(v, () -> n.fit(ds));
            if (torch != null && TORCH_OF.containsKey(v)) {
                // right after its Java counterpart: the pair sees the same moment of the shared machine
                bench.addReported(torchName(v), () -> torch.step(TORCH_OF.get(v)));
            }
        });
        // The GEMM rate is measured again in every round, between the variants, and the best of the run is the
        // reference: one measurement at the start can catch a busy moment of the shared machine.
        double[] gemmBest = {gemm};
        bench.add("gemm-reference", () -> gemmBest[0] = Math.max(gemmBest[0], GemmReference.gflops(batch * seq, 384, 1536, 5)));
        double[] torchGemmBest = {0};
        if (torch != null) {
            bench.add("pytorch-gemm-reference", () -> torchGemmBest[0] = Math.max(torchGemmBest[0], torch.gemmGflops(batch * seq, 384, 1536, 5)));
        }
        Map<String, Interleaved.Timing> t;
        try {
            t = bench.run(options.warmup, options.rounds);
        } finally {
            if (torch != null) {
                torch.close();
            }
        }
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
            m.put("usefulGflopPerStep", flops / 1e9);
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
        if (torch != null) {
            pytorchResults(pytorchJson, torch, t, variants, fwd, gemm, torchGemmBest[0]);
        }
        json.put("pytorch", pytorchJson);

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

    private static String torchName(String javaVariant) {
        return "pytorch-" + TORCH_OF.get(javaVariant);
    }

    /**
     * Starts the PyTorch anchor, or records in {@code out} why not ({@code "skipped"}).
     *
     * @return the running anchor, or null
     */
    private PyTorchAnchor startPyTorch(Map<String, Object> out) {
        if (noPytorch) {
            out.put("skipped", "disabled (--no-pytorch)");
            return null;
        }
        Path openblas = null;
        if (!"none".equals(torchOpenblas)) {
            openblas = PyTorchAnchor.openblasDir(torchOpenblas);
            if (!Files.isRegularFile(openblas.resolve("libblas.so.3"))) {
                String reason = "Debian's OpenBLAS not found (no libblas.so.3 in " + openblas + "; see the README's install "
                        + "step for the PyTorch anchor, or pass --torch-openblas none to time torch on the BLAS it links)";
                System.out.println("PyTorch anchor skipped: " + reason);
                out.put("skipped", reason);
                return null;
            }
        }
        try {
            PyTorchAnchor a = PyTorchAnchor.start(python, torchScript, openblas, batch, seq, torchTimeout);
            out.put("torch", a.info().path("torch").asText());
            out.put("python", a.info().path("python").asText());
            out.put("script", torchScript.toAbsolutePath().normalize().toString());
            out.put("openblasDir", openblas == null ? null : openblas.toString());
            out.put("threads", a.info().path("threads").asInt());
            out.put("interopThreads", a.info().path("interopThreads").asInt());
            List<String> libs = new ArrayList<>();
            a.info().path("blasLibraries").forEach(n -> libs.add(n.asText()));
            out.put("blasLibraries", libs);
            Map<String, Object> env = new LinkedHashMap<>();
            a.info().path("env").fields().forEachRemaining(e -> env.put(e.getKey(), e.getValue().isNull() ? null : e.getValue().asText()));
            out.put("env", env);
            System.out.printf("PyTorch anchor: torch %s (%s), BLAS %s%n", out.get("torch"), out.get("python"), libs);
            return a;
        } catch (PyTorchAnchor.Unavailable e) {
            String reason = e.getMessage() + ("python3".equals(python) ? " (Debian's python3-torch is for /usr/bin/python3: "
                    + "--python /usr/bin/python3)" : "");
            System.out.println("PyTorch anchor skipped: " + reason);
            out.put("skipped", reason);
            return null;
        }
    }

    /**
     * The PyTorch part of the result: per anchor variant its step times, its parameter counts next to ours (the
     * workloads must match), the same useful-FLOP rate as ours against both GEMM references, and the ratios ours /
     * PyTorch by minima and by paired per-round medians.
     */
    private static void pytorchResults(Map<String, Object> out, PyTorchAnchor torch, Map<String, Interleaved.Timing> t,
                                       Map<String, Object> variants, double fwdFlops, double gemm, double torchGemm) {
        out.put("gemmReferenceGflops", torchGemm);
        out.put("linearNote", "'linear' has PRILoRA's ranks (4 -> 12 by depth, the same 332,546 trainable parameters as "
                + "LoRA r 8) and nothing else; our 'prilora' also measures the per-feature input norms of every projection "
                + "in each training pass (our 'lora' pays that too), keeps their EMAs and prunes A every 10 steps");
        Map<String, Object> tv = new LinkedHashMap<>();
        Map<String, Object> ratios = new LinkedHashMap<>();
        System.out.println("trainable parameters, ours vs the PyTorch anchor:");
        for (Map.Entry<String, String> e : new java.util.TreeMap<>(TORCH_OF).entrySet()) {
            String ours = e.getKey();
            String theirs = e.getValue();
            Interleaved.Timing tt = t.get(torchName(ours));
            long javaParams = ((Number) ((Map<?, ?>) variants.get(ours)).get("trainableParams")).longValue();
            double flops = ("full".equals(ours) ? 3 : 2) * fwdFlops;
            double gflops = flops / (tt.minMs() / 1e3) / 1e9;
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("comparedWith", ours);
            List<Integer> ranks = new ArrayList<>();
            torch.info().path("variants").path(theirs).path("ranks").forEach(r -> ranks.add(r.asInt()));
            m.put("ranks", ranks);   // 0 = no adapter (full fine-tuning)
            m.put("stepMinMs", tt.minMs());
            m.put("stepMedianMs", tt.medianMs());
            m.put("samplesMs", tt.samplesMs());
            m.put("trainableParams", torch.trainableParams(theirs));
            m.put("javaTrainableParams", javaParams);
            m.put("trainableParamsMatch", torch.trainableParams(theirs) == javaParams);
            m.put("usefulGflopPerStep", flops / 1e9);
            m.put("usefulGflops", gflops);
            m.put("fractionOfPytorchGemm", torchGemm > 0 ? gflops / torchGemm : null);
            m.put("fractionOfJavaGemm", gflops / gemm);
            tv.put(theirs, m);
            System.out.printf("  %-8s %,11d   PyTorch %-7s %,11d   %s%n", ours, javaParams, theirs, torch.trainableParams(theirs),
                    torch.trainableParams(theirs) == javaParams ? "match" : "DIFFER");
        }
        for (String[] pair : new String[][]{{"full", "full"}, {"prilora", "lora"}, {"lora", "lora"}, {"prilora", "linear"}}) {
            Interleaved.Timing ours = t.get(pair[0]);
            Interleaved.Timing theirs = t.get("pytorch-" + pair[1]);
            String key = pair[0] + "OverPytorch" + Character.toUpperCase(pair[1].charAt(0)) + pair[1].substring(1);
            ratios.put(key + "Min", ours.minMs() / theirs.minMs());
            ratios.put(key + "Median", ours.medianMs() / theirs.medianMs());
            ratios.put(key + "PairedMedian", ours.pairedMedianRatio(theirs));
            System.out.printf("ours %-7s / PyTorch %-6s step: %.3f (min), %.3f (paired median)   [%.1f vs %.1f ms min]%n",
                    pair[0], pair[1], ours.minMs() / theirs.minMs(), ours.pairedMedianRatio(theirs), ours.minMs(), theirs.minMs());
        }
        System.out.printf("PyTorch GEMM reference, best of the run: %.1f GFLOPS%n", torchGemm);
        out.put("variants", tv);
        out.put("ratios", ratios);
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
