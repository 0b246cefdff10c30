package org.prilora.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.PriLora;
import org.prilora.PriLoraAdapters;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.BertWeights;
import org.prilora.bert.OnnxBertExporter;
import org.prilora.bert.OnnxBertReader;
import org.prilora.bert.PriLoraBertBlock;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.RankSchedule;
import org.prilora.layers.AdapterModule;
import org.prilora.samples.data.AcceptabilityExample;
import org.prilora.samples.data.LanguageToolAcceptability;
import org.prilora.serving.AdapterRegistry;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;

/**
 * Inference throughput and memory of serving all-MiniLM-L6-v2 fine-tuned tasks (batch of real LanguageTool test
 * sentences, 2-class heads, PRILoRA 4 → 12 adapters with non-zero A and B): (a) one merged network in DL4J, (b) the
 * same exported to ONNX and run by ONNX Runtime (one intra-op thread), (c) the registry with one unmerged adapter,
 * (d) mixed batches over 8 and over 64 adapters (every row another adapter for 64), interleaved; then (e) the memory
 * of 100 registered adapters against 100 merged copies (estimated from the parameter count: they are not built).
 */
@Command(name = "serving-benchmark", mixinStandardHelpOptions = true, description = "Merged vs ONNX Runtime vs multi-adapter registry on MiniLM.")
public final class ServingBenchmark implements Callable<Integer> {
    @Mixin
    BenchOptions options = new BenchOptions(10, 2);
    @Option(names = "--batch", description = "Sentences per batch (default: ${DEFAULT-VALUE}).")
    int batch = 32;
    @Option(names = "--adapters", description = "Adapters registered for (e) (default: ${DEFAULT-VALUE}).")
    int adapters = 100;

    public static void main(String[] args) {
        System.exit(new CommandLine(new ServingBenchmark()).execute(args));
    }

