package org.prilora.examples;

import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.RNNFormat;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.RnnOutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.impl.LossMCXENT;
import org.prilora.PriLora;
import org.prilora.PriLoraListener;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertHead;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.BertWeights;
import org.prilora.bert.OnnxBertReader;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;
import org.prilora.heads.SpanMetrics;
import org.prilora.heads.SubWordLabels;
import org.prilora.heads.TokenLabels;
import org.prilora.samples.data.ErrorDetectionExample;
import org.prilora.samples.data.LanguageToolErrorDetection;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.function.Function;

/**
 * Grammatical error detection, a token task: all-MiniLM-L6-v2 with a token-classification head, fine-tuned with
 * PRILoRA to tag every word "ok" (0) or "error" (1), the errors being LanguageTool's {@code <marker>} spans
 * ({@link LanguageToolErrorDetection}: wrong sentences and their corrected partners, a pair always in one split).
 * Labels sit on each word's first piece ({@link SubWordLabels#FIRST_PIECE}); padding and special tokens are masked out
 * of the loss. Reports word-level and span-level precision, recall and F1 of "error" on dev and test, next to the
 * majority baseline (every word "ok": F1 0) and a head-only baseline (the same head on the frozen encoder, trained on
 * the same batches). Run:
 * {@code mvn -B -q -pl samples/examples initialize exec:exec -Dsample.main=org.prilora.examples.ErrorDetectionSample}.
 */
public final class ErrorDetectionSample {

    static final long SEED = 1;
    static final int TRAIN_SENTENCES = 2400;   // 150 steps of 16
    static final int BATCH = 16;
    static final int MAX_TOKENS = 48;
    static final double ERROR_WEIGHT = 3.0;    // errors are about a tenth of the words
    static final int OK = 0;
    static final int ERROR = 1;

    private ErrorDetectionSample() {
    }

    /**
     * Trains, evaluates and prints the comparison.
     *
     * @param args none
     * @throws IOException if the model cannot be read
     */
    public static void main(String[] args) throws IOException {
        long t0 = System.nanoTime();
        Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
        Nd4j.getRandom().setSeed(SEED);
        LanguageToolErrorDetection.Data data = LanguageToolErrorDetection.load();
        List<ErrorDetectionExample> train = new ArrayList<>(data.train());
        Collections.shuffle(train, new Random(SEED));
        train = train.subList(0, Math.min(TRAIN_SENTENCES, train.size()));
        System.out.printf("error detection: train %,d of %,d sentences, dev %,d, test %,d%n", train.size(), data.train().size(),
                data.dev().size(), data.test().size());

        BertWeights weights;
        try (InputStream in = ErrorDetectionSample.class.getResourceAsStream("/all-minilm-l6-v2.onnx")) {
            weights = OnnxBertReader.read(in);
        }
        MultiLayerNetwork pretrained = BertEncoderFactory.builder(weights.config()).plain().seed(SEED).updater(new Adam(1e-3))
                .head(BertHead.tokenClassification(1.0, ERROR_WEIGHT)).build(weights);
        PriLoraConfig cfg = PriLoraConfig.builder().rankSchedule(RankSchedule.linear(4, 12)).alpha(16)
                .pruning(PruningSchedule.builder().fraction(0.1).interval(10).startStep(10).emaBeta(0.99).build())
                .seed(SEED).modulesToSave(BertEncoderFactory.CLASSIFIER_NAME).build();
        MultiLayerNetwork net = PriLora.adapt(pretrained, cfg);
        net.setListeners(new PriLoraListener(cfg.pruning()));
        MultiLayerNetwork encoder = BertEncoderFactory.builder(weights.config()).plain().build(weights);   // frozen, for head-only
        MultiLayerNetwork headOnly = headOnly(weights.config().hidden());

        try (BertTokenizer tok = BertTokenizer.fromClasspath("all-minilm-l6-v2-tokenizer.json", MAX_TOKENS, false)) {
            int steps = train.size() / BATCH;
            for (int s = 0; s < steps; s++) {
                Batch b = batch(tok, train.subList(s * BATCH, (s + 1) * BATCH));
                net.fit(b.ds);
                INDArray hidden = encoder.output(b.ds.getFeatures(), false, b.ds.getFeaturesMaskArray(), null);
                headOnly.fit(new DataSet(hidden, b.ds.getLabels(), b.ds.getFeaturesMaskArray(), b.ds.getLabelsMaskArray()));
                if ((s + 1) % 25 == 0 || s + 1 == steps) {
                    System.out.printf("step %3d/%d  loss %.4f (head-only %.4f)%n", s + 1, steps, net.score(), headOnly.score());
                }
            }
            System.out.printf("trained in %.0f s%n", (System.nanoTime() - t0) / 1e9);
            for (String split : List.of("dev", "test")) {
                List<ErrorDetectionExample> ex = split.equals("dev") ? data.dev() : data.test();
                SpanMetrics prilora = SpanMetrics.simple(OK);
                SpanMetrics head = SpanMetrics.simple(OK);
                SpanMetrics majority = SpanMetrics.simple(OK);
                evaluate(tok, ex, b -> net.output(b.ds.getFeatures(), false, b.ds.getFeaturesMaskArray(), null), prilora, majority);
                evaluate(tok, ex, b -> headOnly.output(encoder.output(b.ds.getFeatures(), false, b.ds.getFeaturesMaskArray(), null),
                        false, b.ds.getFeaturesMaskArray(), null), head, null);
                System.out.printf("%s (%,d sentences, %,d words):%n", split, ex.size(), prilora.words());
                print("majority (every word ok)", majority);
                print("head-only (frozen encoder)", head);
                print("PRILoRA 4 -> 12", prilora);
            }
        }
        System.out.printf("total %.0f s%n", (System.nanoTime() - t0) / 1e9);
    }

