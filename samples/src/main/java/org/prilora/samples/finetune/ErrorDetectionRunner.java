package org.prilora.samples.finetune;

import me.tongfei.progressbar.ProgressBar;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.RNNFormat;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.RnnOutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.util.ModelSerializer;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.impl.LossMCXENT;
import org.prilora.PriLora;
import org.prilora.PriLoraAdapters;
import org.prilora.PriLoraListener;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertHead;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.BertWeights;
import org.prilora.config.PriLoraConfig;
import org.prilora.heads.SpanMetrics;
import org.prilora.heads.SubWordLabels;
import org.prilora.heads.TokenLabels;
import org.prilora.samples.data.ErrorDetectionExample;
import org.prilora.samples.data.LanguageToolErrorDetection;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;

/**
 * Runs grammatical-error-detection experiments ({@link LanguageToolErrorDetection}: tag every word "ok" or "error")
 * with all-MiniLM-L6-v2 and a token-classification head ({@link BertHead#tokenClassification(double...)}), one run
 * per {@link FineTuneSettings}: the second task of {@code --compare}, with the same methods as the acceptability task.
 *
 * <p>Adapter methods: the plain pretrained MiniLM with the token head, converted by {@link PriLora#adapt} with the
 * run's {@link PriLoraConfig} (the head is the module to save) and pruned by a {@link PriLoraListener}. Full
 * fine-tuning trains the plain network. Head-only trains the same head as its own network on the frozen encoder's
 * token states, batch by batch. Labels sit on each word's first piece ({@link SubWordLabels#FIRST_PIECE}); padding
 * and special tokens are masked out of the loss; the "error" label weighs {@code errorWeight} in the cross-entropy.
 * Training batches are length-bucketed by {@link LengthBatcher}, as in the acceptability task.
 *
 * <p>Dev and test are evaluated once, after training: word-level and span-level precision, recall and F1 of "error"
 * ({@link SpanMetrics#simple}) and word accuracy next to the majority baseline. Outputs per run: the adapter file
 * (full: the model, head-only: the head, both as ModelSerializer zips), {@code metrics.json} and {@code loss.png}.
 */
public final class ErrorDetectionRunner implements CompareRuns.Runner<ErrorDetectionResult>, AutoCloseable {

    /** Label of a word without error. */
    public static final int OK = 0;
    /** Label of a word inside the marked error span. */
    public static final int ERROR = 1;
    /** Head-only: the trained head (DL4J ModelSerializer zip). */
    public static final String HEAD_FILE = "head.zip";
    /** What metrics.json and compare.json name as the task. */
    static final String TASK = "LanguageTool English grammatical error detection (word labels ok / error), all-MiniLM-L6-v2";

    private final LanguageToolErrorDetection.Data data;
    private final BertWeights weights;
    private final ProgressBars bars;
    private final PrintStream out;
    private final double errorWeight;
    private final Map<Integer, BertTokenizer> tokenizers = new HashMap<>();
    private final Map<Integer, Split[]> devTest = new HashMap<>();

    /** Sentences of a split with their token counts (special tokens included, at most the maximum length). */
    record Split(List<ErrorDetectionExample> examples, int[] lengths) {
        int size() {
            return examples.size();
        }

        List<ErrorDetectionExample> pick(int[] idx) {
            List<ErrorDetectionExample> l = new ArrayList<>(idx.length);
            for (int i : idx) {
                l.add(examples.get(i));
            }
            return l;
        }
    }

    /** A tokenized batch with the network's arrays and the gold word labels. */
    record Batch(DataSet ds, BertTokenizer.Batch tokens, List<int[]> wordLabels) {
    }

    /**
     * @param data        the error-detection data
     * @param weights     pretrained MiniLM weights
     * @param bars        progress bar factory
     * @param out         where progress messages go
     * @param errorWeight weight of the "error" label in the loss, a finite number &gt; 0 ("ok" has 1)
     */
    public ErrorDetectionRunner(LanguageToolErrorDetection.Data data, BertWeights weights, ProgressBars bars, PrintStream out,
                                double errorWeight) {
        if (!(errorWeight > 0) || !Double.isFinite(errorWeight)) {
            throw new IllegalArgumentException("errorWeight: expected a finite number > 0, got " + errorWeight);
        }
        this.data = data;
        this.weights = weights;
        this.bars = bars;
        this.out = out;
        this.errorWeight = errorWeight;
    }

