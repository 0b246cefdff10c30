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
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertWeights;
import org.prilora.config.RankSchedule;
import org.prilora.io.AtomicFiles;
import org.prilora.io.SafeTensors;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.PriLoraLayer;
import org.prilora.samples.data.AcceptabilityData;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The {@link Method#HEAD_ONLY} baseline: the frozen encoder's mean-pooled embeddings (a forward pass, no training,
 * cached by sentence across runs) feed a DL4J softmax {@link OutputLayer} trained on the same batches, in the same
 * order, as the adapter runs. Its "adapter file" is that classifier, as safetensors.
 */
final class HeadOnlyBaseline {

    private final BertWeights weights;
    private final ProgressBars bars;
    private final TrainLoop loop;
    /** Embeddings by (maxLength, sentence): the frozen encoder's output depends on nothing else. */
    private final Map<String, float[]> embeddings = new HashMap<>();
    private MultiLayerNetwork embedder;

    /**
     * @param weights pretrained MiniLM weights
     * @param bars    progress bar factory (embedding passes)
     * @param loop    the shared training and evaluation loops
     */
    HeadOnlyBaseline(BertWeights weights, ProgressBars bars, TrainLoop loop) {
        this.weights = weights;
        this.bars = bars;
        this.loop = loop;
    }

    /** Trains the classifier on {@code train}, evaluates dev (and test) and saves the classifier into {@code outDir}. */
    synchronized RunResult run(FineTuneSettings s, ClassPrior prior, EncodedSplit train, EncodedSplit dev, EncodedSplit test,
                  Path outDir) throws IOException {
        Stopwatch training = Stopwatch.start();  // embedding the training sentences counts as training
        INDArray trainX = embed("embed train", train, s.maxLength());
        MultiLayerNetwork head = buildHead(s);
        TrainLoop.Trace trace = loop.train(s, train, batch -> {
            head.fit(new DataSet(trainX.getRows(batch.indices()), batch.labels(), null, prior.labelMask(batch.labels())));
            return head.score();
        });
        prior.correct(head.getLayer(0));
        double trainSeconds = training.wallSeconds();
        double trainCpu = training.cpuSeconds();

        Stopwatch evaluation = Stopwatch.start();
        INDArray devX = embed("embed dev", dev, s.maxLength());
        BinaryConfusion devC = loop.evaluate("dev", dev, b -> head.output(devX.getRows(b.indices()), false));
        BinaryConfusion testC = null;
        if (s.evaluateTest()) {
            INDArray testX = embed("embed test", test, s.maxLength());
            testC = loop.evaluate("test", test, b -> head.output(testX.getRows(b.indices()), false));
        }
        double evalSeconds = evaluation.wallSeconds();

        Path file = outDir.resolve(FineTuneRunner.HEAD_FILE);
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        tensors.put(FineTuneSettings.HEAD + ".W", head.getLayer(0).getParam("W"));
        tensors.put(FineTuneSettings.HEAD + ".b", head.getLayer(0).getParam("b"));
        AtomicFiles.write(file, SafeTensors.toBytes(tensors, Map.of("format", "prilora-head-only",
                "encoder", FineTuneRunner.MODEL_RESOURCE, "pooling", "mean over real tokens")));
        long headParams = head.numParams();
        return new RunResult(s, null, train.size(), AcceptabilityData.countAcceptable(train.examples()), dev.size(),
                s.evaluateTest() ? test.size() : 0, devC, testC, headParams, frozenEncoderParams() + headParams,
                FineTuneRunner.HEAD_FILE, Files.size(file), trace.losses().length, trainSeconds, trainCpu, evalSeconds,
                trace.losses(), trace.seconds(), List.of(), 0, prior.describe(), null);
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
            String key = key(maxLength, split, i);
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
                for (int[] b : LengthBatcher.evaluationBatches(subLengths, TrainLoop.EVAL_BATCH)) {
                    int[] idx = new int[b.length];
                    for (int k = 0; k < b.length; k++) {
                        idx[k] = sub[b[k]];
                    }
                    LengthBatcher.PaddedBatch pb = LengthBatcher.pad(split.tokenIds(), null, idx);
                    INDArray pooled = enc.feedForward(pb.features(), pb.mask(), null).get(poolIndex);
                    for (int k = 0; k < idx.length; k++) {
                        embeddings.put(key(maxLength, split, idx[k]), pooled.getRow(k).toFloatVector());
                    }
                    bar.stepBy(idx.length);
                    bar.setExtraMessage(ProgressBars.extra("T=" + pb.paddedLength()));
                }
            }
        }
        float[][] rows = new float[split.size()][];
        for (int i = 0; i < split.size(); i++) {
            rows[i] = embeddings.get(key(maxLength, split, i));
        }
        return Nd4j.createFromArray(rows);
    }

    private static String key(int maxLength, EncodedSplit split, int i) {
        return maxLength + "\u0000" + split.examples().get(i).sentence();
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
}
