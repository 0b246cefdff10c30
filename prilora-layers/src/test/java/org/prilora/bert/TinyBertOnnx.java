package org.prilora.bert;

import onnx.Onnx;
import org.nd4j.shade.protobuf.ByteString;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * Writes small BERT-shaped ONNX graphs the way {@code torch.onnx.export} lays them out (only the structure the
 * reader inspects; the graphs are not meant to run). Records every tensor it stores, in {@link BertWeights}'
 * orientation, so tests can compare what the reader returns.
 */
final class TinyBertOnnx {

    /** How the linear weights are stored. */
    enum Style {
        /** Constant-folded {@code onnx::MatMul_N} {@code [in, out]} into MatMul, bias Add after it (the real export). */
        EXPORT,
        /** {@code <module>.weight} {@code [out, in]} through a Transpose node into MatMul. */
        TRANSPOSE_NODE,
        /** {@code <module>.weight} {@code [out, in]} into Gemm with {@code transB = 1}, bias as Gemm's third input. */
        GEMM
    }

    final int vocab = 30;
    final int hidden = 8;
    final int heads = 2;
    final int inter = 16;
    final int maxPos = 10;
    final int layers;
    final double eps = 1e-7;
    final Style style;
    final String prefix;
    /** Tensors as the reader should return them (DL4J orientation), by state-dict name. */
    final Map<String, float[][]> expected = new LinkedHashMap<>();

    private final Onnx.GraphProto.Builder g = Onnx.GraphProto.newBuilder().setName("tiny_bert");
    private final Random rnd = new Random(1);
    private int counter = 700;

    TinyBertOnnx(int layers, Style style, String prefix) {
        this.layers = layers;
        this.style = style;
        this.prefix = prefix;
    }

    Onnx.ModelProto build() {
        g.addInput(Onnx.ValueInfoProto.newBuilder().setName("input_ids"));
        matrix(prefix + BertNaming.WORD_EMBEDDINGS, BertNaming.WORD_EMBEDDINGS, vocab, hidden);
        matrix(prefix + BertNaming.POSITION_EMBEDDINGS, BertNaming.POSITION_EMBEDDINGS, maxPos, hidden);
        matrix(prefix + BertNaming.TOKEN_TYPE_EMBEDDINGS, BertNaming.TOKEN_TYPE_EMBEDDINGS, 2, hidden);
        vector(prefix + BertNaming.EMBEDDINGS_LN_WEIGHT, BertNaming.EMBEDDINGS_LN_WEIGHT, hidden);
        vector(prefix + BertNaming.EMBEDDINGS_LN_BIAS, BertNaming.EMBEDDINGS_LN_BIAS, hidden);
        // int64 buffer as in the real export: not a weight, must be ignored
        g.addInitializer(Onnx.TensorProto.newBuilder().setName(prefix + "embeddings.position_ids").addDims(1).addDims(maxPos)
                .setDataType(Onnx.TensorProto.DataType.INT64.getNumber()).setRawData(ByteString.copyFrom(new byte[8 * maxPos])));
        layerNorm("/embeddings/LayerNorm");
        for (int l = 0; l < layers; l++) {
            for (BertNaming.Projection p : BertNaming.Projection.values()) {
                int in = p == BertNaming.Projection.OUTPUT ? inter : hidden;
                int out = p == BertNaming.Projection.INTERMEDIATE ? inter : hidden;
                linear(l, p, in, out);
            }
            for (BertNaming.Norm n : BertNaming.Norm.values()) {
                vector(prefix + n.weight(l), n.weight(l), hidden);
                vector(prefix + n.bias(l), n.bias(l), hidden);
            }
            if (l == 0) {
                attentionScores("/encoder/layer.0/attention/self");
            }
            layerNorm("/encoder/layer." + l + "/output/LayerNorm");
        }
        return Onnx.ModelProto.newBuilder().setIrVersion(6).setProducerName("test").setGraph(g).build();
    }

