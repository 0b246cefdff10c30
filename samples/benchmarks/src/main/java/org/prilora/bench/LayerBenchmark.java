package org.prilora.bench;

import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.Layer;
import org.deeplearning4j.nn.conf.layers.LossLayer;
import org.deeplearning4j.nn.conf.layers.RnnLossLayer;
import org.deeplearning4j.nn.conf.layers.SelfAttentionLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.prilora.layers.PriLoraDense;
import org.prilora.layers.PriLoraSelfAttention;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * Training-step time of one adapter layer vs the same layer trained fully, side by side in one process:
 * {@code PriLoraDense} 384→1536 vs {@code DenseLayer} on 2048 rows (= [32, 384, 64] per time step), and
 * {@code PriLoraSelfAttention} vs {@code SelfAttentionLayer}, width 384, 12 heads, on [32, 384, 64]. Adam, float32.
 * Each network is the layer plus a parameter-free loss layer, so a step is the layer's forward, backward and
 * update. Writes {@code layer-benchmark.json}, {@code .csv} and {@code .png} to the output directory.
 *
 * <p>Rerun: {@code mvn -B -q install -DskipTests && mvn -B -q -pl samples/benchmarks initialize exec:exec
 * -Dsample.main=org.prilora.bench.LayerBenchmark} (results in {@code samples/benchmarks/bench-results/}).
 */
@Command(name = "layer-benchmark", mixinStandardHelpOptions = true, description = "Adapter layer vs full layer training-step time.")
public final class LayerBenchmark implements Callable<Integer> {

    /** How {@code call} is rerun, recorded in the JSON. */
    static final String COMMAND = "mvn -B -q -pl samples/benchmarks initialize exec:exec -Dsample.main=org.prilora.bench.LayerBenchmark";

    @Mixin
    BenchOptions options = new BenchOptions(15, 5);
    @Option(names = "--rank", description = "Adapter rank (default: ${DEFAULT-VALUE}).")
    int rank = 8;

    /**
     * Entry point.
     *
     * @param args options ({@code --help} lists them)
     */
    public static void main(String[] args) {
        System.exit(new CommandLine(new LayerBenchmark()).execute(args));
    }

    private static MultiLayerNetwork net(Layer layer, boolean recurrent, int nIn) {
        NeuralNetConfiguration.ListBuilder b = new NeuralNetConfiguration.Builder().seed(1).dataType(DataType.FLOAT)
                .updater(new Adam(1e-4)).list().layer(layer);
        if (recurrent) {
            b.layer(new RnnLossLayer.Builder().activation(Activation.IDENTITY).lossFunction(LossFunctions.LossFunction.MSE).build())
                    .setInputType(InputType.recurrent(nIn));
        } else {
            b.layer(new LossLayer.Builder().activation(Activation.IDENTITY).lossFunction(LossFunctions.LossFunction.MSE).build())
                    .setInputType(InputType.feedForward(nIn));
        }
        MultiLayerNetwork n = new MultiLayerNetwork(b.build());
        n.init();
        return n;
    }

