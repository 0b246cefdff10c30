package org.prilora.examples;

import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.dataset.adapter.SingletonDataSetIterator;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.prilora.PriLora;
import org.prilora.PriLoraAdapters;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertWeights;
import org.prilora.bert.OnnxBertReader;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * PEFT's workflow on a DL4J network: a "pretrained" MLP (trained here on the spirals task) is adapted with
 * {@link PriLora#adapt}, fine-tuned, its adapters saved (a small file), loaded back into a fresh copy of the base,
 * and merged into a plain network; then {@link PriLora#summary} of the real all-MiniLM-L6-v2 with PRILoRA 4 → 12.
 * Run: {@code mvn -B -q -pl samples/examples initialize exec:exec -Dsample.main=org.prilora.examples.AdaptMergeSample}.
 */
public final class AdaptMergeSample {
    private AdaptMergeSample() {
    }

    /**
     * Runs the workflow and prints accuracies, the adapter file size and the summaries.
     *
     * @param args none
     * @throws Exception if a file cannot be written or read
     */
    public static void main(String[] args) throws Exception {
        MultiLayerNetwork pretrained = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(1).dataType(DataType.FLOAT)
                .updater(new Adam(1e-2)).list()
                .layer(new DenseLayer.Builder().name("fc1").nIn(2).nOut(64).activation(Activation.TANH).build())
                .layer(new DenseLayer.Builder().name("fc2").nIn(64).nOut(64).activation(Activation.TANH).build())
                .layer(new DenseLayer.Builder().name("fc3").nIn(64).nOut(64).activation(Activation.TANH).build())
                .layer(new OutputLayer.Builder().name("head").nIn(64).nOut(2).activation(Activation.SOFTMAX)
                        .lossFunction(LossFunctions.LossFunction.MCXENT).build()).build());
        pretrained.init();
        DataSet train = Spirals.generate(2000, 1);
        DataSet test = Spirals.generate(1000, 2);
        for (int e = 0; e < 2; e++) {
            for (DataSet b : train.batchBy(100)) {
                pretrained.fit(b);
            }
        }
        System.out.printf("pretrained: test accuracy %.3f%n", pretrained.evaluate(new SingletonDataSetIterator(test)).accuracy());

        // --- the workflow shown in README.md ---
        PriLoraConfig cfg = PriLoraConfig.builder().rankSchedule(RankSchedule.linear(2, 8)).alpha(16)
                .modulesToSave("head").pruning(PruningSchedule.builder().fraction(0.25).interval(20).build()).build();
        MultiLayerNetwork adapted = PriLora.adapt(pretrained, cfg);       // same outputs as `pretrained` (B = 0)
        adapted.setListeners(PriLora.listener(cfg));
        for (int e = 0; e < 20; e++) {
            for (DataSet b : train.batchBy(100)) {
                adapted.fit(b);
            }
        }
        Path dir = Files.createTempDirectory("prilora-sample");
        PriLoraAdapters.save(adapted, dir.resolve("adapter.prilora"), cfg);
        MultiLayerNetwork reloaded = PriLoraAdapters.load(pretrained, dir.resolve("adapter.prilora"));
        MultiLayerNetwork merged = PriLora.merge(reloaded);               // plain DenseLayers again
        // ---

        var it = new SingletonDataSetIterator(test);
        System.out.printf("adapted: test accuracy %.3f; reloaded %.3f; merged %.3f%n", adapted.evaluate(it).accuracy(),
                reloaded.evaluate(it).accuracy(), merged.evaluate(it).accuracy());
        System.out.printf("adapter file %,d bytes%n", Files.size(dir.resolve("adapter.prilora")));
        System.out.println(PriLora.summary(adapted));

        BertWeights w = OnnxBertReader.read(AdaptMergeSample.class.getResourceAsStream("/all-minilm-l6-v2.onnx"));
        MultiLayerNetwork minilm = BertEncoderFactory.builder(w.config()).rankSchedule(RankSchedule.linear(4, 12)).classifier(2).build(w);
        System.out.println("all-MiniLM-L6-v2 with PRILoRA 4 -> 12 on all six projections:");
        System.out.println(PriLora.summary(minilm));
    }
}