    private void linear(int l, BertNaming.Projection p, int in, int out) {
        // torch's scope names keep "layer.N" dotted: /encoder/layer.0/attention/self/query
        String scope = "/" + prefix.replace('.', '/') + "encoder/layer." + l + "/" + p.siteName().replace('.', '/');
        float[][] w = random(in, out);
        expected.put(p.weight(l), w);
        String x = "x_" + l + "_" + p.name();
        String y = scope + "/MatMul_output_0";
        String bias = prefix + p.bias(l);
        vector(bias, p.bias(l), out);
        switch (style) {
            case EXPORT -> {
                String name = "onnx::MatMul_" + (counter++);
                g.addInitializer(floats(name, w));
                g.addNode(node("MatMul", scope + "/MatMul", y, x, name));
                g.addNode(node("Add", scope + "/Add", scope + "/Add_output_0", bias, y));
            }
            case TRANSPOSE_NODE -> {
                String name = prefix + p.weight(l);
                g.addInitializer(floats(name, transpose(w)));
                g.addNode(node("Transpose", scope + "/Transpose", name + "_t", name));
                g.addNode(node("MatMul", scope + "/MatMul", y, x, name + "_t"));
                g.addNode(node("Add", scope + "/Add", scope + "/Add_output_0", y, bias));
            }
            case GEMM -> {
                String name = prefix + p.weight(l);
                g.addInitializer(floats(name, transpose(w)));
                g.addNode(node("Gemm", scope + "/Gemm", y, x, name, bias).toBuilder()
                        .addAttribute(Onnx.AttributeProto.newBuilder().setName("transB").setI(1)
                                .setType(Onnx.AttributeProto.AttributeType.INT)).build());
            }
            default -> throw new IllegalStateException();
        }
    }

    private void attentionScores(String scope) {
        g.addNode(node("MatMul", scope + "/MatMul", scope + "/MatMul_output_0", "q_heads", "k_heads_t"));
        g.addNode(constant(scope + "/Constant_12", (float) Math.sqrt(hidden / heads)));
        g.addNode(node("Div", scope + "/Div", scope + "/Div_output_0", scope + "/MatMul_output_0", scope + "/Constant_12_output_0"));
        g.addNode(node("Add", scope + "/Add", scope + "/Add_output_0", scope + "/Div_output_0", "/Mul_output_0"));
        g.addNode(node("Softmax", scope + "/Softmax", scope + "/Softmax_output_0", scope + "/Add_output_0"));
    }

    private void layerNorm(String scope) {
        g.addNode(node("ReduceMean", scope + "/ReduceMean_1", scope + "/ReduceMean_1_output_0", scope + "/Pow_output_0"));
        g.addNode(constant(scope + "/Constant_1", (float) eps));
        g.addNode(node("Add", scope + "/Add", scope + "/Add_output_0", scope + "/ReduceMean_1_output_0", scope + "/Constant_1_output_0"));
        g.addNode(node("Sqrt", scope + "/Sqrt", scope + "/Sqrt_output_0", scope + "/Add_output_0"));
    }

    Onnx.NodeProto constant(String name, float v) {
        return Onnx.NodeProto.newBuilder().setOpType("Constant").setName(name).addOutput(name + "_output_0")
                .addAttribute(Onnx.AttributeProto.newBuilder().setName("value").setType(Onnx.AttributeProto.AttributeType.TENSOR)
                        .setT(Onnx.TensorProto.newBuilder().setDataType(Onnx.TensorProto.DataType.FLOAT.getNumber()).addFloatData(v)))
                .build();
    }

    static Onnx.NodeProto node(String op, String name, String output, String... inputs) {
        Onnx.NodeProto.Builder b = Onnx.NodeProto.newBuilder().setOpType(op).setName(name).addOutput(output);
        for (String i : inputs) {
            b.addInput(i);
        }
        return b.build();
    }

    private void matrix(String initName, String stateName, int rows, int cols) {
        float[][] m = random(rows, cols);
        expected.put(stateName, m);
        g.addInitializer(floats(initName, m));
    }

    private void vector(String initName, String stateName, int n) {
        float[][] m = random(1, n);
        expected.put(stateName, m);
        g.addInitializer(floats(initName, m).toBuilder().clearDims().addDims(n).build());
    }

    private float[][] random(int rows, int cols) {
        float[][] m = new float[rows][cols];
        for (float[] r : m) {
            for (int j = 0; j < cols; j++) {
                r[j] = (float) rnd.nextGaussian();
            }
        }
        return m;
    }

    static float[][] transpose(float[][] m) {
        float[][] t = new float[m[0].length][m.length];
        for (int i = 0; i < m.length; i++) {
            for (int j = 0; j < m[0].length; j++) {
                t[j][i] = m[i][j];
            }
        }
        return t;
    }

    /** A float32 initializer in little-endian raw_data, as exporters write it. */
    static Onnx.TensorProto floats(String name, float[][] m) {
        ByteBuffer bb = ByteBuffer.allocate(4 * m.length * m[0].length).order(ByteOrder.LITTLE_ENDIAN);
        for (float[] r : m) {
            for (float v : r) {
                bb.putFloat(v);
            }
        }
        bb.flip();
        return Onnx.TensorProto.newBuilder().setName(name).addDims(m.length).addDims(m[0].length)
                .setDataType(Onnx.TensorProto.DataType.FLOAT.getNumber()).setRawData(ByteString.copyFrom(bb)).build();
    }
}
