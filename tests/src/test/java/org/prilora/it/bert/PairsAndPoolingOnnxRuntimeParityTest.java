package org.prilora.it.bert;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import onnx.Onnx;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.shade.protobuf.ByteString;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertHead;
import org.prilora.bert.BertPooling;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.BertWeights;
import org.prilora.bert.OnnxBertReader;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Sentence pairs and the pooling choices against ONNX Runtime on all-MiniLM-L6-v2: the encoder fed pair encodings
 * (token type ids 1 on the second sentence), the {@code [CLS]} vector, and the checkpoint's pooler. The MiniLM export
 * has no pooler, so the test adds one to the ONNX graph as {@code torch.onnx.export} writes BERT's
 * ({@code Gather} of position 0, {@code MatMul} with a constant-folded {@code onnx::MatMul_*} weight, {@code Add} of
 * {@code pooler.dense.bias}, {@code Tanh}, graph output {@code pooler_output}); ONNX Runtime computes the reference
 * from that graph, the DL4J side reads the weights through {@link OnnxBertReader}.
 */
class PairsAndPoolingOnnxRuntimeParityTest {

    private static final double TOLERANCE = 1e-4;
    private static final int HIDDEN = 384;
    private static final List<String> FIRST = List.of("A man is playing a guitar.", "Is it raining in the city today?",
            "The cat sat.", "Transformers use self-attention; recurrent networks read tokens one at a time, which limits parallelism.");
    private static final List<String> SECOND = List.of("Someone plays an instrument.", "No.",
            "A dog ran across the whole length of the park chasing a red ball that a child had thrown.", "Attention is all you need.");

    private static byte[] original;
    private static BertWeights weights;
    private static BertTokenizer.Batch batch;
    private static float[][][] hidden;
    private static float[][] pooler;

