package org.prilora.it.bert;

import onnx.Onnx;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.shade.protobuf.ByteString;
import org.prilora.bert.OnnxBertReader;

import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** ONNX files that are not BERT encoders are rejected with a message saying what was expected and what was found. */
class NonBertOnnxFileTest {

    private static Onnx.TensorProto floats(String name, int rows, int cols) {
        ByteBuffer bb = ByteBuffer.allocate(4 * rows * cols).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < rows * cols; i++) {
            bb.putFloat(i * 0.1f);
        }
        bb.flip();
        return Onnx.TensorProto.newBuilder().setName(name).addDims(rows).addDims(cols)
                .setDataType(Onnx.TensorProto.DataType.FLOAT.getNumber()).setRawData(ByteString.copyFrom(bb)).build();
    }

    private static Path write(Path dir, Onnx.GraphProto.Builder g) throws Exception {
        Path f = dir.resolve(g.getName() + ".onnx");
        try (OutputStream out = Files.newOutputStream(f)) {
            Onnx.ModelProto.newBuilder().setIrVersion(7).setProducerName("test").setGraph(g).build().writeTo(out);
        }
        return f;
    }

    @Test
    void aLinearRegressionModelIsNotBert(@TempDir Path dir) throws Exception {
        Onnx.GraphProto.Builder g = Onnx.GraphProto.newBuilder().setName("linreg")
                .addInput(Onnx.ValueInfoProto.newBuilder().setName("x"))
                .addOutput(Onnx.ValueInfoProto.newBuilder().setName("y"))
                .addInitializer(floats("W", 4, 3))
                .addInitializer(floats("B", 1, 3))
                .addNode(Onnx.NodeProto.newBuilder().setOpType("MatMul").setName("/MatMul").addInput("x").addInput("W").addOutput("xw"))
                .addNode(Onnx.NodeProto.newBuilder().setOpType("Add").setName("/Add").addInput("xw").addInput("B").addOutput("y"));
        Path f = write(dir, g);
        assertThatThrownBy(() -> OnnxBertReader.read(f)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("Not a BERT-family ONNX model")
                .hasMessageContaining("embeddings.word_embeddings.weight")
                .hasMessageContaining("W[4, 3]")
                .hasMessageContaining("graph inputs [x]");
    }

    @Test
    void embeddingsWithoutEncoderBlocksAreNotBert(@TempDir Path dir) throws Exception {
        Onnx.GraphProto.Builder g = Onnx.GraphProto.newBuilder().setName("embeddings_only")
                .addInput(Onnx.ValueInfoProto.newBuilder().setName("input_ids"))
                .addInitializer(floats("embeddings.word_embeddings.weight", 10, 4))
                .addInitializer(floats("embeddings.position_embeddings.weight", 8, 4))
                .addInitializer(floats("embeddings.token_type_embeddings.weight", 2, 4))
                .addInitializer(floats("embeddings.LayerNorm.weight", 1, 4).toBuilder().clearDims().addDims(4).build())
                .addInitializer(floats("embeddings.LayerNorm.bias", 1, 4).toBuilder().clearDims().addDims(4).build());
        Path f = write(dir, g);
        assertThatThrownBy(() -> OnnxBertReader.read(f)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("Not a BERT-family ONNX model")
                .hasMessageContaining("no tensors of block 0")
                .hasMessageContaining("embeddings.word_embeddings.weight[10, 4]");
    }

    @Test
    void aFileThatIsNotOnnxAtAllFails(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("notes.onnx");
        Files.writeString(f, "this is a text file, not a protobuf message");
        Throwable t = org.assertj.core.api.Assertions.catchThrowable(() -> OnnxBertReader.read(f));
        assertThat(t).isNotNull();
        assertThat(t.getMessage()).isNotBlank();
    }
}
