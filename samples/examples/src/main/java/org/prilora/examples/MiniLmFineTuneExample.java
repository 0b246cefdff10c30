package org.prilora.examples;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.evaluation.classification.Evaluation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.prilora.PriLora;
import org.prilora.PriLoraAdapters;
import org.prilora.PriLoraListener;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.BertWeights;
import org.prilora.bert.OnnxBertReader;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;
import org.prilora.samples.data.AcceptabilityData;
import org.prilora.samples.data.AcceptabilityExample;
import org.prilora.samples.data.AcceptabilitySampling;
import org.prilora.samples.data.LanguageToolAcceptability;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Random;

/**
 * Fine-tunes all-MiniLM-L6-v2 for grammatical acceptability with PRILoRA, in one file with fixed settings: a
 * class-balanced subset of the LanguageTool acceptability data's train split; the pretrained encoder loaded as a
 * plain DL4J network and converted with {@link PriLora#adapt} (ranks 4 → 12 by depth on all six projections of
 * every block, the classifier trained too); one epoch with the {@link PriLoraListener} collecting input statistics
 * and pruning A; dev and test accuracy and Matthews correlation; the adapter file saved. The main job
 * ({@code AcceptabilityFineTune}) runs the same experiment with options, length-bucketed batches and baselines.
 * Run: {@code mvn -B -q -pl samples/examples initialize exec:exec -Dsample.main=org.prilora.examples.MiniLmFineTuneExample}.
 */
public final class MiniLmFineTuneExample {

    static final long SEED = 1;
    static final int TRAIN_SENTENCES = 3200;   // half acceptable, half not: 100 steps of 32
    static final int BATCH = 32;
    static final int MAX_TOKENS = 64;          // longer sentences are truncated
    static final Path OUT = Path.of("finetune-output", "minilm-example");

    private MiniLmFineTuneExample() {
    }

    /**
     * Trains, evaluates and saves the adapter.
     *
     * @param args none
     * @throws IOException if the model cannot be read or the adapter cannot be written
     */
    public static void main(String[] args) throws IOException {
        Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
        Nd4j.getRandom().setSeed(SEED);
        AcceptabilityData data = LanguageToolAcceptability.load();
        List<AcceptabilityExample> train = new ArrayList<>(AcceptabilitySampling.balanced(data.train(), TRAIN_SENTENCES, SEED));
        Collections.shuffle(train, new Random(SEED));   // the sample keeps file order, which groups rules

        BertWeights weights;
        try (InputStream in = MiniLmFineTuneExample.class.getResourceAsStream("/all-minilm-l6-v2.onnx")) {
            weights = OnnxBertReader.read(in);   // the ONNX file inside the langchain4j jar
        }
        MultiLayerNetwork pretrained = BertEncoderFactory.builder(weights.config())
                .plain().seed(SEED).updater(new Adam(1e-3)).classifier(2).build(weights);
        PriLoraConfig cfg = PriLoraConfig.builder()
                .rankSchedule(RankSchedule.linear(4, 12)).alpha(16)
                .pruning(PruningSchedule.builder().fraction(0.1).interval(10).startStep(10).emaBeta(0.99).build())
                .seed(SEED)
                .modulesToSave(BertEncoderFactory.CLASSIFIER_NAME)   // the new head trains fully
                .build();
        MultiLayerNetwork net = PriLora.adapt(pretrained, cfg);       // frozen encoder + adapters with B = 0
        PriLoraListener listener = new PriLoraListener(cfg.pruning());
        net.setListeners(listener);
        var before = PriLora.summary(net);
        System.out.printf("%,d training sentences; trainable params %,d of %,d (%.2f%%)%n", train.size(),
                before.trainableParams(), before.totalParams(), before.trainablePercent());

        try (BertTokenizer tokenizer = BertTokenizer.fromClasspath("all-minilm-l6-v2-tokenizer.json", MAX_TOKENS, false)) {
            int steps = (train.size() + BATCH - 1) / BATCH;
            for (int step = 1; step <= steps; step++) {
                net.fit(batch(tokenizer, train.subList((step - 1) * BATCH, Math.min(step * BATCH, train.size()))));
                if (step % 10 == 0 || step == steps) {
                    System.out.printf("step %3d/%d  loss %.4f%n", step, steps, net.score());
                }
            }
            evaluate(net, tokenizer, "dev", data.dev());
            evaluate(net, tokenizer, "test", data.test());
        }
        System.out.println("pruning steps: " + listener.getPruningStepsDone());
        System.out.println(PriLora.summary(net));   // rank and final A sparsity per projection

        Files.createDirectories(OUT);
        Path adapter = OUT.resolve("adapter.prilora");
        PriLoraAdapters.save(net, adapter, cfg);   // A, B, statistics and the head; the encoder stays in the ONNX file
        System.out.printf("adapter saved: %s (%,d bytes)%n", adapter.toAbsolutePath(), Files.size(adapter));
    }

    /** Token ids {@code [mb, 2, T]} (ids, token types), attention mask {@code [mb, T]} and one-hot labels. */
    static DataSet batch(BertTokenizer tokenizer, List<AcceptabilityExample> examples) {
        BertTokenizer.Batch b = tokenizer.encode(examples.stream().map(AcceptabilityExample::sentence).toList());
        INDArray labels = Nd4j.zeros(DataType.FLOAT, examples.size(), 2);
        for (int i = 0; i < examples.size(); i++) {
            labels.putScalar(i, examples.get(i).label(), 1.0);
        }
        return new DataSet(b.features(DataType.FLOAT, true), labels, b.maskArray(DataType.FLOAT), null);
    }

    /** Prints accuracy and MCC (the metric: the split is 74 % acceptable) of a split. */
    static void evaluate(MultiLayerNetwork net, BertTokenizer tokenizer, String name, List<AcceptabilityExample> split) {
        // sentences of similar length in one batch: less padding to compute
        List<AcceptabilityExample> byLength = split.stream()
                .sorted(Comparator.comparingInt(e -> e.sentence().length())).toList();
        Evaluation eval = new Evaluation(2);
        for (int from = 0; from < byLength.size(); from += 2 * BATCH) {
            DataSet ds = batch(tokenizer, byLength.subList(from, Math.min(from + 2 * BATCH, byLength.size())));
            eval.eval(ds.getLabels(), net.output(ds.getFeatures(), false, ds.getFeaturesMaskArray(), null));
        }
        System.out.printf("%s: accuracy %.4f, MCC %.4f (%,d sentences)%n", name, eval.accuracy(),
                eval.matthewsCorrelation(1), split.size());
    }
}
