package org.prilora.samples.finetune;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;
import org.prilora.io.AtomicFiles;
import org.prilora.ModuleFigures;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The files of one run: {@value #METRICS} (settings, configuration, data sizes, dev/test accuracy and MCC,
 * parameter counts, adapter file size, timings, per-projection rank and final A sparsity, every step's loss),
 * {@value #LOSS_CHART} and, for adapter methods, {@value #RANK_CHART}. Every file is written atomically.
 */
public final class RunOutputs {

    /** Metrics file name. */
    public static final String METRICS = "metrics.json";
    /** Training loss chart. */
    public static final String LOSS_CHART = "loss.png";
    /** Rank and final A sparsity per projection. */
    public static final String RANK_CHART = "ranks-sparsity.png";
    /** Window of the moving average drawn over the per-step loss. */
    public static final int SMOOTHING = 10;

    private RunOutputs() {
    }

    /**
     * Writes all files of a run.
     *
     * @param r   the run
     * @param dir output folder
     * @throws IOException if a file cannot be written
     */
    public static void write(RunResult r, Path dir) throws IOException {
        Files.createDirectories(dir);
        Json.write(dir.resolve(METRICS), metrics(r));
        AtomicFiles.write(dir.resolve(LOSS_CHART), png(lossChart(r.settings().method() + " seed " + r.settings().seed(),
                Map.of("loss", r.losses()))));
        if (!r.figures().isEmpty()) {
            AtomicFiles.write(dir.resolve(RANK_CHART), rankSparsityPng(r.figures(), r.settings().method().cliName()));
        }
    }

    /**
     * The content of {@value #METRICS}.
     *
     * @param r the run
     * @return an ordered map (JSON object)
     */
    public static Map<String, Object> metrics(RunResult r) {
        FineTuneSettings s = r.settings();
        List<Map<String, Object>> projections = new ArrayList<>();
        for (ModuleFigures f : r.figures()) {
            projections.add(Json.object("module", f.qualifiedName(), "rank", f.rank(), "nIn", f.nIn(), "nOut", f.nOut(),
                    "finalASparsity", round(f.aSparsity(), 6), "xnormMean", round(f.xnormMean(), 6)));
        }
        List<Double> losses = new ArrayList<>(r.losses().length);
        for (double l : r.losses()) {
            losses.add(round(l, 6));
        }
        return Json.object(
                "task", "LanguageTool English grammatical acceptability (label 1 = acceptable)",
                "model", "all-MiniLM-L6-v2 (" + FineTuneRunner.MODEL_RESOURCE + ")",
                "method", s.method().cliName(),
                "seed", s.seed(),
                "settings", s.toMap(),
                "config", r.configJson() == null ? null : Json.parse(r.configJson()),
                "data", Json.object("trainSentences", r.trainSentences(), "trainAcceptable", r.trainAcceptable(),
                        "devSentences", r.devSentences(), "testSentences", r.testSentences()),
                "dev", split(r.dev()),
                "test", r.test() == null ? null : split(r.test()),
                "trainableParams", r.trainableParams(),
                "allParams", r.allParams(),
                "adapterFile", r.adapterFile(),
                "adapterFileBytes", r.adapterFileBytes(),
                "steps", r.steps(),
                "trainSeconds", round(r.trainSeconds(), 2),
                "trainCpuSeconds", round(r.trainCpuSeconds(), 2),
                "evalSeconds", round(r.evalSeconds(), 2),
                "trainSentencesPerSecond", r.trainSeconds() > 0
                        ? round((double) r.trainSentences() * s.epochs() / r.trainSeconds(), 2) : null,
                "medianStepSeconds", round(r.medianStepSeconds(), 4),
                "firstStepSeconds", r.stepSeconds().length == 0 ? null : round(r.stepSeconds()[0], 3),
                "pruningSteps", r.pruningSteps(),
                "finalLossAvg10", round(r.finalLoss(SMOOTHING), 5),
                "projections", projections,
                "losses", losses,
                "environment", Json.object("OMP_NUM_THREADS", System.getenv("OMP_NUM_THREADS"),
                        "OPENBLAS_CORETYPE", System.getenv("OPENBLAS_CORETYPE"),
                        "availableProcessors", Runtime.getRuntime().availableProcessors(),
                        "java", System.getProperty("java.version")));
    }

    private static Map<String, Object> split(BinaryConfusion c) {
        return Json.object("accuracy", round(c.accuracy(), 6), "mcc", round(c.mcc(), 6),
                "tp", c.tp(), "tn", c.tn(), "fp", c.fp(), "fn", c.fn());
    }

    static Double round(double v, int digits) {
        if (!Double.isFinite(v)) {
            return null; // JSON has no NaN
        }
        return new java.math.BigDecimal(v).setScale(digits, java.math.RoundingMode.HALF_EVEN).doubleValue();
    }

    /**
     * A loss chart: each series' per-step loss (thin) and its moving average over {@value #SMOOTHING} steps.
     *
     * @param title  chart title
     * @param series name to per-step losses
     * @return the chart
     */
    public static XYChart lossChart(String title, Map<String, double[]> series) {
        XYChart c = new XYChartBuilder().width(900).height(500).title("Training loss: " + title)
                .xAxisTitle("step").yAxisTitle("cross-entropy").build();
        c.getStyler().setMarkerSize(0);
        for (Map.Entry<String, double[]> e : new java.util.TreeMap<>(series).entrySet()) {
            double[] y = e.getValue();
            if (y.length == 0) {
                continue;
            }
            double[] x = new double[y.length];
            for (int i = 0; i < y.length; i++) {
                x[i] = i + 1;
            }
            if (series.size() == 1) {
                c.addSeries(e.getKey() + " (per step)", x, y).setMarker(SeriesMarkers.NONE);
            }
            c.addSeries(e.getKey() + " (mean of last " + SMOOTHING + ")", x, movingAverage(y, SMOOTHING))
                    .setMarker(SeriesMarkers.NONE);
        }
        return c;
    }

    /**
     * Trailing moving average.
     *
     * @param y      values
     * @param window window length, at least 1
     * @return element i = mean of y[max(0, i-window+1) .. i]
     */
    public static double[] movingAverage(double[] y, int window) {
        double[] out = new double[y.length];
        double sum = 0;
        for (int i = 0; i < y.length; i++) {
            sum += y[i];
            if (i >= window) {
                sum -= y[i - window];
            }
            out[i] = sum / Math.min(i + 1, window);
        }
        return out;
    }

    /** Two stacked bar charts: rank and final sparsity of A for every adapted projection, bottom block first. */
    static byte[] rankSparsityPng(List<ModuleFigures> figures, String method) throws IOException {
        List<String> names = new ArrayList<>();
        List<Integer> ranks = new ArrayList<>();
        List<Double> sparsity = new ArrayList<>();
        for (ModuleFigures f : figures) {
            names.add(shortName(f));
            ranks.add(f.rank());
            sparsity.add(f.aSparsity());
        }
        CategoryChart r = new CategoryChartBuilder().width(1200).height(380).title(method + ": adapter rank per projection")
                .xAxisTitle("projection (block.site)").yAxisTitle("rank").build();
        r.getStyler().setLegendVisible(false);
        r.getStyler().setXAxisLabelRotation(90);
        r.addSeries("rank", names, ranks);
        CategoryChart sp = new CategoryChartBuilder().width(1200).height(380)
                .title(method + ": final sparsity of A (fraction of exact zeros)")
                .xAxisTitle("projection (block.site)").yAxisTitle("sparsity").build();
        sp.getStyler().setLegendVisible(false);
        sp.getStyler().setXAxisLabelRotation(90);
        sp.getStyler().setYAxisMin(0.0);
        sp.getStyler().setYAxisMax(1.0);
        sp.addSeries("sparsity", names, sparsity);
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        BitmapEncoder.saveBitmap(List.of(r, sp), 2, 1, bos, BitmapEncoder.BitmapFormat.PNG);
        return bos.toByteArray();
    }

    /** {@code encoder.layer.3} + {@code attention.self.query} → {@code 3.q}. */
    static String shortName(ModuleFigures f) {
        String layer = f.layer().startsWith("encoder.layer.") ? f.layer().substring("encoder.layer.".length()) : f.layer();
        String site = switch (f.module()) {
            case "attention.self.query" -> "q";
            case "attention.self.key" -> "k";
            case "attention.self.value" -> "v";
            case "attention.output.dense" -> "ao";
            case "intermediate.dense" -> "i";
            case "output.dense" -> "o";
            default -> f.module();
        };
        return site.isEmpty() ? layer : layer + "." + site;
    }

    static byte[] png(XYChart chart) throws IOException {
        return BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG);
    }
}
