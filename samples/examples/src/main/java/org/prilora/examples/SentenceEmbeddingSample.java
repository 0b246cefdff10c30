package org.prilora.examples;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.BertWeights;
import org.prilora.bert.OnnxBertReader;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Embeds a few sentences with all-MiniLM-L6-v2 running as a DL4J network (loaded from the ONNX file's weights),
 * and with ONNX Runtime on the same file, and prints both cosine-similarity matrices (sentence-transformers'
 * mean pooling over real tokens, L2-normalised) and their largest difference.
 * Run: {@code mvn -B -q -pl samples/examples initialize exec:exec -Dsample.main=org.prilora.examples.SentenceEmbeddingSample}.
 */
public final class SentenceEmbeddingSample {
    static final List<String> SENTENCES = List.of(
            "The cat sits on the mat.",
            "A kitten is resting on a rug.",
            "Stock markets fell sharply on Monday.",
            "Shares dropped steeply at the start of the week.",
            "I would like a cup of coffee.");

    private SentenceEmbeddingSample() {
    }

    /**
     * Prints both similarity matrices and their largest difference.
     *
     * @param args none
     * @throws Exception if the model cannot be read or ONNX Runtime fails
     */
    public static void main(String[] args) throws Exception {
        Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
        byte[] model;
        try (InputStream in = SentenceEmbeddingSample.class.getResourceAsStream("/all-minilm-l6-v2.onnx")) {
            model = in.readAllBytes();
        }
        BertWeights weights = OnnxBertReader.read(new ByteArrayInputStream(model));
        MultiLayerNetwork encoder = BertEncoderFactory.builder(weights.config()).noHead().build(weights);
        BertTokenizer.Batch batch;
        try (BertTokenizer tok = BertTokenizer.fromClasspath("all-minilm-l6-v2-tokenizer.json", 128, false)) {
            batch = tok.encode(SENTENCES);
        }
        INDArray mask = batch.maskArray(DataType.FLOAT);
        INDArray hidden = encoder.output(batch.features(DataType.FLOAT, true), false, mask, null); // NCW [mb, 384, T]
        INDArray dl4j = normalize(meanPool(hidden, mask));

        float[][][] ort;
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession session = env.createSession(model, new OrtSession.SessionOptions());
             OnnxTensor ids = OnnxTensor.createTensor(env, batch.ids());
             OnnxTensor am = OnnxTensor.createTensor(env, batch.attentionMask());
             OnnxTensor types = OnnxTensor.createTensor(env, batch.tokenTypeIds())) {
            Map<String, OnnxTensor> in = new HashMap<>();
            in.put("input_ids", ids);
            in.put("attention_mask", am);
            in.put("token_type_ids", types);
            try (OrtSession.Result r = session.run(in)) {
                ort = (float[][][]) r.get("last_hidden_state").orElseThrow().getValue();   // [mb, T, 384]
            }
        }
        INDArray ortHidden = Nd4j.create(ort).permute(0, 2, 1).castTo(DataType.FLOAT);
        INDArray reference = normalize(meanPool(ortHidden, mask));

        INDArray simDl4j = dl4j.mmul(dl4j.transpose());
        INDArray simOrt = reference.mmul(reference.transpose());
        print("cosine similarity, DL4J", simDl4j);
        print("cosine similarity, ONNX Runtime", simOrt);
        System.out.printf("max |DL4J - ONNX Runtime| over the similarity matrix: %.2e%n",
                simDl4j.sub(simOrt).amaxNumber().doubleValue());
    }

    /** Mean over real tokens: {@code hidden} NCW [mb, H, T], mask [mb, T]. */
    static INDArray meanPool(INDArray hidden, INDArray mask) {
        INDArray m = mask.reshape(mask.size(0), 1, mask.size(1));
        INDArray sum = hidden.mul(m.broadcast(hidden.shape())).sum(2);
        return sum.diviColumnVector(mask.sum(true, 1));
    }

    static INDArray normalize(INDArray v) {
        return v.diviColumnVector(v.norm2(true, 1));
    }

    private static void print(String title, INDArray sim) {
        System.out.println(title + ":");
        for (int i = 0; i < sim.rows(); i++) {
            StringBuilder sb = new StringBuilder(String.format("  %-50s", SENTENCES.get(i)));
            for (int j = 0; j < sim.columns(); j++) {
                sb.append(String.format(" %6.3f", sim.getDouble(i, j)));
            }
            System.out.println(sb);
        }
    }
}