    /**
     * The training sentences of a run.
     *
     * @param train the train split
     * @param n     sentences wanted: 0 = the whole split, else a sample drawn with {@code seed} (kept in split order)
     * @param seed  sampling seed
     * @return the sentences
     * @throws IllegalArgumentException when {@code n} is negative or larger than the split
     */
    public static List<ErrorDetectionExample> trainExamples(List<ErrorDetectionExample> train, int n, long seed) {
        if (n < 0 || n > train.size()) {
            throw new IllegalArgumentException("trainSize: expected 0 (the whole split) .. " + train.size()
                    + " (the train split's sentences), got " + n);
        }
        if (n == 0 || n == train.size()) {
            return train;
        }
        List<Integer> order = new ArrayList<>(train.size());
        for (int i = 0; i < train.size(); i++) {
            order.add(i);
        }
        Collections.shuffle(order, new Random(seed));
        List<Integer> picked = new ArrayList<>(order.subList(0, n));
        Collections.sort(picked);
        return picked.stream().map(train::get).toList();
    }

    /** @return the settings as metrics.json records them: {@link FineTuneSettings#toMap()} for this task */
    Map<String, Object> settingsMap(FineTuneSettings s) {
        Map<String, Object> m = s.toMap();
        m.remove("balanced");     // acceptability-only: sentence-class sampling and weights
        m.remove("classWeights");
        m.put("errorWeight", errorWeight);
        return m;
    }

    @Override
    public synchronized void prepare(FineTuneSettings shared) {
        devTest(shared.maxLength());
    }

    @Override
    @SuppressWarnings("unchecked")
    public ErrorDetectionResult reuse(FineTuneSettings s, Path dir) throws IOException {
        Path file = dir.resolve(RunOutputs.METRICS);
        if (!Files.isRegularFile(file)) {
            return null;
        }
        Map<String, Object> m = Json.readObject(file);
        if (!TASK.equals(m.get("task"))
                || !Json.toJson(m.get("settings")).equals(Json.toJson(Json.parse(Json.toJson(settingsMap(s)))))) {
            return null;
        }
        Map<String, Object> d = (Map<String, Object>) m.get("data");
        return new ErrorDetectionResult(s, errorWeight, m.get("config") == null ? null : Json.toJson(m.get("config")),
                ((Number) d.get("trainSentences")).intValue(),
                ErrorDetectionResult.Scores.fromMap((Map<String, Object>) m.get("dev")),
                ErrorDetectionResult.Scores.fromMap((Map<String, Object>) m.get("test")),
                ((Number) m.get("trainableParams")).longValue(), ((Number) m.get("allParams")).longValue(),
                (String) m.get("savedFile"), ((Number) m.get("savedFileBytes")).longValue(), ((Number) m.get("steps")).intValue(),
                ((Number) m.get("trainSeconds")).doubleValue(), ((Number) m.get("trainCpuSeconds")).doubleValue(),
                ((Number) m.get("evalSeconds")).doubleValue(), RunOutputs.readDoubles(m.get("losses")),
                RunOutputs.readDoubles(m.get("stepSeconds")), ((Number) m.get("pruningSteps")).longValue(),
                RunOutputs.readSurvival((Map<String, Object>) m.get("pruningSurvival")));
    }