    @Override
    public Integer call() throws Exception {
        int mb = 32, width = 384, t = 64, ffn = 1536, heads = 12;
        Map<String, Object> json = options.begin("layer training step, adapter vs full", COMMAND);
        double gemm = BenchOptions.gemmReference(mb * t, width, ffn);

        Nd4j.getRandom().setSeed(1);
        DataSet denseData = new DataSet(Nd4j.rand(DataType.FLOAT, mb * t, width), Nd4j.rand(DataType.FLOAT, mb * t, ffn));
        MultiLayerNetwork denseFull = net(new DenseLayer.Builder().nIn(width).nOut(ffn).activation(Activation.GELU).build(), false, width);
        MultiLayerNetwork denseLora = net(new PriLoraDense.Builder().nIn(width).nOut(ffn).rank(rank).activation(Activation.GELU).build(), false, width);

        DataSet attData = new DataSet(Nd4j.rand(DataType.FLOAT, mb, width, t), Nd4j.rand(DataType.FLOAT, mb, width, t));
        MultiLayerNetwork attFull = net(new SelfAttentionLayer.Builder().nIn(width).nOut(width).nHeads(heads).projectInput(true).build(), true, width);
        MultiLayerNetwork attLora = net(new PriLoraSelfAttention.Builder().nIn(width).nOut(width).nHeads(heads).rank(rank).build(), true, width);

        Map<String, Interleaved.Timing> dense = new Interleaved()
                .add("DenseLayer (full)", () -> denseFull.fit(denseData))
                .add("PriLoraDense r=" + rank, () -> denseLora.fit(denseData))
                .run(options.warmup, options.rounds);
        Map<String, Interleaved.Timing> att = new Interleaved()
                .add("SelfAttentionLayer (full)", () -> attFull.fit(attData))
                .add("PriLoraSelfAttention r=" + rank, () -> attLora.fit(attData))
                .run(options.warmup, options.rounds);

        List<Interleaved.Timing> d = new ArrayList<>(dense.values());
        List<Interleaved.Timing> a = new ArrayList<>(att.values());
        double denseRatioMin = d.get(1).minMs() / d.get(0).minMs();
        double denseRatioMed = d.get(1).medianMs() / d.get(0).medianMs();
        double attRatioMin = a.get(1).minMs() / a.get(0).minMs();
        double attRatioMed = a.get(1).medianMs() / a.get(0).medianMs();
        // FLOPs of the dense adapter step: forward x·W + backward δ·Wᵀ (2 big GEMMs) + the rank-r products.
        double n = mb * t;
        double denseLoraFlops = 2 * (2 * n * width * ffn) + 2 * 5 * n * rank * (width + ffn);
        double denseFullFlops = 3 * (2 * n * width * ffn);
        double denseLoraGflops = denseLoraFlops / (d.get(1).minMs() / 1e3) / 1e9;
        double denseFullGflops = denseFullFlops / (d.get(0).minMs() / 1e3) / 1e9;

        for (Interleaved.Timing x : d) {
            System.out.printf("%-32s min %8.2f ms   median %8.2f ms%n", x.name(), x.minMs(), x.medianMs());
        }
        System.out.printf("dense: adapter/full step time = %.3f (min), %.3f (median); adapter step %.1f GFLOPS = %.0f%% of GEMM, full step %.1f GFLOPS%n",
                denseRatioMin, denseRatioMed, denseLoraGflops, 100 * denseLoraGflops / gemm, denseFullGflops);
        for (Interleaved.Timing x : a) {
            System.out.printf("%-32s min %8.2f ms   median %8.2f ms%n", x.name(), x.minMs(), x.medianMs());
        }
        System.out.printf("attention: adapter/full step time = %.3f (min), %.3f (median)%n", attRatioMin, attRatioMed);

        json.put("rank", rank);
        json.put("gemmReferenceGflops", gemm);
        json.put("dense", Map.of("shape", "2048x384 -> 1536", "fullMinMs", d.get(0).minMs(), "fullMedianMs", d.get(0).medianMs(),
                "adapterMinMs", d.get(1).minMs(), "adapterMedianMs", d.get(1).medianMs(), "ratioMin", denseRatioMin,
                "ratioMedian", denseRatioMed, "adapterGflops", denseLoraGflops, "fullGflops", denseFullGflops));
        json.put("attention", Map.of("shape", "[32, 384, 64], 12 heads", "fullMinMs", a.get(0).minMs(), "fullMedianMs", a.get(0).medianMs(),
                "adapterMinMs", a.get(1).minMs(), "adapterMedianMs", a.get(1).medianMs(), "ratioMin", attRatioMin, "ratioMedian", attRatioMed));
        CategoryChart chart = new CategoryChartBuilder().width(800).height(450).title("Training step, min of " + options.rounds + " (ms)")
                .xAxisTitle("layer").yAxisTitle("ms").build();
        chart.addSeries("full", List.of("dense 384->1536", "attention 384/12h"), List.of(d.get(0).minMs(), a.get(0).minMs()));
        chart.addSeries("PRILoRA r=" + rank, List.of("dense 384->1536", "attention 384/12h"), List.of(d.get(1).minMs(), a.get(1).minMs()));
        options.write("layer-benchmark", json, w -> {
            w.println("layer,variant,min_ms,median_ms");
            for (Interleaved.Timing x : d) {
                w.printf("dense,%s,%.3f,%.3f%n", x.name(), x.minMs(), x.medianMs());
            }
            for (Interleaved.Timing x : a) {
                w.printf("attention,%s,%.3f,%.3f%n", x.name(), x.minMs(), x.medianMs());
            }
        }, chart);
        return 0;
    }
}
