package org.prilora.it.bert;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.prilora.PriLora;
import org.prilora.PriLoraSummary;
import org.prilora.bert.BertConfig;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertPooling;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.BertWeights;
import org.prilora.bert.OnnxBertReader;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;
import org.prilora.heads.SentenceLabels;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * bge-small-en-v1.5 (12 blocks; langchain4j's Maven artifact) through the same API as MiniLM: read, CLS pooling
 * (how bge embeds) equal to ONNX Runtime's first token, adapted with PRILoRA 4 → 12 over 72 projections, and a few
 * training steps on sentence pairs at a tiny batch.
 */
class BgeSmallFineTuneTest {

    private static final List<String> A = List.of("A man plays a guitar.", "The sky is blue.", "She reads a book.", "Cats sleep a lot.");
    private static final List<String> B = List.of("Someone plays music.", "I ate soup.", "A woman is reading.", "The train is late.");
    private static final int[] SAME = {1, 0, 1, 0};

    @Test
    void loadsMatchesOnnxRuntimeOnClsAndFineTunesWithPriLora() throws Exception {
        Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
        byte[] bytes;
        try (InputStream in = getClass().getClassLoader().getResourceAsStream("bge-small-en-v1.5.onnx")) {
            assertThat(in).as("bge-small-en-v1.5.onnx on the test classpath").isNotNull();
            bytes = in.readAllBytes();
        }
        BertWeights w = OnnxBertReader.read(new ByteArrayInputStream(bytes));
        BertConfig c = w.config();
        assertThat(c.numLayers()).isEqualTo(12);
        assertThat(c.hidden()).isEqualTo(384);
        assertThat(c.numHeads()).isEqualTo(12);
        assertThat(w.hasPooler()).isFalse();
        BertTokenizer.Batch batch;
        try (BertTokenizer tok = BertTokenizer.fromClasspath("bge-small-en-v1.5-tokenizer.json", 32, false)) {
            batch = tok.encodePairs(A, B);
        }
        float[][][] reference;
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession session = env.createSession(bytes, new OrtSession.SessionOptions());
             OnnxTensor ids = OnnxTensor.createTensor(env, batch.ids());
             OnnxTensor mask = OnnxTensor.createTensor(env, batch.attentionMask());
             OnnxTensor types = OnnxTensor.createTensor(env, batch.tokenTypeIds())) {
            Map<String, OnnxTensor> in = new HashMap<>(Map.of("input_ids", ids, "attention_mask", mask, "token_type_ids", types));
            try (OrtSession.Result r = session.run(in)) {
                reference = (float[][][]) r.get("last_hidden_state").orElseThrow().getValue();
            }
        }
        bytes = null;

        MultiLayerNetwork base = BertEncoderFactory.builder(c).plain().pooling(BertPooling.CLS).classifier(2).seed(1)
                .updater(new Adam(1e-3)).build(w);
        INDArray features = batch.features(DataType.FLOAT, true);
        INDArray mask = batch.maskArray(DataType.FLOAT);
        INDArray cls = base.feedForward(features, mask, null).get(base.getLayer(BertEncoderFactory.CLS_POOLING_NAME).getIndex() + 1);
        double max = 0;
        for (int b = 0; b < A.size(); b++) {
            for (int h = 0; h < c.hidden(); h++) {
                max = Math.max(max, Math.abs(cls.getDouble(b, h) - reference[b][0][h]));
            }
        }
        System.out.printf("bge-small-en-v1.5 pairs, CLS: max |DL4J - ONNX Runtime| = %.3e%n", max);
        assertThat(max).isLessThanOrEqualTo(1e-4);

        PriLoraConfig cfg = PriLoraConfig.builder().rankSchedule(RankSchedule.linear(4, 12)).alpha(16)
                .pruning(PruningSchedule.builder().fraction(0.1).interval(2).startStep(2).build())
                .modulesToSave(BertEncoderFactory.CLASSIFIER_NAME).seed(1).build();
        MultiLayerNetwork net = PriLora.adapt(base, cfg);
        PriLoraSummary summary = PriLora.summary(net);
        assertThat(summary.toString()).contains("encoder.layer.11.output.dense");
        net.setListeners(PriLora.listener(cfg));
        DataSet ds = new DataSet(features, SentenceLabels.oneHot(SAME, 2, DataType.FLOAT), mask, null);
        double first = Double.NaN;
        for (int step = 0; step < 3; step++) {
            net.fit(ds);
            first = step == 0 ? net.score() : first;
            assertThat(net.score()).isFinite();
        }
        assertThat(net.getLayer(BertEncoderFactory.blockLayerIndex(11)).getParam("oloraB").amaxNumber().doubleValue()).isPositive();
        assertThat(net.getLayer(BertEncoderFactory.blockLayerIndex(0)).getParam("qW")).isEqualTo(base.getLayer(1).getParam("qW"));
    }
}