    @Override
    public ErrorDetectionResult run(FineTuneSettings s, Path outDir) throws IOException {
        Files.createDirectories(outDir);
        Nd4j.getRandom().setSeed(s.seed());
        BertTokenizer tok;
        Split train;
        Split[] dt;
        synchronized (this) { // --jobs: runs on several threads share the tokenizer and the encoded dev/test
            tok = tokenizer(s.maxLength());
            train = split(tok, trainExamples(data.train(), s.trainSize(), s.seed()));
            dt = devTest(s.maxLength());
        }
        Method m = s.method();
        int steps = LengthBatcher.batchesPerEpoch(train.size(), s.batchSize()) * s.epochs();
        long withError = train.examples().stream().filter(ErrorDetectionExample::hasError).count();
        out.printf(Locale.ROOT, "%n=== error detection, %s, seed %d: %d training sentences (%.1f%% with an error, mean %.1f "
                        + "tokens), %d epoch(s) x %d steps ===%n", m, s.seed(), train.size(), 100.0 * withError / train.size(),
                Arrays.stream(train.lengths()).average().orElse(0), s.epochs(), steps / s.epochs());

        boolean adapters = m.usesAdapters();
        PriLoraConfig cfg = adapters ? s.priLoraConfig() : null;
        MultiLayerNetwork frozen = m == Method.HEAD_ONLY ? BertEncoderFactory.builder(weights.config()).plain().build(weights)
                : null;
        MultiLayerNetwork net;
        if (frozen != null) {
            net = headOnly(s);
        } else {
            MultiLayerNetwork base = BertEncoderFactory.builder(weights.config()).plain().seed(adapters ? cfg.seed() : s.seed())
                    .updater(new Adam(s.runLearningRate())).head(BertHead.tokenClassification(1.0, errorWeight))
                    .build(weights);
            net = adapters ? PriLora.adapt(base, cfg) : base;
        }
        PriLoraListener listener = adapters ? new PriLoraListener(cfg.pruning()) : null;
        if (listener != null) {
            net.setListeners(listener);
            out.printf(Locale.ROOT, "ranks by block %s, alpha %s, %s, %s%n",
                    Arrays.toString(cfg.rankSchedule().ranks(weights.config().numLayers())), cfg.adapter().alpha(),
                    cfg.pruning(), cfg.adapter().pruningMode());
        }
        long head = 2L * weights.config().hidden() + 2;
        long trainable = frozen != null ? net.numParams() : PriLora.summary(net).trainableParams();
        long expected = frozen != null ? head : adapters ? ParameterBudget.trainable(weights.config(), cfg.rankSchedule(), 2)
                : net.numParams() - net.getLayer(0).numParams();
        if (trainable != expected) {
            throw new IllegalStateException("trainable parameters: expected " + expected + ", the network trains " + trainable);
        }
        long all = frozen != null ? frozen.numParams() + net.numParams() : net.numParams();
        out.printf(Locale.ROOT, "trainable params: %,d || all params: %,d || trainable%%: %.4f; lr %s; error weight %s%n",
                trainable, all, 100.0 * trainable / all, s.runLearningRate(), errorWeight);

        Function<Batch, DataSet> input = frozen == null ? Batch::ds : b -> new DataSet(
                frozen.output(b.ds().getFeatures(), false, b.ds().getFeaturesMaskArray(), null), b.ds().getLabels(),
                b.ds().getFeaturesMaskArray(), b.ds().getLabelsMaskArray());
        SparsityTrace sparsity = new SparsityTrace(steps);
        double[] losses = new double[steps];
        double[] seconds = new double[steps];
        Stopwatch training = Stopwatch.start();
        int k = 0;
        try (ProgressBar bar = bars.start("ged " + m.cliName() + " s" + s.seed(), (long) train.size() * s.epochs())) {
            for (int epoch = 0; epoch < s.epochs(); epoch++) {
                for (int[] idx : LengthBatcher.trainingBatches(train.lengths(), s.batchSize(),
                        LengthBatcher.DEFAULT_BUCKET_BATCHES, s.seed(), epoch)) {
                    long t0 = System.nanoTime();
                    net.fit(input.apply(batch(tok, train.pick(idx))));
                    double loss = net.score();
                    seconds[k] = (System.nanoTime() - t0) / 1e9;
                    if (!Double.isFinite(loss)) {
                        throw new IllegalStateException("training diverged: loss " + loss + " at step " + (k + 1)
                                + " (learning rate " + s.runLearningRate() + ")");
                    }
                    losses[k++] = loss;
                    if (listener != null && m.pruned()) {
                        sparsity.record(k, PriLoraListener.figures(net), listener.getPruningStepsDone());
                    }
                    bar.stepBy(idx.length);
                    bar.setExtraMessage(ProgressBars.extra(String.format(Locale.ROOT, "ep %d/%d step %d/%d loss %.3f avg10 %.3f",
                            epoch + 1, s.epochs(), k, steps, loss, TrainLoop.mean(losses, Math.max(0, k - 10), k))));
                }
            }
        }
        double trainSeconds = training.wallSeconds();
        double trainCpu = training.cpuSeconds();

        Stopwatch evaluation = Stopwatch.start();
        Function<Batch, INDArray> forward = b -> {
            DataSet ds = input.apply(b);
            return net.output(ds.getFeatures(), false, ds.getFeaturesMaskArray(), null);
        };
        ErrorDetectionResult.Scores dev = evaluate("dev", tok, dt[0], forward);
        ErrorDetectionResult.Scores test = s.evaluateTest() ? evaluate("test", tok, dt[1], forward) : null;
        double evalSeconds = evaluation.wallSeconds();

        String fileName = adapters ? FineTuneRunner.ADAPTER_FILE : frozen != null ? HEAD_FILE : FineTuneRunner.FULL_MODEL_FILE;
        Path file = outDir.resolve(fileName);
        if (adapters) {
            PriLoraAdapters.save(net, file, cfg);
        } else {
            ModelSerializer.writeModel(net, file.toFile(), false);
        }
        ErrorDetectionResult r = new ErrorDetectionResult(s, errorWeight, adapters ? cfg.toJson() : null, train.size(), dev,
                test, trainable, all, fileName, Files.size(file), k, trainSeconds, trainCpu, evalSeconds, losses, seconds,
                listener != null ? listener.getPruningStepsDone() : 0, sparsity.survival());
        write(r, outDir);
        out.println(r.oneLine());
        return r;
    }