    @Override
    public Integer call() throws Exception {
        Map<String, Object> json = options.begin("MiniLM serving: merged, ONNX Runtime, multi-adapter registry",
                "mvn -B -q -pl samples/benchmarks initialize exec:exec -Dexec.args=\"-Xmx4g -classpath %classpath "
                        + "org.prilora.bench.ServingBenchmark --out ../../docs/benchmarks\"");
        Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
        byte[] onnx;
        try (InputStream in = ServingBenchmark.class.getClassLoader().getResourceAsStream("all-minilm-l6-v2.onnx")) {
            onnx = in.readAllBytes();
        }
        BertWeights w = OnnxBertReader.read(new java.io.ByteArrayInputStream(onnx));
        List<AcceptabilityExample> test = new ArrayList<>(LanguageToolAcceptability.load().test());
        Collections.shuffle(test, new Random(1));
        List<String> sentences = test.subList(0, batch).stream().map(AcceptabilityExample::sentence).toList();
        BertTokenizer.Batch tok;
        try (BertTokenizer t = BertTokenizer.fromClasspath("all-minilm-l6-v2-tokenizer.json", 128, false)) {
            tok = t.encode(sentences);
        }
        double meanLen = 0;
        for (int i = 0; i < batch; i++) {
            meanLen += tok.realLength(i) / (double) batch;
        }
        System.out.printf("batch %d sentences, padded length %d, mean real length %.1f tokens%n", batch, tok.length(), meanLen);
        INDArray features = tok.features(DataType.FLOAT, true);
        INDArray mask = tok.maskArray(DataType.FLOAT);

        long rss0 = rss();
        MultiLayerNetwork base = BertEncoderFactory.builder(w.config()).plain().classifier(2).seed(5).build(w);
        PriLoraConfig cfg = PriLoraConfig.builder().rankSchedule(RankSchedule.linear(4, 12)).alpha(16)
                .modulesToSave(BertEncoderFactory.CLASSIFIER_NAME).seed(7).build();
        MultiLayerNetwork adapted = PriLora.adapt(base, cfg);
        Path dir = Files.createTempDirectory("serving-bench");
        List<Path> files = new ArrayList<>();
        for (int k = 0; k < adapters; k++) {
            randomize(adapted, k);
            Path f = dir.resolve("task" + k + ".prilora");
            PriLoraAdapters.save(adapted, f, cfg);
            files.add(f);
        }
        randomize(adapted, 0);
        MultiLayerNetwork merged = PriLora.merge(adapted);
        adapted = null;
        Path exported = dir.resolve("merged.onnx");
        Path original = dir.resolve("original.onnx");
        Files.write(original, onnx);
        OnnxBertExporter.export(original, merged, exported);

        gc();
        long rssBeforeRegistry = rss();
        AdapterRegistry registry = AdapterRegistry.builder(base).build();
        gc();
        long rssRegistryEmpty = rss();
        long t0 = System.nanoTime();
        for (int k = 0; k < adapters; k++) {
            registry.register("task" + k, files.get(k));
        }
        double registerMs = (System.nanoTime() - t0) / 1e6 / adapters;
        gc();
        long rssRegistryFull = rss();
        System.out.printf("registered %d adapters, %.0f ms each%n", adapters, registerMs);

        OrtEnvironment env = OrtEnvironment.getEnvironment();
        OrtSession.SessionOptions so = new OrtSession.SessionOptions();
        so.setIntraOpNumThreads(1);
        so.setInterOpNumThreads(1);
        OrtSession session = env.createSession(exported.toString(), so);
        OnnxTensor ids = OnnxTensor.createTensor(env, tok.ids());
        OnnxTensor am = OnnxTensor.createTensor(env, tok.attentionMask());
        OnnxTensor types = OnnxTensor.createTensor(env, tok.tokenTypeIds());
        Map<String, OnnxTensor> ortIn = Map.of("input_ids", ids, "attention_mask", am, "token_type_ids", types);

        // the answers agree before anything is timed
        INDArray ref = merged.output(features, false, mask, null);
        double regDiff = registry.predict("task0", features, mask).sub(ref).amaxNumber().doubleValue();
        double ortDiff;
        try (OrtSession.Result r = session.run(ortIn)) {
            float[][] p = (float[][]) r.get(OnnxBertExporter.PROBABILITIES).orElseThrow().getValue();
            ortDiff = Nd4j.createFromArray(p).sub(ref).amaxNumber().doubleValue();
        }
        System.out.printf("max |registry - merged| %.2e, max |ONNX Runtime - merged| %.2e (probabilities)%n", regDiff, ortDiff);

        List<String> ids8 = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            ids8.add("task" + (i % 8));
        }
        int[] call64 = {0};
        Interleaved bench = new Interleaved()
                .add("merged (DL4J)", () -> merged.output(features, false, mask, null))
                .add("merged (ONNX Runtime)", () -> {
                    try (OrtSession.Result r = session.run(ortIn)) {
                        r.get(0);
                    } catch (ai.onnxruntime.OrtException e) {
                        throw new IllegalStateException(e);
                    }
                })
                .add("registry, 1 adapter", () -> registry.predict("task0", features, mask))
                .add("registry, mixed over 8", () -> registry.predict(ids8, features, mask))
                .add("registry, mixed over 64", () -> {
                    List<String> ids64 = new ArrayList<>();
                    int c = call64[0]++;
                    for (int i = 0; i < batch; i++) {
                        ids64.add("task" + ((c * batch + i) % 64));
                    }
                    registry.predict(ids64, features, mask);
                });
        Map<String, Interleaved.Timing> t = bench.run(options.warmup, options.rounds);
        Interleaved.Timing mergedT = t.get("merged (DL4J)");
        List<Map<String, Object>> rows = new ArrayList<>();
        for (Interleaved.Timing v : t.values()) {
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("variant", v.name());
            row.put("minMs", v.minMs());
            row.put("medianMs", v.medianMs());
            row.put("sentencesPerSecondBest", batch / (v.minMs() / 1000));
            row.put("sentencesPerSecondMedian", batch / (v.medianMs() / 1000));
            row.put("throughputOverMergedMin", mergedT.minMs() / v.minMs());
            row.put("throughputOverMergedPairedMedian", 1 / v.pairedMedianRatio(mergedT));
            rows.add(row);
            System.out.printf("%-26s min %7.1f ms  median %7.1f ms  %6.1f sentences/s  %.2fx merged (min), %.2fx (paired median)%n",
                    v.name(), v.minMs(), v.medianMs(), batch / (v.minMs() / 1000), mergedT.minMs() / v.minMs(), 1 / v.pairedMedianRatio(mergedT));
        }
        long adapterBytes = registry.adapters().get(0).bytes();
        long baseBytes = registry.baseBytes();
        long resident = registry.residentAdapterBytes();
        long mergedCopies = (long) adapters * baseBytes;
        Map<String, Object> mem = new LinkedHashMap<>();
        mem.put("adapters", adapters);
        mem.put("baseParamBytes", baseBytes);
        mem.put("oneAdapterBytes", adapterBytes);
        mem.put("oneAdapterFileBytes", Files.size(files.get(0)));
        mem.put("residentAdapterBytes", resident);
        mem.put("registryBytesAccounted", baseBytes + resident);
        mem.put("targetBytes", baseBytes + (long) (1.2 * adapters * adapterBytes));
        mem.put("rssBeforeModelBytes", rss0);
        mem.put("rssBeforeRegistryBytes", rssBeforeRegistry);
        mem.put("rssRegistryEmptyBytes", rssRegistryEmpty);
        mem.put("rssRegistryWithAdaptersBytes", rssRegistryFull);
        mem.put("rssGrowthFromAdaptersBytes", rssRegistryFull - rssRegistryEmpty);
        mem.put("mergedCopiesEstimatedBytes", mergedCopies);
        mem.put("mergedCopiesNote", "estimated as adapters x base parameter bytes; 100 merged MiniLM copies were not built");
        mem.put("registerMsPerAdapter", registerMs);
        System.out.printf("memory: base %.1f MiB, one adapter %.2f MiB (file %.2f MiB); %d adapters resident %.1f MiB "
                        + "(accounted registry %.1f MiB, target <= %.1f MiB); RSS growth from registering them %.1f MiB; "
                        + "%d merged copies (estimate) %.1f MiB%n",
                mib(baseBytes), mib(adapterBytes), mib(Files.size(files.get(0))), adapters, mib(resident), mib(baseBytes + resident),
                mib(baseBytes + (long) (1.2 * adapters * adapterBytes)), mib(rssRegistryFull - rssRegistryEmpty), adapters, mib(mergedCopies));
        json.put("batch", batch);
        json.put("paddedLength", tok.length());
        json.put("meanRealLength", meanLen);
        json.put("maxAbsDiffRegistryVsMerged", regDiff);
        json.put("maxAbsDiffOnnxRuntimeVsMerged", ortDiff);
        json.put("variants", rows);
        json.put("memory", mem);
        CategoryChart chart = new CategoryChartBuilder().width(800).height(450).title("MiniLM serving, batch " + batch)
                .xAxisTitle("variant").yAxisTitle("sentences/s (best round)").build();
        chart.addSeries("sentences/s", new ArrayList<>(t.keySet()), t.values().stream().map(v -> batch / (v.minMs() / 1000)).toList());
        options.write("serving-benchmark", json, wr -> {
            wr.println("variant,min_ms,median_ms,sentences_per_s_best,throughput_over_merged_min");
            for (Map<String, Object> r : rows) {
                wr.println(r.get("variant") + "," + r.get("minMs") + "," + r.get("medianMs") + "," + r.get("sentencesPerSecondBest") + ","
                        + r.get("throughputOverMergedMin"));
            }
        }, chart);
        session.close();
        return 0;
    }

    /** Seeded non-zero A and B in every block, and a seeded head: adapter {@code k}. */
    private static void randomize(MultiLayerNetwork adapted, long k) {
        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(100 + k);
        for (Layer l : adapted.getLayers()) {
            if (l.conf().getLayer() instanceof PriLoraBertBlock) {
                for (AdapterModule m : ((PriLoraBertBlock) l.conf().getLayer()).adapterModules()) {
                    INDArray a = l.getParam(m.aKey());
                    a.assign(Nd4j.randn(a.shape(), rng).castTo(a.dataType()).muli(0.05));
                    INDArray b = l.getParam(m.bKey());
                    b.assign(Nd4j.randn(b.shape(), rng).castTo(b.dataType()).muli(0.02));
                }
            }
        }
        INDArray head = adapted.getLayer(BertEncoderFactory.CLASSIFIER_NAME).params();
        head.assign(Nd4j.randn(head.shape(), rng).castTo(head.dataType()).muli(0.3));
    }

    private static double mib(long bytes) {
        return bytes / (1024.0 * 1024.0);
    }

    private static void gc() throws InterruptedException {
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(200);
        }
    }

    /** Resident set size of this process ({@code VmRSS}), or -1 where /proc is not available. */
    private static long rss() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024L;
                }
            }
        } catch (java.io.IOException e) {
            return -1;
        }
        return -1;
    }
}