    @BeforeAll
    static void runOnnxRuntime() throws Exception {
        Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
        try (InputStream in = PairsAndPoolingOnnxRuntimeParityTest.class.getClassLoader().getResourceAsStream("all-minilm-l6-v2.onnx")) {
            original = in.readAllBytes();
        }
        byte[] withPooler = withPooler(OnnxBertReader.parse(new ByteArrayInputStream(original))).toByteArray();
        weights = OnnxBertReader.read(new ByteArrayInputStream(withPooler));
        try (BertTokenizer tok = BertTokenizer.fromClasspath("all-minilm-l6-v2-tokenizer.json", 24, false)) {
            batch = tok.encodePairs(FIRST, SECOND);   // pairs 2 and 3 exceed 24 tokens: longest_first truncation
        }
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession session = env.createSession(withPooler, new OrtSession.SessionOptions());
             OnnxTensor ids = OnnxTensor.createTensor(env, batch.ids());
             OnnxTensor mask = OnnxTensor.createTensor(env, batch.attentionMask());
             OnnxTensor types = OnnxTensor.createTensor(env, batch.tokenTypeIds())) {
            Map<String, OnnxTensor> inputs = new HashMap<>();
            inputs.put("input_ids", ids);
            inputs.put("attention_mask", mask);
            inputs.put("token_type_ids", types);
            try (OrtSession.Result r = session.run(inputs)) {
                hidden = (float[][][]) r.get("last_hidden_state").orElseThrow().getValue();
                pooler = (float[][]) r.get("pooler_output").orElseThrow().getValue();
            }
        }
    }

    @AfterAll
    static void release() {
        original = null;
        weights = null;
        hidden = null;
        pooler = null;
    }

    /** BERT's pooler appended to the graph, with seeded random weights (std 0.05). */
    private static Onnx.ModelProto withPooler(Onnx.ModelProto m) {
        Random r = new Random(7);
        Onnx.GraphProto.Builder g = m.getGraph().toBuilder();
        g.addInitializer(floats("onnx::MatMul_9001", r, HIDDEN, HIDDEN));
        g.addInitializer(floats("pooler.dense.bias", r, HIDDEN));
        g.addInitializer(Onnx.TensorProto.newBuilder().setName("/pooler/Constant_output_0")
                .setDataType(Onnx.TensorProto.DataType.INT64.getNumber())
                .setRawData(ByteString.copyFrom(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0).array())));
        g.addNode(node("Gather", "/pooler/Gather", List.of("last_hidden_state", "/pooler/Constant_output_0"), "/pooler/Gather_output_0")
                .addAttribute(Onnx.AttributeProto.newBuilder().setName("axis").setI(1).setType(Onnx.AttributeProto.AttributeType.INT)));
        g.addNode(node("MatMul", "/pooler/dense/MatMul", List.of("/pooler/Gather_output_0", "onnx::MatMul_9001"), "/pooler/dense/MatMul_output_0"));
        g.addNode(node("Add", "/pooler/dense/Add", List.of("pooler.dense.bias", "/pooler/dense/MatMul_output_0"), "/pooler/dense/Add_output_0"));
        g.addNode(node("Tanh", "/pooler/activation/Tanh", List.of("/pooler/dense/Add_output_0"), "pooler_output"));
        g.addOutput(Onnx.ValueInfoProto.newBuilder().setName("pooler_output").setType(Onnx.TypeProto.newBuilder()
                .setTensorType(Onnx.TypeProto.Tensor.newBuilder().setElemType(Onnx.TensorProto.DataType.FLOAT.getNumber()))));
        return m.toBuilder().setGraph(g).build();
    }

    private static Onnx.NodeProto.Builder node(String op, String name, List<String> inputs, String output) {
        return Onnx.NodeProto.newBuilder().setOpType(op).setName(name).addAllInput(inputs).addOutput(output);
    }

    private static Onnx.TensorProto floats(String name, Random r, long... dims) {
        int n = 1;
        Onnx.TensorProto.Builder t = Onnx.TensorProto.newBuilder().setName(name).setDataType(Onnx.TensorProto.DataType.FLOAT.getNumber());
        for (long d : dims) {
            n *= (int) d;
            t.addDims(d);
        }
        ByteBuffer b = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            b.putFloat((float) (0.05 * r.nextGaussian()));
        }
        return t.setRawData(ByteString.copyFrom(b.array())).build();
    }

    private static INDArray run(MultiLayerNetwork net) {
        return net.output(batch.features(DataType.FLOAT, true), false, batch.maskArray(DataType.FLOAT), null);
    }

    @Test
    void pairEncodingsMatchOnnxRuntimeOnEveryRealToken() {
        long ones = java.util.Arrays.stream(batch.tokenTypeIds()).flatMapToLong(java.util.Arrays::stream).filter(v -> v == 1).count();
        assertThat(ones).as("second-sentence tokens").isGreaterThan(20);
        assertThat(batch.realLength(2)).isEqualTo(24);   // truncated
        INDArray out = run(BertEncoderFactory.builder(weights.config()).build(weights)).permute(0, 2, 1).dup('c');
        double max = 0;
        for (int b = 0; b < batch.batchSize(); b++) {
            for (int t = 0; t < batch.realLength(b); t++) {
                for (int h = 0; h < HIDDEN; h++) {
                    max = Math.max(max, Math.abs(out.getDouble(b, t, h) - hidden[b][t][h]));
                }
            }
        }
        System.out.printf("MiniLM sentence pairs: max |DL4J - ONNX Runtime| last_hidden_state = %.3e%n", max);
        assertThat(max).isLessThanOrEqualTo(TOLERANCE);
    }

    @Test
    void clsPoolingIsTheFirstTokenOfOnnxRuntimesOutput() {
        INDArray cls = run(BertEncoderFactory.builder(weights.config()).pooling(BertPooling.CLS).build(weights));
        assertThat(cls.shape()).containsExactly(FIRST.size(), HIDDEN);
        double max = 0;
        for (int b = 0; b < FIRST.size(); b++) {
            for (int h = 0; h < HIDDEN; h++) {
                max = Math.max(max, Math.abs(cls.getDouble(b, h) - hidden[b][0][h]));
            }
        }
        assertThat(max).isLessThanOrEqualTo(TOLERANCE);
    }

    @Test
    void clsPoolerMatchesOnnxRuntimesPoolerOutput() {
        assertThat(weights.hasPooler()).isTrue();
        assertThat(weights.sourceOf("pooler.dense.weight")).isEqualTo("onnx::MatMul_9001");
        INDArray pooled = run(BertEncoderFactory.builder(weights.config()).pooling(BertPooling.CLS_POOLER).build(weights));
        double max = 0;
        for (int b = 0; b < FIRST.size(); b++) {
            for (int h = 0; h < HIDDEN; h++) {
                max = Math.max(max, Math.abs(pooled.getDouble(b, h) - pooler[b][h]));
            }
        }
        System.out.printf("MiniLM + pooler: max |DL4J - ONNX Runtime| pooler_output = %.3e%n", max);
        assertThat(max).isLessThanOrEqualTo(TOLERANCE);
        // and the classification head sits on exactly that vector
        MultiLayerNetwork clf = BertEncoderFactory.builder(weights.config()).pooling(BertPooling.CLS_POOLER).head(BertHead.sequenceClassification(3)).build(weights);
        INDArray fromHead = clf.feedForward(batch.features(DataType.FLOAT, true), batch.maskArray(DataType.FLOAT), null)
                .get(clf.getLayer(BertEncoderFactory.POOLER_NAME).getIndex() + 1);
        assertThat(fromHead.sub(pooled).amaxNumber().doubleValue()).isLessThan(1e-6);
    }

    @Test
    void theRealExportHasNoPoolerAndSaysSo() throws Exception {
        BertWeights plain = OnnxBertReader.read(new ByteArrayInputStream(original));
        assertThat(plain.hasPooler()).isFalse();
        assertThatThrownBy(() -> BertEncoderFactory.builder(plain.config()).pooling(BertPooling.CLS_POOLER).classifier(2).build(plain))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("the checkpoint has no pooler");
    }
}