    private void write(ErrorDetectionResult r, Path dir) throws IOException {
        FineTuneSettings s = r.settings();
        Json.write(dir.resolve(RunOutputs.METRICS), Json.object(
                "task", TASK,
                "model", "all-MiniLM-L6-v2 (" + FineTuneRunner.MODEL_RESOURCE + ")",
                "method", s.method().cliName(),
                "seed", s.seed(),
                "settings", settingsMap(s),
                "config", r.configJson() == null ? null : Json.parse(r.configJson()),
                "data", Json.object("trainSentences", r.trainSentences(), "devSentences", r.dev().sentences(),
                        "testSentences", r.test() == null ? 0 : r.test().sentences()),
                "dev", r.dev().toMap(),
                "test", r.test() == null ? null : r.test().toMap(),
                "trainableParams", r.trainableParams(),
                "allParams", r.allParams(),
                "savedFile", r.savedFile(),
                "savedFileBytes", r.savedFileBytes(),
                "steps", r.steps(),
                "trainSeconds", RunOutputs.round(r.trainSeconds(), 2),
                "trainCpuSeconds", RunOutputs.round(r.trainCpuSeconds(), 2),
                "evalSeconds", RunOutputs.round(r.evalSeconds(), 2),
                "medianStepSeconds", RunOutputs.round(r.medianStepSeconds(), 4),
                "pruningSteps", r.pruningSteps(),
                "pruningSurvival", RunOutputs.survival(r.survival()),
                "losses", RunOutputs.rounded(r.losses(), 6),
                "stepSeconds", RunOutputs.rounded(r.stepSeconds(), 4)));
        org.prilora.io.AtomicFiles.write(dir.resolve(RunOutputs.LOSS_CHART), RunOutputs.png(RunOutputs.lossChart(
                "error detection, " + s.method() + " seed " + s.seed(), Map.of("loss", r.losses()))));
    }

