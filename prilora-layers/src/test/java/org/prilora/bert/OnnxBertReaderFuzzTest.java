package org.prilora.bert;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.FuzzSeeds;
import org.prilora.testing.FuzzContract;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Coverage-guided fuzzing of the ONNX BERT reader ({@link OnnxBertReader#read(java.io.InputStream)}), starting from
 * small valid models ({@link TinyBertOnnx}, one per weight layout, and a quantized one). Any bytes must give weights
 * whose every tensor has the shape its config implies, or the documented exceptions: an {@link IOException} for
 * bytes that are not a protobuf message, an {@link IllegalArgumentException} with a message for a model that is not
 * a readable BERT encoder; never another exception, an error or a hang. Without {@code JAZZER_FUZZ} this replays the
 * committed inputs under {@code src/test/resources/org/prilora/bert/OnnxBertReaderFuzzTestInputs/read/}.
 */
class OnnxBertReaderFuzzTest {

    static final int MAX_INPUT_BYTES = 1 << 16;

    @BeforeAll
    static void loadNd4j() {
        Nd4j.create(1); // the backend loads once here, not inside the first timed input
    }

    // tokens and names the reader looks for, which byte mutations alone would hardly hit
    @DictionaryEntries({"Softmax", "Sqrt", "Add", "Div", "Mul", "MatMul", "Gemm", "Transpose", "Constant",
            "ReduceMean", "LayerNormalization", "epsilon", "transB", "value", "value_float", "DequantizeLinear",
            "MatMulInteger", "QLinearMatMul", "embeddings.word_embeddings.weight", "embeddings.LayerNorm.bias",
            "encoder.layer.0.", "encoder.layer.1.", "encoder.layer.2147483647.", "attention.self.query",
            "intermediate.dense", ".weight", ".bias", "bert.", "onnx::MatMul_"})
    @FuzzTest(maxDuration = "5m")
    // per input: libFuzzer reports a hang as a timeout finding; in replay it fails even if the reader ignores interrupts
    @Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void read(byte[] data) throws Throwable {
        if (data.length > MAX_INPUT_BYTES) {
            return;
        }
        FuzzContract.Outcome<BertWeights> read = FuzzContract.run(() -> OnnxBertReader.read(new ByteArrayInputStream(data)),
                IOException.class, IllegalArgumentException.class);
        if (!read.rejected()) {
            BertWeights w = read.result();
            Map<String, long[]> expected = OnnxBertReader.expectedShapes(w.config());
            assertThat(w.names()).containsExactlyInAnyOrderElementsOf(expected.keySet());
            expected.forEach((name, shape) -> assertThat(w.get(name).shape()).as(name).isEqualTo(shape));
        }
    }

    /** The committed seeds: the valid ones read, the quantized one is rejected as quantized. */
    @Test
    void seedsRead() throws Exception {
        for (String seed : seeds().keySet()) {
            byte[] bytes = Files.readAllBytes(FuzzSeeds.input(getClass(), "read", seed));
            if (seed.contains("quantized")) {
                assertThatThrownBy(() -> OnnxBertReader.read(new ByteArrayInputStream(bytes)))
                        .hasMessageContaining("quantized models are not supported");
            } else {
                assertThat(OnnxBertReader.read(new ByteArrayInputStream(bytes)).config().numLayers()).as(seed).isEqualTo(1);
            }
        }
    }

    @Test
    @EnabledIfSystemProperty(named = FuzzSeeds.WRITE_PROPERTY, matches = "true")
    void writeSeeds() throws Exception {
        for (Map.Entry<String, byte[]> e : seeds().entrySet()) {
            FuzzSeeds.write(getClass(), "read", e.getKey(), e.getValue());
        }
    }

    /** One-block models in the three weight layouts, one with a task model's prefix, and a quantized one. */
    static Map<String, byte[]> seeds() {
        Map<String, byte[]> m = new LinkedHashMap<>();
        m.put("seed-export.onnx", new TinyBertOnnx(1, TinyBertOnnx.Style.EXPORT, "").build().toByteArray());
        m.put("seed-transpose.onnx", new TinyBertOnnx(1, TinyBertOnnx.Style.TRANSPOSE_NODE, "").build().toByteArray());
        m.put("seed-gemm-prefix.onnx", new TinyBertOnnx(1, TinyBertOnnx.Style.GEMM, "bert.").build().toByteArray());
        m.put("seed-quantized.onnx",
                QuantizedBertOnnx.dynamic(new TinyBertOnnx(1, TinyBertOnnx.Style.EXPORT, "").build()).toByteArray());
        return m;
    }
}
