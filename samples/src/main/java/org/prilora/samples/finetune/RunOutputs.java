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
            projections.add(Json.object("module", f.qualifiedName(), "layer", f.layer(), "moduleInLayer", f.module(),
                    "rank", f.rank(), "nIn", f.nIn(), "nOut", f.nOut(),
                    "finalASparsity", round(f.aSparsity(), 6), "xnormMean", round(f.xnormMean(), 6),
                    "xnormMin", round(f.xnormMin(), 6), "xnormMax", round(f.xnormMax(), 6),
                    "batchesSeen", f.batchesSeen()));
        }
        List<Double> losses = new ArrayList<>(r.losses().length);
        for (double l : r.losses()) {
            losses.add(round(l, 6));
        }
        List<Double> stepSeconds = new ArrayList<>(r.stepSeconds().length);
        for (double t : r.stepSeconds()) {
            stepSeconds.add(round(t, 4));
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
                "classPrior", r.priorNote(),
                "pruningSurvival", survival(r.survival()),
                "finalLossAvg10", round(r.finalLoss(SMOOTHING), 5),
                "projections", projections,
                "losses", losses,
                "stepSeconds", stepSeconds,
                "environment", Json.object("OMP_NUM_THREADS", System.getenv("OMP_NUM_THREADS"),
                        "OPENBLAS_CORETYPE", System.getenv("OPENBLAS_CORETYPE"),
                        "availableProcessors", Runtime.getRuntime().availableProcessors(),
                        "java", System.getProperty("java.version")));
    }

    /**
     * Reads a run back from its {@value #METRICS}, for {@code --compare --resume}: only when the file records exactly
     * the settings {@code s} (as {@link FineTuneSettings#toMap()} writes them) and every figure the compare report
     * needs.
     *
     * @param file the metrics file
     * @param s    the settings the run must have had
     * @return the run, or null when the file is missing or records other settings
     * @throws IOException if the file exists but cannot be read
     */
    @SuppressWarnings("unchecked")
    static RunResult read(Path file, FineTuneSettings s) throws IOException {
        if (!Files.isRegularFile(file)) {
            return null;
        }
        Map<String, Object> m = Json.readObject(file);
        if (!Json.toJson(m.get("settings")).equals(Json.toJson(Json.parse(Json.toJson(s.toMap()))))
                || !m.containsKey("stepSeconds")) {
            return null;
        }
        List<ModuleFigures> figures = new ArrayList<>();
        for (Map<String, Object> p : (List<Map<String, Object>>) m.get("projections")) {
            figures.add(new ModuleFigures((String) p.get("layer"), (String) p.get("moduleInLayer"), num(p, "rank").intValue(),
                    num(p, "nIn").longValue(), num(p, "nOut").longValue(), dbl(p, "finalASparsity"), dbl(p, "xnormMean"),
                    dbl(p, "xnormMin"), dbl(p, "xnormMax"), num(p, "batchesSeen").longValue()));
        }
        Map<String, Object> data = (Map<String, Object>) m.get("data");
        SparsityTrace.Survival survival = readSurvival((Map<String, Object>) m.get("pruningSurvival"));
        return new RunResult(s, m.get("config") == null ? null : Json.toJson(m.get("config")),
                num(data, "trainSentences").intValue(), num(data, "trainAcceptable").intValue(),
                num(data, "devSentences").intValue(), num(data, "testSentences").intValue(),
                confusion((Map<String, Object>) m.get("dev")), confusion((Map<String, Object>) m.get("test")),
                num(m, "trainableParams").longValue(), num(m, "allParams").longValue(), (String) m.get("adapterFile"),
                num(m, "adapterFileBytes").longValue(), num(m, "steps").intValue(), dbl(m, "trainSeconds"),
                dbl(m, "trainCpuSeconds"), dbl(m, "evalSeconds"), doubles(m.get("losses")), doubles(m.get("stepSeconds")),
                figures, num(m, "pruningSteps").longValue(), (String) m.get("classPrior"), survival);
    }

    /** @return the survival figures {@link #survival} wrote, or null for null */
    @SuppressWarnings("unchecked")
    static SparsityTrace.Survival readSurvival(Map<String, Object> sv) {
        return sv == null ? null : new SparsityTrace.Survival(
                ((List<Number>) sv.get("pruningStepList")).stream().mapToInt(Number::intValue).toArray(),
                dbl(sv, "zerosAfterPruning"), dbl(sv, "zerosBeforeNextPruning"), dbl(sv, "survival"),
                dbl(sv, "zerosOneStepLater"), dbl(sv, "zerosAtEnd"));
    }

    /** @return the values rounded to {@code digits} (NaN as null), for JSON */
    static List<Double> rounded(double[] values, int digits) {
        List<Double> l = new ArrayList<>(values.length);
        for (double v : values) {
            l.add(round(v, digits));
        }
        return l;
    }

    /** @return a JSON list of numbers (null as NaN) as an array */
    static double[] readDoubles(Object list) {
        return doubles(list);
    }

    private static Number num(Map<String, Object> m, String key) {
        Object v = m.get(key);
        if (!(v instanceof Number n)) {
            throw new IllegalArgumentException("metrics.json: expected a number at '" + key + "', got " + v);
        }
        return n;
    }

    private static double dbl(Map<String, Object> m, String key) {
        Object v = m.get(key);
        return v == null ? Double.NaN : num(m, key).doubleValue(); // NaN is written as null
    }

    @SuppressWarnings("unchecked")
    private static double[] doubles(Object list) {
        return ((List<Object>) list).stream().mapToDouble(x -> x == null ? Double.NaN : ((Number) x).doubleValue()).toArray();
    }

    private static BinaryConfusion confusion(Map<String, Object> c) {
        return c == null ? null : new BinaryConfusion(num(c, "tp").longValue(), num(c, "tn").longValue(),
                num(c, "fp").longValue(), num(c, "fn").longValue());
    }

    private static Map<String, Object> split(BinaryConfusion c) {
        return Json.object("accuracy", round(c.accuracy(), 6), "majorityAccuracy", round(c.majorityAccuracy(), 6),
                "mcc", round(c.mcc(), 6), "predictedAcceptableShare", round(c.predictedPositiveShare(), 6),
                "tp", c.tp(), "tn", c.tn(), "fp", c.fp(), "fn", c.fn(),
                "confusion", "rows actual (acceptable, unacceptable), columns predicted (acceptable, unacceptable)");
    }

    static Map<String, Object> survival(SparsityTrace.Survival s) {
        if (s == null) {
            return null;
        }
        return Json.object("meaning", "zero fraction of all A entries; survival = zeros one step before the next "
                        + "pruning step / zeros right after a pruning step",
                "pruningStepCount", s.pruningSteps().length,
                "pruningStepList", java.util.Arrays.stream(s.pruningSteps()).boxed().toList(),
                "zerosAfterPruning", round(s.afterPruning(), 6),
                "zerosOneStepLater", round(s.afterOneStep(), 6),
                "zerosBeforeNextPruning", round(s.beforeNextPruning(), 6),
                "survival", round(s.survival(), 6),
                "zerosAtEnd", round(s.finalSparsity(), 6));
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
                .title(method + ": A zeros at the end of training (REGROW: only the last pruning's, if it was the last step)")
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
