package org.prilora.bert;

import onnx.Onnx;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.shade.protobuf.ByteString;

import java.io.ByteArrayInputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@link OnnxBertReader} and {@link BertNaming#resolveOnnx} on small synthetic graphs laid out like real exports. */
class OnnxBertReaderTest {

    private static void assertWeightsMatch(TinyBertOnnx tiny, BertWeights w) {
        assertThat(w.names()).containsExactlyInAnyOrderElementsOf(tiny.expected.keySet());
        for (Map.Entry<String, float[][]> e : tiny.expected.entrySet()) {
            INDArray want = Nd4j.createFromArray(e.getValue());
            INDArray got = w.get(e.getKey());
            assertThat(got.reshape(want.shape())).as(e.getKey()).isEqualTo(want);
        }
    }

    @ParameterizedTest
    @EnumSource(TinyBertOnnx.Style.class)
    void readsEveryWeightLayoutAndDerivesTheConfig(TinyBertOnnx.Style style, @TempDir Path dir) throws Exception {
        TinyBertOnnx tiny = new TinyBertOnnx(2, style, "");
        Path f = dir.resolve("tiny.onnx");
        try (OutputStream out = Files.newOutputStream(f)) {
            tiny.build().writeTo(out);
        }
        BertWeights w = OnnxBertReader.read(f);
        BertConfig c = w.config();
        assertThat(c.vocabSize()).isEqualTo(30);
        assertThat(c.hidden()).isEqualTo(8);
        assertThat(c.numLayers()).isEqualTo(2);
        assertThat(c.numHeads()).as("from the 1/sqrt(headSize) score scale").isEqualTo(2);
        assertThat(c.intermediate()).isEqualTo(16);
        assertThat(c.maxPositions()).isEqualTo(10);
        assertThat(c.typeVocabSize()).isEqualTo(2);
        assertThat(c.layerNormEps()).as("from the constant added before Sqrt").isCloseTo(1e-7, org.assertj.core.data.Offset.offset(1e-13));
        assertWeightsMatch(tiny, w);
        assertThat(w.get(BertNaming.Projection.INTERMEDIATE.weight(1)).shape()).containsExactly(8, 16);
        if (style == TinyBertOnnx.Style.EXPORT) {
            assertThat(w.sourceOf(BertNaming.Projection.QUERY.weight(0))).startsWith("onnx::MatMul_");
        } else {
            assertThat(w.sourceOf(BertNaming.Projection.QUERY.weight(0))).endsWith("(transposed)");
        }
    }

    @Test
    void stripsATaskModelsPrefix() throws Exception {
        TinyBertOnnx tiny = new TinyBertOnnx(1, TinyBertOnnx.Style.EXPORT, "bert.");
        BertWeights w = OnnxBertReader.read(new ByteArrayInputStream(tiny.build().toByteArray()));
        assertWeightsMatch(tiny, w);
    }

    @Test
    void explicitHeadsOverrideTheGraphAndAreNeededWithoutAScaledSoftmax() {
        Onnx.ModelProto m = new TinyBertOnnx(1, TinyBertOnnx.Style.EXPORT, "").build();
        assertThat(OnnxBertReader.read(m, 4).config().numHeads()).isEqualTo(4);
        Onnx.GraphProto.Builder g = m.getGraph().toBuilder();
        for (int i = g.getNodeCount() - 1; i >= 0; i--) {
            if (g.getNode(i).getOpType().equals("Softmax")) {
                g.removeNode(i);
            }
        }
        Onnx.ModelProto noSoftmax = m.toBuilder().setGraph(g).build();
        assertThatThrownBy(() -> OnnxBertReader.read(noSoftmax, 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("number of attention heads").hasMessageContaining("numHeads explicitly");
        assertThat(OnnxBertReader.read(noSoftmax, 2).config().numHeads()).isEqualTo(2);
    }

    @Test
    void decodesFloatDataAndDoubleTensors() {
        Onnx.ModelProto m = new TinyBertOnnx(1, TinyBertOnnx.Style.EXPORT, "").build();
        Onnx.GraphProto.Builder g = m.getGraph().toBuilder();
        float[] gain = new float[8];
        double[] bias = new double[8];
        for (int i = 0; i < 8; i++) {
            gain[i] = 0.5f + i;
            bias[i] = -0.25 * i;
        }
        ByteBuffer bb = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
        for (double d : bias) {
            bb.putDouble(d);
        }
        bb.flip();
        for (int i = 0; i < g.getInitializerCount(); i++) {
            String n = g.getInitializer(i).getName();
            if (n.equals(BertNaming.EMBEDDINGS_LN_WEIGHT)) {
                Onnx.TensorProto.Builder t = g.getInitializer(i).toBuilder().clearRawData();
                for (float v : gain) {
                    t.addFloatData(v);
                }
                g.setInitializer(i, t);
            } else if (n.equals(BertNaming.EMBEDDINGS_LN_BIAS)) {
                g.setInitializer(i, g.getInitializer(i).toBuilder().setDataType(Onnx.TensorProto.DataType.DOUBLE.getNumber())
                        .setRawData(ByteString.copyFrom(bb)));
            }
        }
        BertWeights w = OnnxBertReader.read(m.toBuilder().setGraph(g).build(), 0);
        assertThat(w.get(BertNaming.EMBEDDINGS_LN_WEIGHT)).isEqualTo(Nd4j.createFromArray(gain));
        assertThat(w.get(BertNaming.EMBEDDINGS_LN_BIAS)).isEqualTo(Nd4j.createFromArray(bias).castTo(DataType.FLOAT));
    }

    private static Onnx.ModelProto without(Onnx.ModelProto m, String initializer) {
        Onnx.GraphProto.Builder g = m.getGraph().toBuilder();
        for (int i = g.getInitializerCount() - 1; i >= 0; i--) {
            if (g.getInitializer(i).getName().equals(initializer)) {
                g.removeInitializer(i);
            }
        }
        return m.toBuilder().setGraph(g).build();
    }

    @Test
    void incompleteOrMisshapenModelsFailWithClearMessages() {
        Onnx.ModelProto m = new TinyBertOnnx(2, TinyBertOnnx.Style.EXPORT, "").build();

        assertThatThrownBy(() -> OnnxBertReader.read(without(m, "encoder.layer.1.output.LayerNorm.bias"), 0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("block 1 of 2 is incomplete").hasMessageContaining("encoder.layer.1.output.LayerNorm.bias");

        Onnx.ModelProto noBlocks = m;
        for (int l = 0; l < 2; l++) {
            for (String t : BertNaming.blockTensors(l)) {
                noBlocks = without(noBlocks, t);
            }
        }
        Onnx.GraphProto.Builder g = noBlocks.getGraph().toBuilder().clearNode();
        Onnx.ModelProto embeddingsOnly = noBlocks.toBuilder().setGraph(g).build();
        assertThatThrownBy(() -> OnnxBertReader.read(embeddingsOnly, 2)).hasMessageContaining("Not a BERT-family ONNX model")
                .hasMessageContaining("no tensors of block 0").hasMessageContaining("encoder.layer.0");

        Onnx.GraphProto.Builder bad = m.getGraph().toBuilder();
        for (int i = 0; i < bad.getInitializerCount(); i++) {
            if (bad.getInitializer(i).getName().equals("encoder.layer.1.intermediate.dense.bias")) {
                bad.setInitializer(i, TinyBertOnnx.floats("encoder.layer.1.intermediate.dense.bias", new float[1][12])
                        .toBuilder().clearDims().addDims(12).build());
            }
        }
        assertThatThrownBy(() -> OnnxBertReader.read(m.toBuilder().setGraph(bad).build(), 0))
                .hasMessageContaining("encoder.layer.1.intermediate.dense.bias").hasMessageContaining("expected shape [16]")
                .hasMessageContaining("got [12]");
    }

    @Test
    void quantizedModelsAreRejectedAsQuantizedNamingTheirTensors() {
        Onnx.ModelProto q = QuantizedBertOnnx.dynamic(new TinyBertOnnx(1, TinyBertOnnx.Style.EXPORT, "").build());
        // 6 projection weights behind MatMulInteger and the word embeddings behind DequantizeLinear
        assertThatThrownBy(() -> OnnxBertReader.read(new ByteArrayInputStream(q.toByteArray())))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("quantized models are not supported")
                .hasMessageContaining("7 quantized tensors in all")
                .hasMessageContaining("'embeddings.word_embeddings.weight_quantized' [30, 8] UINT8")
                .hasMessageContaining("'onnx::MatMul_700_quantized' [8, 8] UINT8")
                .hasMessageContaining("MatMulInteger=6").hasMessageContaining("DequantizeLinear=1")
                .hasMessageNotContaining("onnx::MatMul_705_quantized") // only a few are named
                .hasMessageNotContaining("_zero_point")
                .hasMessageNotContaining("Not a BERT-family");

        assertThatThrownBy(() -> OnnxBertReader.read(QuantizedBertOnnx.qlinearMatMul(), 0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("quantized models are not supported")
                .hasMessageContaining("1 quantization node {QLinearMatMul=1}")
                .hasMessageContaining("1 quantized tensor in all, e.g. 'dense.weight_quantized' [4, 3] INT8");
    }

    @Test
    void hostileShapesAndCountsAreRejectedBeforeAnythingIsAllocated() {
        Onnx.ModelProto m = new TinyBertOnnx(1, TinyBertOnnx.Style.EXPORT, "").build();
        Onnx.GraphProto.Builder g = m.getGraph().toBuilder();
        for (int i = 0; i < g.getInitializerCount(); i++) {
            if (g.getInitializer(i).getName().equals(BertNaming.EMBEDDINGS_LN_BIAS)) {
                // 2^31 - 1 elements claimed, 32 bytes stored
                g.setInitializer(i, g.getInitializer(i).toBuilder().clearDims().addDims(Integer.MAX_VALUE).build());
            }
        }
        assertThatThrownBy(() -> OnnxBertReader.read(m.toBuilder().setGraph(g).build(), 0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(BertNaming.EMBEDDINGS_LN_BIAS)
                .hasMessageContaining("expected shape [8]").hasMessageContaining("got [2147483647]");
        Onnx.TensorProto negative = TinyBertOnnx.floats("t", new float[1][4]).toBuilder().clearDims().addDims(-4).build();
        assertThatThrownBy(() -> OnnxBertReader.toArray(negative, "t")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("shape [-4] has a negative or overflowing size");
        Onnx.TensorProto huge = negative.toBuilder().clearDims().addDims(1 << 20).addDims(1 << 20).build();
        assertThatThrownBy(() -> OnnxBertReader.toArray(huge, "t")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("1099511627776 elements, too many for one array");
        Onnx.TensorProto short_ = negative.toBuilder().clearDims().addDims(1 << 28).build();
        assertThatThrownBy(() -> OnnxBertReader.toArray(short_, "t")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("expected 1073741824 bytes of raw_data").hasMessageContaining("got 16");
    }

    @Test
    void disagreeingCluesForAWeightAreReported() {
        Onnx.ModelProto m = new TinyBertOnnx(1, TinyBertOnnx.Style.EXPORT, "").build();
        Onnx.GraphProto.Builder g = m.getGraph().toBuilder();
        // the query MatMul's output now feeds the key's bias Add
        for (int i = 0; i < g.getNodeCount(); i++) {
            Onnx.NodeProto n = g.getNode(i);
            if (n.getName().equals("/encoder/layer.0/attention/self/query/Add")) {
                g.setNode(i, n.toBuilder().setInput(0, "encoder.layer.0.attention.self.key.bias").build());
            }
        }
        assertThatThrownBy(() -> BertNaming.resolveOnnx(g.build())).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("encoder.layer.0.attention.self.key").hasMessageContaining("encoder.layer.0.attention.self.query")
                .hasMessageContaining("resolves to module");
    }

    @Test
    void namingCoversTheSixPeftModulesAndSixteenTensorsPerBlock() {
        assertThat(BertNaming.peftModules(3)).containsExactly("encoder.layer.3.attention.self.query",
                "encoder.layer.3.attention.self.key", "encoder.layer.3.attention.self.value",
                "encoder.layer.3.attention.output.dense", "encoder.layer.3.intermediate.dense", "encoder.layer.3.output.dense");
        assertThat(BertNaming.blockTensors(0)).hasSize(16).doesNotHaveDuplicates()
                .contains("encoder.layer.0.attention.output.LayerNorm.weight", "encoder.layer.0.output.dense.bias");
        assertThat(BertNaming.layerIndexOf("encoder.layer.12.output.dense.bias")).isEqualTo(12);
        assertThat(BertNaming.layerIndexOf("embeddings.LayerNorm.bias")).isEqualTo(-1);
    }

    private static Onnx.TensorProto floats(String name, float[] v, long... dims) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            b.putFloat(f);
        }
        Onnx.TensorProto.Builder t = Onnx.TensorProto.newBuilder().setName(name).setDataType(Onnx.TensorProto.DataType.FLOAT.getNumber());
        for (long d : dims) {
            t.addDims(d);
        }
        return t.setRawData(ByteString.copyFrom(b.array())).build();
    }

    @Test
    void readsThePoolerWhenPresentAndRejectsHalfAPooler() {
        TinyBertOnnx tiny = new TinyBertOnnx(1, TinyBertOnnx.Style.TRANSPOSE_NODE, "bert.");
        Onnx.ModelProto m = tiny.build();
        assertThat(OnnxBertReader.read(m, 0).hasPooler()).isFalse();
        float[] w = new float[64];
        for (int i = 0; i < w.length; i++) {
            w[i] = i;   // PyTorch [out, in]: row o, column i holds 8 * o + i
        }
        float[] bias = {1, 2, 3, 4, 5, 6, 7, 8};
        Onnx.ModelProto withPooler = m.toBuilder().setGraph(m.getGraph().toBuilder()
                .addInitializer(floats("bert.pooler.dense.weight", w, 8, 8))
                .addInitializer(floats("bert.pooler.dense.bias", bias, 8))).build();
        BertWeights read = OnnxBertReader.read(withPooler, 0);
        assertThat(read.hasPooler()).isTrue();
        INDArray dl4j = read.get(BertNaming.POOLER_WEIGHT);   // [in, out]: the transpose
        assertThat(dl4j.getDouble(2, 5)).isEqualTo(8 * 5 + 2);
        assertThat(read.get(BertNaming.POOLER_BIAS).toFloatVector()).containsExactly(bias);

        Onnx.ModelProto half = m.toBuilder().setGraph(m.getGraph().toBuilder()
                .addInitializer(floats("bert.pooler.dense.bias", bias, 8))).build();
        assertThatThrownBy(() -> OnnxBertReader.read(half, 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("pooler is incomplete").hasMessageContaining("pooler.dense.weight");
        Onnx.ModelProto misshapen = m.toBuilder().setGraph(m.getGraph().toBuilder()
                .addInitializer(floats("bert.pooler.dense.weight", new float[16], 2, 8))
                .addInitializer(floats("bert.pooler.dense.bias", bias, 8))).build();
        assertThatThrownBy(() -> OnnxBertReader.read(misshapen, 0)).hasMessageContaining("pooler.dense.weight")
                .hasMessageContaining("expected shape [8, 8]");
    }
}
