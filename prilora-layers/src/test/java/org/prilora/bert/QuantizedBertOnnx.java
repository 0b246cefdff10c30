package org.prilora.bert;

import onnx.Onnx;
import org.nd4j.shade.protobuf.ByteString;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Quantizes a {@link TinyBertOnnx} graph the way onnxruntime's {@code quantize_dynamic} does for the {@code -q}
 * embedding models: every weight MatMul becomes {@code DynamicQuantizeLinear} → {@code MatMulInteger} (weight stored
 * as {@code <name>_quantized} UINT8 with {@code _scale} and {@code _zero_point}) → {@code Cast} → {@code Mul}, and the
 * word embedding table is stored as UINT8 behind a {@code DequantizeLinear}. Only the structure matters (the graphs
 * are not meant to run), so the UINT8 values are the float bytes' low bytes.
 */
final class QuantizedBertOnnx {
    private QuantizedBertOnnx() {
    }

    /** The quantized copy of {@code m}. */
    static Onnx.ModelProto dynamic(Onnx.ModelProto m) {
        Onnx.GraphProto.Builder g = m.getGraph().toBuilder().clearNode().clearInitializer();
        Map<String, Onnx.TensorProto> inits = new LinkedHashMap<>();
        for (Onnx.TensorProto t : m.getGraph().getInitializerList()) {
            inits.put(t.getName(), t);
        }
        List<Onnx.NodeProto> nodes = new ArrayList<>();
        String word = BertNaming.WORD_EMBEDDINGS;
        nodes.add(TinyBertOnnx.node("DequantizeLinear", "/embeddings/word_embeddings/DequantizeLinear", word,
                word + "_quantized", word + "_scale", word + "_zero_point"));
        quantize(inits, word);
        for (Onnx.NodeProto n : m.getGraph().getNodeList()) {
            if (!n.getOpType().equals("MatMul") || !inits.containsKey(n.getInput(1))) {
                nodes.add(n);
                continue;
            }
            String x = n.getInput(0);
            String w = n.getInput(1);
            String y = n.getOutput(0);
            String scope = n.getName().substring(0, n.getName().lastIndexOf('/'));
            nodes.add(Onnx.NodeProto.newBuilder().setOpType("DynamicQuantizeLinear").setName(scope + "/DynamicQuantizeLinear")
                    .addInput(x).addOutput(x + "_quantized").addOutput(x + "_scale").addOutput(x + "_zero_point").build());
            nodes.add(TinyBertOnnx.node("MatMulInteger", scope + "/MatMul_quant", y + "_int32",
                    x + "_quantized", w + "_quantized", x + "_zero_point", w + "_zero_point"));
            nodes.add(TinyBertOnnx.node("Cast", scope + "/MatMul_quant_cast", y + "_float", y + "_int32").toBuilder()
                    .addAttribute(Onnx.AttributeProto.newBuilder().setName("to").setType(Onnx.AttributeProto.AttributeType.INT)
                            .setI(Onnx.TensorProto.DataType.FLOAT.getNumber())).build());
            nodes.add(TinyBertOnnx.node("Mul", scope + "/MatMul_quant_scales_mul", y + "_scales", x + "_scale", w + "_scale"));
            nodes.add(TinyBertOnnx.node("Mul", scope + "/MatMul_quant_output_scale_mul", y, y + "_float", y + "_scales"));
            quantize(inits, w);
        }
        return m.toBuilder().setGraph(g.addAllNode(nodes).addAllInitializer(inits.values())).build();
    }

    /** A graph with one {@code QLinearMatMul} whose INT8 weight is the only quantized tensor. */
    static Onnx.ModelProto qlinearMatMul() {
        Onnx.GraphProto.Builder g = Onnx.GraphProto.newBuilder().setName("qlinear")
                .addInput(Onnx.ValueInfoProto.newBuilder().setName("x_q"))
                .addInitializer(bytes("dense.weight_quantized", Onnx.TensorProto.DataType.INT8, 4, 3))
                .addInitializer(scalar("x_scale")).addInitializer(zeroPoint("x_zero_point"))
                .addInitializer(scalar("dense.weight_scale")).addInitializer(zeroPoint("dense.weight_zero_point"))
                .addInitializer(scalar("y_scale")).addInitializer(zeroPoint("y_zero_point"))
                .addNode(TinyBertOnnx.node("QLinearMatMul", "/dense/QLinearMatMul", "y_q", "x_q", "x_scale", "x_zero_point",
                        "dense.weight_quantized", "dense.weight_scale", "dense.weight_zero_point", "y_scale", "y_zero_point"));
        return Onnx.ModelProto.newBuilder().setIrVersion(7).setProducerName("test").setGraph(g).build();
    }

    /** Replaces float initializer {@code name} by {@code name_quantized} (UINT8, same dims), a scale and a zero point. */
    private static void quantize(Map<String, Onnx.TensorProto> inits, String name) {
        Onnx.TensorProto t = inits.remove(name);
        byte[] raw = t.getRawData().toByteArray();
        byte[] q = new byte[raw.length / 4];
        for (int i = 0; i < q.length; i++) {
            q[i] = raw[4 * i];
        }
        inits.put(name + "_quantized", Onnx.TensorProto.newBuilder().setName(name + "_quantized").addAllDims(t.getDimsList())
                .setDataType(Onnx.TensorProto.DataType.UINT8.getNumber()).setRawData(ByteString.copyFrom(q)).build());
        inits.put(name + "_scale", scalar(name + "_scale"));
        inits.put(name + "_zero_point", zeroPoint(name + "_zero_point"));
    }

    private static Onnx.TensorProto bytes(String name, Onnx.TensorProto.DataType type, int rows, int cols) {
        return Onnx.TensorProto.newBuilder().setName(name).addDims(rows).addDims(cols).setDataType(type.getNumber())
                .setRawData(ByteString.copyFrom(new byte[rows * cols])).build();
    }

    private static Onnx.TensorProto scalar(String name) {
        ByteBuffer bb = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(0.02f);
        return Onnx.TensorProto.newBuilder().setName(name).setDataType(Onnx.TensorProto.DataType.FLOAT.getNumber())
                .setRawData(ByteString.copyFrom(bb.array())).build();
    }

    private static Onnx.TensorProto zeroPoint(String name) {
        return Onnx.TensorProto.newBuilder().setName(name).setDataType(Onnx.TensorProto.DataType.UINT8.getNumber())
                .setRawData(ByteString.copyFrom(new byte[]{(byte) 128})).build();
    }
}
