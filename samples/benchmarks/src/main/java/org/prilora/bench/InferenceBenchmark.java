package org.prilora.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.PriLora;
import org.prilora.bert.BertConfig;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.BertWeights;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.RankSchedule;
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
 * Forward pass of a real checkpoint, DL4J against ONNX Runtime, one thread each: all-MiniLM-L6-v2 (and with
 * {@code --bge} bge-small-en-v1.5) read from its Maven artifact's ONNX file with {@code OnnxBertReader}, built as the
 * project's inference network (pretrained encoder adapted with PRILoRA 4 → 12 and merged back by {@link PriLora#merge},
 * the path a fine-tuned model takes to serving; fresh adapters have B = 0, so the merged weights are the
 * checkpoint's and ONNX Runtime can run the very same file), fed a batch of real text tokenized with the project's
 * tokenizer to a fixed length. The outputs ({@code last_hidden_state}) are compared once, then DL4J
 * {@code output(..., false)}, ONNX Runtime {@code session.run} (intra-op and inter-op threads 1, sequential execution,
 * all graph optimizations) and the GEMM reference run interleaved. DL4J runs twice per round: the encoder alone
 * ({@code dl4j}, the same function as the ONNX file) and the merged serving network with the checkpoint's pooling and a
 * 2-class head ({@code dl4jWithHead}, what {@code ServingBenchmark} and the registry run; pooling and head are under
 * 0.1% of the FLOPs, but a network whose last layer is an encoder block has shown slower and far more variable rounds).
 *
 * <p>Rerun: {@code mvn -B -q -Dmaven.repo.local=... install -DskipTests && mvn -B -q -pl samples/benchmarks initialize
 * exec:exec -Dexec.args="-Xmx8g -Dorg.bytedeco.javacpp.maxbytes=6G -Dorg.bytedeco.javacpp.maxphysicalbytes=10G
 * -classpath %classpath org.prilora.bench.InferenceBenchmark --bge --out ../../docs/benchmarks"}
 */
@Command(name = "inference-benchmark", mixinStandardHelpOptions = true,
        description = "Forward pass of real checkpoints: DL4J (merged model) vs ONNX Runtime, one thread each.")
public final class InferenceBenchmark implements Callable<Integer> {

    @Mixin
    BenchOptions options = new BenchOptions(10, 2);
    @Option(names = "--batch", description = "Rows per batch (default: ${DEFAULT-VALUE}).")
    int batch = 32;
    @Option(names = "--seq", description = "Tokens per row, padded or truncated to it (default: ${DEFAULT-VALUE}).")
    int seq = 64;
    @Option(names = "--sentences", description = "One sentence per row, padded to --seq (default: consecutive sentences "
            + "joined and truncated, so every token is real).")
    boolean sentences;
    @Option(names = "--bge", description = "Also bge-small-en-v1.5 (12 blocks).")
    boolean bge;

    /** The timed runtimes, in the order of the result. */
    static final List<String> RUNTIMES = List.of("dl4j", "dl4jWithHead", "onnxRuntime");

    /**
     * Entry point.
     *
     * @param args options ({@code --help} lists them)
     */
    public static void main(String[] args) {
        System.exit(new CommandLine(new InferenceBenchmark()).execute(args));
    }

    @Override
    public Integer call() throws Exception {
        if (batch < 1 || seq < 2 || options.rounds < 1) {
            throw new CommandLine.ParameterException(new CommandLine(this), "expected --batch >= 1, --seq >= 2 and --rounds >= 1");
        }
        Map<String, Object> json = options.begin("Forward pass of real checkpoints: DL4J merged model vs ONNX Runtime",
                "mvn -B -q -pl samples/benchmarks initialize exec:exec -Dexec.args=\"-Xmx8g -Dorg.bytedeco.javacpp.maxbytes=6G "
                        + "-Dorg.bytedeco.javacpp.maxphysicalbytes=10G -classpath %classpath org.prilora.bench.InferenceBenchmark"
                        + (bge ? " --bge" : "") + (sentences ? " --sentences" : "") + " --out <dir>\"");
        Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
        double gemm = BenchOptions.gemmReference(batch * seq, 384, 1536);
        List<Checkpoint> models = bge ? List.of(Checkpoint.MINILM, Checkpoint.BGE) : List.of(Checkpoint.MINILM);
        List<Map<String, Object>> rows = new ArrayList<>();
        double[] gemmBest = {gemm};
        for (Checkpoint c : models) {
            rows.add(run(c, gemmBest));
        }
        // One reference for the whole run: the best GEMM rate seen in any round (see EncoderBenchmark).
        for (Map<String, Object> r : rows) {
            for (String rt : RUNTIMES) {
                @SuppressWarnings("unchecked")
                Map<String, Object> m = (Map<String, Object>) r.get(rt);
                m.put("fractionOfGemm", (Double) m.get("gflops") / gemmBest[0]);
            }
        }
        System.out.printf("GEMM reference, best of the run: %.1f GFLOPS%n", gemmBest[0]);
        json.put("batch", batch);
        json.put("seq", seq);
        json.put("text", sentences ? "one sentence per row, padded" : "consecutive sentences per row, truncated (every token real)");
        json.put("threads", "DL4J: OMP_NUM_THREADS as recorded; ONNX Runtime: intra-op 1, inter-op 1, sequential execution");
        json.put("gemmReferenceGflops", gemmBest[0]);
        json.put("models", rows);

        CategoryChart chart = new CategoryChartBuilder().width(800).height(450)
                .title(String.format("Forward pass, batch %d x %d tokens, 1 thread (min of %d)", batch, seq, options.rounds))
                .xAxisTitle("model").yAxisTitle("ms per batch").build();
        List<String> names = rows.stream().map(r -> (String) r.get("model")).toList();
        for (String rt : RUNTIMES) {
            chart.addSeries(rt, names, rows.stream().map(r -> (Double) ((Map<?, ?>) r.get(rt)).get("minMs")).toList());
        }
        options.write("inference-benchmark", json, w -> {
            w.println("model,runtime,min_ms,median_ms,gflops,fraction_of_gemm,over_ort_paired_median,max_abs_diff");
            for (Map<String, Object> r : rows) {
                for (String rt : RUNTIMES) {
                    Map<?, ?> m = (Map<?, ?>) r.get(rt);
                    w.printf("%s,%s,%.2f,%.2f,%.2f,%.4f,%.4f,%.3e%n", r.get("model"), rt, m.get("minMs"), m.get("medianMs"),
                            m.get("gflops"), m.get("fractionOfGemm"), m.get("overOrtPairedMedian"), r.get("maxAbsDiffRealTokens"));
                }
            }
        }, chart);
        return 0;
    }

    private Map<String, Object> run(Checkpoint c, double[] gemmBest) throws Exception {
        byte[] onnx = c.onnxBytes();
        BertWeights w = Checkpoint.weights(onnx);
        BertConfig cfg = w.config();
        int[] labels = new int[batch];
        BertTokenizer.Batch tok = c.realText(batch, seq, !sentences, labels);
        double meanLen = Checkpoint.meanRealLength(tok);
        System.out.printf("%s: %d blocks x %d; batch %d x %d tokens, mean real length %.1f%n", c.displayName, cfg.numLayers(),
                cfg.hidden(), batch, tok.length(), meanLen);
        INDArray features = tok.features(DataType.FLOAT, true);
        INDArray mask = tok.maskArray(DataType.FLOAT);

        // The serving path: pretrained base -> adapted -> merged (plain blocks, adapters folded into W).
        MultiLayerNetwork base = BertEncoderFactory.builder(cfg).plain().seed(5).build(w);
        PriLoraConfig pc = PriLoraConfig.builder().rankSchedule(RankSchedule.linear(4, 12)).alpha(16).seed(7).build();
        MultiLayerNetwork merged = PriLora.merge(PriLora.adapt(base, pc));
        MultiLayerNetwork headBase = BertEncoderFactory.builder(cfg).plain().pooling(c.pooling).classifier(2).seed(5).build(w);
        MultiLayerNetwork withHead = PriLora.merge(PriLora.adapt(headBase,
                pc.toBuilder().modulesToSave(BertEncoderFactory.CLASSIFIER_NAME).build()));
        base = null;
        headBase = null;
        w = null;

        OrtEnvironment env = OrtEnvironment.getEnvironment();
        OrtSession.SessionOptions so = new OrtSession.SessionOptions();
        so.setIntraOpNumThreads(1);
        so.setInterOpNumThreads(1);
        so.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
        so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
        Map<String, Object> row = new LinkedHashMap<>();
        try (OrtSession session = env.createSession(onnx, so);
             OnnxTensor ids = OnnxTensor.createTensor(env, tok.ids());
             OnnxTensor am = OnnxTensor.createTensor(env, tok.attentionMask());
             OnnxTensor types = OnnxTensor.createTensor(env, tok.tokenTypeIds())) {
            onnx = null;
            Map<String, OnnxTensor> in = Map.of("input_ids", ids, "attention_mask", am, "token_type_ids", types);

            // The answers agree before anything is timed.
            float[][][] ref;
            try (OrtSession.Result r = session.run(in)) {
                ref = (float[][][]) r.get("last_hidden_state").orElseThrow().getValue();
            }
            INDArray ours = merged.output(features, false, mask, null).permute(0, 2, 1).dup('c');   // NCW -> [mb, T, H]
            double diffReal = 0;
            double diffAll = 0;
            for (int b = 0; b < batch; b++) {
                float[][] o = ours.slice(b).toFloatMatrix();
                for (int t = 0; t < o.length; t++) {
                    for (int h = 0; h < o[t].length; h++) {
                        double d = Math.abs(o[t][h] - ref[b][t][h]);
                        diffAll = Math.max(diffAll, d);
                        if (t < tok.realLength(b)) {
                            diffReal = Math.max(diffReal, d);
                        }
                    }
                }
            }
            System.out.printf("%s last_hidden_state: max |DL4J - ONNX Runtime| = %.3e on real tokens, %.3e on all%n",
                    c.displayName, diffReal, diffAll);

            Interleaved bench = new Interleaved()
                    .add("dl4j", () -> merged.output(features, false, mask, null))
                    .add("dl4jWithHead", () -> withHead.output(features, false, mask, null))
                    .add("onnxRuntime", () -> {
                        try (OrtSession.Result r = session.run(in)) {
                            r.get(0);   // the output stays native: no copy into Java arrays is timed
                        } catch (OrtException e) {
                            throw new IllegalStateException(e);
                        }
                    })
                    .add("gemm-reference", () -> gemmBest[0] = Math.max(gemmBest[0], GemmReference.gflops(batch * seq, 384, 1536, 5)));
            Map<String, Interleaved.Timing> t = bench.run(options.warmup, options.rounds);
            double flops = EncoderBenchmark.forwardFlopsPerToken(cfg, tok.length()) * batch * tok.length();
            row.put("model", c.displayName);
            row.put("artifactResource", c.onnxResource);
            row.put("blocks", cfg.numLayers());
            row.put("hidden", cfg.hidden());
            row.put("paddedLength", tok.length());
            row.put("meanRealLength", meanLen);
            row.put("maxAbsDiffRealTokens", diffReal);
            row.put("maxAbsDiffAllTokens", diffAll);
            row.put("forwardGflopPerBatch", flops / 1e9);
            row.put("dl4jNetwork", "pretrained plain encoder adapted with PRILoRA 4 -> 12 (fresh adapters, B = 0) and merged by "
                    + "PriLora.merge: plain BertBlocks, no head; output(features, false, mask, null) gives last_hidden_state");
            row.put("dl4jWithHeadNetwork", "the same merged encoder with " + c.pooling + " pooling and a 2-class softmax head "
                    + "(the serving network); output(features, false, mask, null) gives probabilities");
            row.put("onnxRuntimeSession", "the artifact's original .onnx file; intra-op 1, inter-op 1, SEQUENTIAL, ALL_OPT; "
                    + "ONNX Runtime " + ai.onnxruntime.OrtEnvironment.getEnvironment().getVersion());
            Interleaved.Timing ort = t.get("onnxRuntime");
            for (String rt : RUNTIMES) {
                Interleaved.Timing tt = t.get(rt);
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("minMs", tt.minMs());
                m.put("medianMs", tt.medianMs());
                m.put("samplesMs", tt.samplesMs());
                m.put("gflops", flops / (tt.minMs() / 1e3) / 1e9);
                m.put("overOrtMin", tt.minMs() / ort.minMs());
                m.put("overOrtPairedMedian", tt.pairedMedianRatio(ort));
                row.put(rt, m);
            }
            row.put("dl4jOverOrtMin", t.get("dl4j").minMs() / t.get("onnxRuntime").minMs());
            row.put("dl4jOverOrtMedian", t.get("dl4j").medianMs() / t.get("onnxRuntime").medianMs());
            row.put("dl4jOverOrtPairedMedian", t.get("dl4j").pairedMedianRatio(t.get("onnxRuntime")));
            row.put("dl4jWithHeadOverOrtMin", t.get("dl4jWithHead").minMs() / t.get("onnxRuntime").minMs());
            row.put("dl4jWithHeadOverOrtPairedMedian", t.get("dl4jWithHead").pairedMedianRatio(t.get("onnxRuntime")));
            System.out.printf("%s: DL4J min %.1f / median %.1f ms, ONNX Runtime min %.1f / median %.1f ms; "
                            + "DL4J/ORT %.2f (min), %.2f (paired median); %.1f vs %.1f GFLOPS%n",
                    c.displayName, t.get("dl4j").minMs(), t.get("dl4j").medianMs(), t.get("onnxRuntime").minMs(),
                    t.get("onnxRuntime").medianMs(), row.get("dl4jOverOrtMin"), row.get("dl4jOverOrtPairedMedian"),
                    ((Map<?, ?>) row.get("dl4j")).get("gflops"), ((Map<?, ?>) row.get("onnxRuntime")).get("gflops"));
            System.out.printf("%s: DL4J serving network (pooling + head) min %.1f / median %.1f ms; /ORT %.2f (min), %.2f (paired median)%n",
                    c.displayName, t.get("dl4jWithHead").minMs(), t.get("dl4jWithHead").medianMs(), row.get("dl4jWithHeadOverOrtMin"),
                    row.get("dl4jWithHeadOverOrtPairedMedian"));
        }
        so.close();
        return row;
    }
}
