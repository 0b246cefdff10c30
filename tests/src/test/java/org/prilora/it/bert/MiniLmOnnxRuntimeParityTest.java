package org.prilora.it.bert;

import org.prilora.config.AdapterSettings;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.config.AdapterInit;
import org.prilora.bert.BertConfig;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.BertWeights;
import org.prilora.bert.OnnxBertReader;
import org.prilora.bert.PriLoraBertBlock;
import org.prilora.layers.AdapterModule;
import org.prilora.config.RankSchedule;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The DL4J encoder built from the real all-MiniLM-L6-v2 ONNX file against ONNX Runtime running that same file:
 * {@code last_hidden_state} on every real (unpadded) token within 1e-4, with and without adapters whose B is 0.
 */
class MiniLmOnnxRuntimeParityTest {

    private static final String MODEL = "all-minilm-l6-v2.onnx";
    private static final String TOKENIZER = "all-minilm-l6-v2-tokenizer.json";
    private static final double TOLERANCE = 1e-4;

    /** Sentences of very different lengths, so the batch is heavily padded. */
    private static final List<String> SENTENCES = List.of(
            "Hello world.",
            "The quick brown fox jumps over the lazy dog near the riverbank at dawn.",
            "A",
            "Does a DL4J network, built from layers, reproduce the ONNX export of MiniLM exactly?",
            "She don't like apples.",
            "Transformers use self-attention; recurrent networks process tokens one at a time, which limits parallelism.");

    private static BertWeights weights;
    private static BertTokenizer.Batch batch;
    private static float[][][] reference;
    /** The pretrained encoder without a head and its output on the batch, shared by the tests (building costs seconds). */
    private static MultiLayerNetwork plain;
    private static INDArray plainOut;