    private static void print(String name, SpanMetrics m) {
        System.out.printf("  %-28s words: P %.3f R %.3f F1 %.3f, accuracy %.4f | spans: P %.3f R %.3f F1 %.3f%n", name,
                m.tokens().precision(), m.tokens().recall(), m.tokens().f1(), m.wordAccuracy(),
                m.spans().precision(), m.spans().recall(), m.spans().f1());
    }

    /** The head-only baseline: the same token head as its own network, on the frozen encoder's output. */
    static MultiLayerNetwork headOnly(int hidden) {
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder().seed(SEED).updater(new Adam(3e-3)).list()
                .layer(new RnnOutputLayer.Builder(new LossMCXENT(Nd4j.createFromArray(new float[][]{{1f, (float) ERROR_WEIGHT}})))
                        .activation(Activation.SOFTMAX).dataFormat(RNNFormat.NCW).nOut(2).build())
                .setInputType(InputType.recurrent(hidden, RNNFormat.NCW)).build();
        MultiLayerNetwork n = new MultiLayerNetwork(conf);
        n.init();
        return n;
    }

    /** A tokenized batch with its word labels. */
    record Batch(DataSet ds, BertTokenizer.Batch tokens, List<int[]> wordLabels) {
    }

    static Batch batch(BertTokenizer tok, List<ErrorDetectionExample> examples) {
        BertTokenizer.Batch b = tok.encode(examples.stream().map(ErrorDetectionExample::sentence).toList());
        List<int[]> words = new ArrayList<>();
        for (int i = 0; i < examples.size(); i++) {
            ErrorDetectionExample e = examples.get(i);
            // the tokenizer's offsets count code points; the example's span counts UTF-16 units
            List<int[]> spans = e.hasError() ? List.of(new int[]{e.sentence().codePointCount(0, e.errorStart()),
                    e.sentence().codePointCount(0, e.errorEnd())}) : List.of();
            words.add(TokenLabels.wordsInSpans(b, i, spans, ERROR, OK));
        }
        TokenLabels y = TokenLabels.fromWordLabels(b, words, 2, SubWordLabels.FIRST_PIECE);
        return new Batch(new DataSet(b.features(DataType.FLOAT, true), y.labels(), b.maskArray(DataType.FLOAT), y.mask()), b, words);
    }

    /** Word predictions of a split against its labels; {@code majority} (if given) gets the every-word-ok baseline. */
    static void evaluate(BertTokenizer tok, List<ErrorDetectionExample> split, Function<Batch, INDArray> model,
                         SpanMetrics metrics, SpanMetrics majority) {
        List<ErrorDetectionExample> byLength = split.stream().sorted(Comparator.comparingInt(e -> e.sentence().length())).toList();
        for (int from = 0; from < byLength.size(); from += 4 * BATCH) {
            Batch b = batch(tok, byLength.subList(from, Math.min(from + 4 * BATCH, byLength.size())));
            List<int[]> predicted = TokenLabels.wordPredictions(b.tokens, model.apply(b));
            for (int i = 0; i < predicted.size(); i++) {
                int[] gold = b.wordLabels.get(i);   // the words within MAX_TOKENS (a longer sentence is cut)
                metrics.add(gold, predicted.get(i));
                if (majority != null) {
                    majority.add(gold, SpanMetrics.allOutside(gold.length, OK));
                }
            }
        }
    }
}
