package org.prilora.bench;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.nd4j.linalg.dataset.DataSet;
import org.prilora.PriLoraListener;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;
import org.prilora.parallel.LocalParallelTrainer;
import org.prilora.parallel.ParallelConfig;
import org.prilora.spark.RowConverter;
import org.prilora.spark.ShardedData;
import org.prilora.spark.SparkPriLoraTrainer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * Step time of synchronous data-parallel PRILoRA training on the MiniLM-sized encoder of {@link EncoderBenchmark}
 * (PRILoRA 4 → 12, batch 32 × 64 tokens, Adam, float32): the single-JVM step ({@code net.fit(batch)} with the
 * listener) against {@link LocalParallelTrainer} with 1, 2 and 4 workers and {@link SparkPriLoraTrainer} on
 * {@code local[2]} (2 shards). To keep memory bounded (every worker holds a network copy and its workspaces) the
 * variants run in three interleaved phases, each against the single-JVM step: (single, 1 worker, 2 workers),
 * (single, 4 workers), (single, Spark). Ratios are paired medians within a phase. The load average at the start and
 * end is recorded: on a shared machine the times are only comparable within one run.
 *
 * <p>Rerun (start the JVM with OMP_NUM_THREADS=1, as exec:exec does here, and Spark's Java 17 flags):
 * {@code mvn -B -q install -DskipTests && mvn -B -q -pl samples/benchmarks initialize exec:exec
 * -Dexec.args="-Xmx4g -Dorg.bytedeco.javacpp.maxbytes=10G --add-exports=java.base/sun.nio.ch=ALL-UNNAMED
 * --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
 * --add-opens=java.base/java.lang.invoke=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED -classpath %classpath
 * org.prilora.bench.ScaleOutBenchmark --out ../../docs/benchmarks"}
 */
@Command(name = "scale-out-benchmark", mixinStandardHelpOptions = true,
        description = "Data-parallel PRILoRA step time: single JVM vs 1/2/4 local workers vs Spark local[2].")
public final class ScaleOutBenchmark implements Callable<Integer> {

    @Mixin
    BenchOptions options = new BenchOptions(5, 1);
    @Option(names = "--batch", description = "Global batch size (default: ${DEFAULT-VALUE}).")
    int batch = 32;
    @Option(names = "--seq", description = "Sequence length (default: ${DEFAULT-VALUE}).")
    int seq = 64;
    @Option(names = "--skip-spark", description = "Leave the Spark local[2] phase out.")
    boolean skipSpark;

    /**
     * Entry point.
     *
     * @param args options ({@code --help} lists them)
     */
    public static void main(String[] args) {
        System.exit(new CommandLine(new ScaleOutBenchmark()).execute(args));
    }

    private static double loadAverage() {
        try {
            return Double.parseDouble(Files.readString(Path.of("/proc/loadavg")).split(" ")[0]);
        } catch (Exception e) {
            return ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
        }
    }

    @Override
    public Integer call() throws Exception {
        Map<String, Object> json = options.begin("scale-out", "mvn -B -q -pl samples/benchmarks initialize exec:exec"
                + " -Dexec.args=\"... org.prilora.bench.ScaleOutBenchmark\" (see the class Javadoc)");
        json.put("batch", batch);
        json.put("seq", seq);
        double loadStart = loadAverage();
        json.put("loadAverage1mStart", loadStart);
        System.out.printf("load average (1 min) at start: %.2f%n", loadStart);
        PruningSchedule schedule = PruningSchedule.builder().fraction(0.25).interval(10).startStep(1).build();
        MultiLayerNetwork net = EncoderBenchmark.encoder("prilora", RankSchedule.linear(4, 12));   // listener attached
        DataSet data = EncoderBenchmark.data(batch, seq);
        Runnable single = () -> net.fit(data);
        ParallelConfig.Builder cfg = ParallelConfig.builder().pruning(schedule);
        // Every variant trains the same network on the same batch: the step's work does not depend on the values.
        Map<String, Interleaved.Timing> all = new LinkedHashMap<>();
        Map<String, Double> ratio = new LinkedHashMap<>();
        try (LocalParallelTrainer w1 = new LocalParallelTrainer(net, cfg.workers(1).build());
             LocalParallelTrainer w2 = new LocalParallelTrainer(net, cfg.workers(2).build())) {
            Map<String, Interleaved.Timing> t = new Interleaved().add("single JVM", single)
                    .add("local, 1 worker", () -> w1.step(data)).add("local, 2 workers", () -> w2.step(data))
                    .run(options.warmup, options.rounds);
            record(t, all, ratio, 1);
        }
        try (LocalParallelTrainer w4 = new LocalParallelTrainer(net, cfg.workers(4).build())) {
            Map<String, Interleaved.Timing> t = new Interleaved().add("single JVM", single)
                    .add("local, 4 workers", () -> w4.step(data)).run(options.warmup, options.rounds);
            record(t, all, ratio, 2);
        }
        if (!skipSpark) {
            try (JavaSparkContext sc = new JavaSparkContext(new SparkConf().setMaster("local[2]").setAppName("scale-out-benchmark")
                    .set("spark.ui.enabled", "false").set("spark.driver.host", "127.0.0.1")
                    .set("spark.driver.bindAddress", "127.0.0.1"))) {
                sc.setLogLevel("WARN");
                List<DataSet> rows = new ArrayList<>();
                for (int i = 0; i < batch; i++) {
                    org.nd4j.linalg.dataset.api.MultiDataSet r = org.prilora.parallel.Batches.rows(
                            org.prilora.parallel.Batches.toMulti(data), i, i + 1);
                    rows.add(new DataSet(r.getFeatures(0), r.getLabels(0), r.getFeaturesMaskArray(0), null));
                }
                ShardedData<DataSet> sharded = ShardedData.of(sc.parallelize(rows, 2), RowConverter.dataSets(), batch, 2);
                try (SparkPriLoraTrainer s = new SparkPriLoraTrainer(sc, net, cfg.build())) {
                    Map<String, Interleaved.Timing> t = new Interleaved().add("single JVM", single)
                            .add("Spark local[2]", () -> s.step(sharded, 0)).run(options.warmup, options.rounds);
                    record(t, all, ratio, 3);
                }
            }
        }
        double loadEnd = loadAverage();
        json.put("loadAverage1mEnd", loadEnd);
        System.out.printf("load average (1 min) at end: %.2f%n", loadEnd);
        List<Map<String, Object>> rowsOut = new ArrayList<>();
        for (Map.Entry<String, Interleaved.Timing> e : all.entrySet()) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("variant", e.getKey());
            r.put("minMs", e.getValue().minMs());
            r.put("medianMs", e.getValue().medianMs());
            r.put("stepTimeOverSingleJvmPairedMedian", ratio.get(e.getKey()));
            r.put("samplesMs", e.getValue().samplesMs());
            rowsOut.add(r);
            System.out.printf("%-28s min %8.0f ms  median %8.0f ms  / single JVM %.3f%n", e.getKey(), e.getValue().minMs(),
                    e.getValue().medianMs(), ratio.get(e.getKey()));
        }
        json.put("variants", rowsOut);
        CategoryChart chart = new CategoryChartBuilder().width(800).height(450).title("PRILoRA step time, MiniLM encoder")
                .xAxisTitle("variant").yAxisTitle("median step (ms)").build();
        chart.addSeries("median ms", new ArrayList<>(all.keySet()),
                all.values().stream().map(Interleaved.Timing::medianMs).toList());
        options.write("scale-out-benchmark", json, w -> {
            w.println("variant,min_ms,median_ms,over_single_paired_median");
            all.forEach((k, v) -> w.printf("%s,%.1f,%.1f,%.4f%n", k, v.minMs(), v.medianMs(), ratio.get(k)));
        }, chart);
        return 0;
    }

    /** Keeps a phase's timings (the single-JVM row named by its phase) and each variant's paired ratio to that phase's single JVM. */
    private static void record(Map<String, Interleaved.Timing> phase, Map<String, Interleaved.Timing> all,
                               Map<String, Double> ratio, int phaseNumber) {
        Interleaved.Timing single = phase.get("single JVM");
        for (Map.Entry<String, Interleaved.Timing> e : phase.entrySet()) {
            String name = e.getKey();
            if (name.equals("single JVM")) {
                name = "single JVM (phase " + phaseNumber + ")";
            }
            all.put(name, e.getValue());
            ratio.put(name, e.getValue().pairedMedianRatio(single));
        }
    }
}