    @BeforeAll
    static void loadModelAndRunOnnxRuntime() throws Exception {
        Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
        byte[] bytes;
        try (InputStream in = MiniLmOnnxRuntimeParityTest.class.getClassLoader().getResourceAsStream(MODEL)) {
            assertThat(in).as(MODEL + " on the test classpath").isNotNull();
            bytes = in.readAllBytes();
        }
        weights = OnnxBertReader.read(new ByteArrayInputStream(bytes));
        try (BertTokenizer tok = BertTokenizer.fromClasspath(TOKENIZER, 128, false)) {
            batch = tok.encode(SENTENCES);
        }
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession session = env.createSession(bytes, new OrtSession.SessionOptions());
             OnnxTensor ids = OnnxTensor.createTensor(env, batch.ids());
             OnnxTensor mask = OnnxTensor.createTensor(env, batch.attentionMask());
             OnnxTensor types = OnnxTensor.createTensor(env, batch.tokenTypeIds())) {
            Map<String, OnnxTensor> inputs = new HashMap<>();
            inputs.put("input_ids", ids);
            inputs.put("attention_mask", mask);
            inputs.put("token_type_ids", types);
            try (OrtSession.Result r = session.run(inputs)) {
                reference = (float[][][]) r.get("last_hidden_state").orElseThrow().getValue();
            }
        }
        plain = BertEncoderFactory.builder(weights.config()).build(weights);
        plainOut = run(plain, true);
    }

    @AfterAll
    static void release() {
        weights = null;
        reference = null;
        plain = null;
        plainOut = null;
    }

    /** max |DL4J - ORT| over the real tokens; {@code out} is NCW [mb, 384, T]. */
    private static double maxDiffOnRealTokens(INDArray out) {
        double max = 0;
        float[][][] o = toNwc(out);
        for (int b = 0; b < batch.batchSize(); b++) {
            for (int t = 0; t < batch.realLength(b); t++) {
                for (int h = 0; h < o[b][t].length; h++) {
                    max = Math.max(max, Math.abs(o[b][t][h] - reference[b][t][h]));
                }
            }
        }
        return max;
    }

    private static float[][][] toNwc(INDArray ncw) {
        INDArray nwc = ncw.permute(0, 2, 1).dup('c').castTo(DataType.FLOAT);
        float[][][] r = new float[(int) nwc.size(0)][(int) nwc.size(1)][(int) nwc.size(2)];
        for (int b = 0; b < r.length; b++) {
            for (int t = 0; t < r[b].length; t++) {
                r[b][t] = nwc.get(org.nd4j.linalg.indexing.NDArrayIndex.point(b), org.nd4j.linalg.indexing.NDArrayIndex.point(t),
                        org.nd4j.linalg.indexing.NDArrayIndex.all()).toFloatVector();
            }
        }
        return r;
    }

    private static INDArray run(MultiLayerNetwork net, boolean tokenTypes) {
        return net.output(batch.features(DataType.FLOAT, tokenTypes), false, batch.maskArray(DataType.FLOAT), null);
    }

    @Test
    void configIsDerivedFromTheFile() {
        BertConfig c = weights.config();
        assertThat(c.vocabSize()).isEqualTo(30522);
        assertThat(c.hidden()).isEqualTo(384);
        assertThat(c.numLayers()).isEqualTo(6);
        assertThat(c.numHeads()).isEqualTo(12);
        assertThat(c.intermediate()).isEqualTo(1536);
        assertThat(c.maxPositions()).isEqualTo(512);
        assertThat(c.typeVocabSize()).isEqualTo(2);
        assertThat(c.layerNormEps()).isCloseTo(1e-12, org.assertj.core.data.Offset.offset(1e-18));
        // the export's linear weights are constant-folded initializers, resolved through the graph
        assertThat(weights.sourceOf("encoder.layer.0.attention.self.query.weight")).startsWith("onnx::MatMul_");
        assertThat(batch.length()).isGreaterThan(batch.realLength(2)); // the batch is padded
    }

    @Test
    void lastHiddenStateMatchesOnnxRuntime() {
        MultiLayerNetwork net = plain;
        INDArray out = plainOut;
        assertThat(out.shape()).containsExactly(SENTENCES.size(), 384, batch.length());
        double diff = maxDiffOnRealTokens(out);
        System.out.printf("all-MiniLM-L6-v2 last_hidden_state: max |DL4J - ONNX Runtime| = %.3e over %d sentences, T = %d%n",
                diff, SENTENCES.size(), batch.length());
        assertThat(diff).isLessThanOrEqualTo(TOLERANCE);

        // ids-only input (token types implied 0) is the same network function for single sentences
        MultiLayerNetwork idsOnly = BertEncoderFactory.builder(weights.config()).tokenTypes(false).build(weights);
        assertThat(maxDiffOnRealTokens(run(idsOnly, false))).isLessThanOrEqualTo(TOLERANCE);

        // a sentence alone gives what it gets inside the padded batch
        int longest = 5;
        INDArray alone = net.output(batch.features(DataType.FLOAT, true).get(org.nd4j.linalg.indexing.NDArrayIndex.interval(longest, longest + 1),
                org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.interval(0, batch.realLength(longest))).dup());
        INDArray inBatch = out.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(longest, longest + 1),
                org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.interval(0, batch.realLength(longest)));
        assertThat(alone.sub(inBatch).amaxNumber().doubleValue()).isLessThan(1e-5);
    }

    @Test
    void adaptersWithZeroBLeaveTheOutputUnchangedAndNonZeroBChangesIt() {
        INDArray base = plainOut;
        MultiLayerNetwork adapted = BertEncoderFactory.builder(weights.config()).rankSchedule(RankSchedule.linear(4, 12))
                .adapter(AdapterSettings.builder().init(AdapterInit.GAUSSIAN).build()).seed(99).build(weights);
        for (Layer l : adapted.getLayers()) {
            if (l.conf().getLayer() instanceof PriLoraBertBlock) {
                for (AdapterModule s : ((PriLoraBertBlock) l.conf().getLayer()).adapterModules()) {
                    assertThat(l.getParam(s.aKey()).amaxNumber().doubleValue()).as("A is random").isGreaterThan(0);
                    assertThat(l.getParam(s.bKey()).amaxNumber().doubleValue()).as("B starts at 0").isZero();
                }
            }
        }
        INDArray withAdapters = run(adapted, true);
        assertThat(maxDiffOnRealTokens(withAdapters)).isLessThanOrEqualTo(TOLERANCE);
        assertThat(withAdapters).isEqualTo(base);

        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(5);
        PriLoraBertBlock top = (PriLoraBertBlock) adapted.getLayer(6).conf().getLayer();
        INDArray b = adapted.getLayer(6).getParam(top.adapterModules().get(0).bKey());
        b.assign(Nd4j.randn(b.shape(), rng).castTo(b.dataType()).muli(0.05));
        assertThat(run(adapted, true).sub(base).amaxNumber().doubleValue()).isGreaterThan(1e-3);
    }

    @Test
    void classificationHeadPoolsLikeSentenceTransformers() {
        MultiLayerNetwork net = BertEncoderFactory.builder(weights.config()).classifier(2).build(weights);
        INDArray features = batch.features(DataType.FLOAT, true);
        INDArray mask = batch.maskArray(DataType.FLOAT);
        List<INDArray> acts = net.feedForward(features, mask, null);
        INDArray pooled = acts.get(weights.config().numLayers() + 2);   // after the pooling layer: [mb, 384]
        assertThat(pooled.shape()).containsExactly(SENTENCES.size(), 384);
        double max = 0;
        for (int b = 0; b < batch.batchSize(); b++) {
            int n = batch.realLength(b);
            for (int h = 0; h < 384; h++) {
                double mean = 0;
                for (int t = 0; t < n; t++) {
                    mean += reference[b][t][h];
                }
                max = Math.max(max, Math.abs(pooled.getDouble(b, h) - mean / n));
            }
        }
        assertThat(max).as("masked mean pooling vs mean of ORT's real tokens").isLessThanOrEqualTo(TOLERANCE);
        INDArray probs = net.output(features, false, mask, null);
        assertThat(probs.shape()).containsExactly(SENTENCES.size(), 2);
        assertThat(probs.sum(1).sub(1).amaxNumber().doubleValue()).isLessThan(1e-5);
    }
}