    /** The head-only baseline: the token head as its own network, on the frozen encoder's token states. */
    private MultiLayerNetwork headOnly(FineTuneSettings s) {
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder().seed(s.seed()).updater(new Adam(s.learningRate()))
                .list()
                .layer(new RnnOutputLayer.Builder(new LossMCXENT(Nd4j.createFromArray(new float[][]{{1f, (float) errorWeight}})))
                        .activation(Activation.SOFTMAX).dataFormat(RNNFormat.NCW).nOut(2).build())
                .setInputType(InputType.recurrent(weights.config().hidden(), RNNFormat.NCW)).build();
        MultiLayerNetwork n = new MultiLayerNetwork(conf);
        n.init();
        return n;
    }

    /** Tokenizes a batch and builds its arrays: features, attention mask, one-hot word labels and their mask. */
    static Batch batch(BertTokenizer tok, List<ErrorDetectionExample> examples) {
        BertTokenizer.Batch b;
        synchronized (tok) {
            b = tok.encode(examples.stream().map(ErrorDetectionExample::sentence).toList());
        }
        List<int[]> words = new ArrayList<>();
        for (int i = 0; i < examples.size(); i++) {
            ErrorDetectionExample e = examples.get(i);
            // the tokenizer's offsets count code points; the example's span counts UTF-16 units
            List<int[]> spans = e.hasError() ? List.of(new int[]{e.sentence().codePointCount(0, e.errorStart()),
                    e.sentence().codePointCount(0, e.errorEnd())}) : List.of();
            words.add(TokenLabels.wordsInSpans(b, i, spans, ERROR, OK));
        }
        TokenLabels y = TokenLabels.fromWordLabels(b, words, 2, SubWordLabels.FIRST_PIECE);
        return new Batch(new DataSet(b.features(DataType.FLOAT, true), y.labels(), b.maskArray(DataType.FLOAT), y.mask()),
                b, words);
    }

    private ErrorDetectionResult.Scores evaluate(String name, BertTokenizer tok, Split split, Function<Batch, INDArray> forward) {
        SpanMetrics model = SpanMetrics.simple(OK);
        SpanMetrics majority = SpanMetrics.simple(OK);
        try (ProgressBar bar = bars.start(name, split.size())) {
            for (int[] idx : LengthBatcher.evaluationBatches(split.lengths(), TrainLoop.EVAL_BATCH)) {
                Batch b = batch(tok, split.pick(idx));
                List<int[]> predicted = TokenLabels.wordPredictions(b.tokens(), forward.apply(b));
                for (int i = 0; i < predicted.size(); i++) {
                    int[] gold = b.wordLabels().get(i);   // the words within the maximum length
                    model.add(gold, predicted.get(i));
                    majority.add(gold, SpanMetrics.allOutside(gold.length, OK));
                }
                bar.stepBy(idx.length);
                bar.setExtraMessage(ProgressBars.extra("T=" + b.tokens().length()));
            }
        }
        ErrorDetectionResult.Scores sc = ErrorDetectionResult.Scores.of(split.size(), model, majority);
        out.printf(Locale.ROOT, "%s (%,d sentences, %,d words): %s%n", name, sc.sentences(), sc.words(), sc.oneLine());
        return sc;
    }

    private static Split split(BertTokenizer tok, List<ErrorDetectionExample> examples) {
        int[] lengths = new int[examples.size()];
        synchronized (tok) {
            for (int i = 0; i < lengths.length; i++) {
                lengths[i] = tok.encode(List.of(examples.get(i).sentence())).realLength(0);
            }
        }
        return new Split(examples, lengths);
    }

    private BertTokenizer tokenizer(int maxLength) {
        return tokenizers.computeIfAbsent(maxLength, len -> {
            try {
                return BertTokenizer.fromClasspath(FineTuneRunner.TOKENIZER_RESOURCE, len, false);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    private Split[] devTest(int maxLength) {
        return devTest.computeIfAbsent(maxLength, len -> new Split[]{split(tokenizer(len), data.dev()),
                split(tokenizer(len), data.test())});
    }

    @Override
    public void close() {
        tokenizers.values().forEach(BertTokenizer::close);
        tokenizers.clear();
    }
}
