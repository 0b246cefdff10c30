package org.prilora.bert;

import onnx.Onnx;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.activations.impl.ActivationSoftmax;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.shade.protobuf.ByteString;
import org.prilora.bert.BertNaming.Norm;
import org.prilora.bert.BertNaming.Projection;
import org.prilora.io.AtomicFiles;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes a fine-tuned BERT encoder as an ONNX model that ONNX Runtime (or any ONNX runtime) runs: the original
 * export's graph, unchanged, with every block's projection weights, biases and LayerNorms replaced by those of a merged
 * DL4J network ({@code PriLora.merge} of a PRILoRA-adapted encoder), and, when the network has the factory's
 * classifier, the head appended to the same graph: mask-aware mean pooling of {@code last_hidden_state}, the
 * classifier's {@code x·W + b} and its softmax, as the extra graph output {@value #PROBABILITIES}.
 *
 * <p>Initializers are found the way {@link OnnxBertReader} finds them ({@link BertNaming#resolveOnnx}), so
 * constant-folded {@code onnx::MatMul_N} weights and transposed {@code [out, in]} ones are written back in the layout
 * the graph expects. Embeddings are not replaced (PRILoRA freezes them); a network whose embeddings differ from the
 * file's is rejected.
 */
public final class OnnxBertExporter {
    /** The graph output the appended head writes: softmax probabilities {@code [batch, classes]}. */
    public static final String PROBABILITIES = "probabilities";
    private static final String HIDDEN = "last_hidden_state";
    private static final String MASK = "attention_mask";

    private OnnxBertExporter() {
    }

    /** Reads {@code originalOnnx}, substitutes the network's weights and writes the result to {@code out} atomically. */
    public static void export(Path originalOnnx, MultiLayerNetwork merged, Path out) throws IOException {
        Onnx.ModelProto original;
        try (InputStream in = Files.newInputStream(originalOnnx)) {
            original = OnnxBertReader.parse(in);
        }
        Onnx.ModelProto m = export(original, merged);
        Path parent = out.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        AtomicFiles.write(out, m::writeTo);
    }

    /**
     * The original model with the network's block weights and (if it has the factory's classifier) the head.
     *
     * @throws IllegalArgumentException if the network is not a plain BERT encoder of the file's shape (e.g. still adapted:
     *                                  merge it first), or its embeddings differ from the file's
     */
    public static Onnx.ModelProto export(Onnx.ModelProto original, MultiLayerNetwork merged) {
        Onnx.GraphProto g = original.getGraph();
        BertWeights fileWeights = OnnxBertReader.read(original, 0);
        BertConfig config = fileWeights.config();
        Map<String, BertNaming.OnnxSource> sources = BertNaming.resolveOnnx(g);
        Map<String, Layer> layers = new LinkedHashMap<>();
        for (int i = 0; i < merged.getnLayers(); i++) {
            layers.put(merged.getLayerWiseConfigurations().getConf(i).getLayer().getLayerName(), merged.getLayer(i));
        }
        checkEmbeddings(layers.get(BertEncoderFactory.EMBEDDINGS_NAME), fileWeights);

        Map<String, INDArray> replaced = new LinkedHashMap<>();
        for (int l = 0; l < config.numLayers(); l++) {
            Layer block = layers.get(BertNaming.layerName(l));
            if (block == null || block.conf().getLayer().getClass() != BertBlock.class) {
                throw new IllegalArgumentException("merged: expected a plain BertBlock named '" + BertNaming.layerName(l) + "' (block " + l
                        + " of " + config.numLayers() + " in the ONNX file), got "
                        + (block == null ? "no such layer" : block.conf().getLayer().getClass().getSimpleName() + "; PriLora.merge it first"));
            }
            for (Projection p : Projection.values()) {
                replaced.put(p.weight(l), block.getParam(BertBlock.weightKey(p)));
                replaced.put(p.bias(l), block.getParam(BertBlock.biasKey(p)));
            }
            for (Norm n : Norm.values()) {
                replaced.put(n.weight(l), block.getParam(n.gainKey()));
                replaced.put(n.bias(l), block.getParam(n.biasKey()));
            }
        }
        Map<String, Onnx.TensorProto> byInitializer = new LinkedHashMap<>();
        for (Map.Entry<String, INDArray> e : replaced.entrySet()) {
            BertNaming.OnnxSource src = sources.get(e.getKey());
            Onnx.TensorProto old = find(g, src.initializer());
            INDArray v = e.getValue();
            if (old.getDimsCount() == 2) {
                v = src.transposed() ? v.transpose() : v;
            } else {
                v = v.reshape(v.length());
            }
            long[] dims = old.getDimsList().stream().mapToLong(Long::longValue).toArray();
            if (!Arrays.equals(dims, v.shape())) {
                throw new IllegalArgumentException("merged: tensor '" + e.getKey() + "' has shape " + Arrays.toString(v.shape())
                        + ", the ONNX initializer '" + src.initializer() + "' has " + Arrays.toString(dims));
            }
            byInitializer.put(src.initializer(), floatTensor(src.initializer(), v));
        }
        Onnx.GraphProto.Builder gb = g.toBuilder();
        for (int i = 0; i < gb.getInitializerCount(); i++) {
            Onnx.TensorProto t = byInitializer.get(gb.getInitializer(i).getName());
            if (t != null) {
                gb.setInitializer(i, t);
            }
        }
        Layer head = layers.get(BertEncoderFactory.CLASSIFIER_NAME);
        if (head != null) {
            appendHead(gb, head, opset(original));
        }
        return original.toBuilder().setGraph(gb).build();
    }

    private static void checkEmbeddings(Layer emb, BertWeights file) {
        if (emb == null) {
            throw new IllegalArgumentException("merged: expected the factory's layer '" + BertEncoderFactory.EMBEDDINGS_NAME + "', found none");
        }
        INDArray word = emb.getParam(BertEmbeddings.WORD);
        INDArray fileWord = file.get(BertNaming.WORD_EMBEDDINGS);
        if (!Arrays.equals(word.shape(), fileWord.shape())
                || word.castTo(DataType.FLOAT).sub(fileWord.castTo(DataType.FLOAT)).amaxNumber().doubleValue() > 0) {
            throw new IllegalArgumentException("merged: the word embeddings differ from the ONNX file's "
                    + "(another base model, or trained embeddings, which this exporter does not write)");
        }
    }

    private static Onnx.TensorProto find(Onnx.GraphProto g, String name) {
        for (Onnx.TensorProto t : g.getInitializerList()) {
            if (t.getName().equals(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("ONNX graph: no initializer '" + name + "'");
    }

    private static int opset(Onnx.ModelProto m) {
        for (Onnx.OperatorSetIdProto o : m.getOpsetImportList()) {
            if (o.getDomain().isEmpty() || o.getDomain().equals("ai.onnx")) {
                return (int) o.getVersion();
            }
        }
        return 13;
    }

    /** Mean pooling over real tokens, {@code x·W + b}, softmax: {@value #PROBABILITIES} {@code [batch, classes]}. */
    private static void appendHead(Onnx.GraphProto.Builder gb, Layer head, int opset) {
        if (!(head.conf().getLayer() instanceof OutputLayer)
                || !(((OutputLayer) head.conf().getLayer()).getActivationFn() instanceof ActivationSoftmax)) {
            throw new IllegalArgumentException("merged: the classifier '" + BertEncoderFactory.CLASSIFIER_NAME
                    + "' must be the factory's softmax OutputLayer (" + Activation.SOFTMAX + "), got " + head.conf().getLayer());
        }
        INDArray w = head.getParam("W");
        INDArray b = head.getParam("b");
        String p = "prilora_head/";
        gb.addInitializer(floatTensor(p + "W", w));
        gb.addInitializer(floatTensor(p + "b", b.reshape(b.length())));
        gb.addInitializer(floatTensor(p + "eps", org.nd4j.linalg.factory.Nd4j.scalar(DataType.FLOAT, 1e-9f).reshape(1)));
        node(gb, "Cast", p + "cast", new String[]{MASK}, p + "mask").addAttribute(intAttr("to", Onnx.TensorProto.DataType.FLOAT.getNumber()));
        unsqueeze(gb, p + "unsq", p + "mask", 2, p + "mask3", opset);                                  // [b, s, 1]
        node(gb, "Mul", p + "mul", new String[]{HIDDEN, p + "mask3"}, p + "masked");
        reduceSum(gb, p + "sum", p + "masked", 1, p + "sum", opset);                                  // [b, hidden]
        reduceSum(gb, p + "count", p + "mask3", 1, p + "count", opset);                               // [b, 1]
        node(gb, "Max", p + "clip", new String[]{p + "count", p + "eps"}, p + "countc");
        node(gb, "Div", p + "mean", new String[]{p + "sum", p + "countc"}, p + "pooled");
        node(gb, "MatMul", p + "matmul", new String[]{p + "pooled", p + "W"}, p + "xw");
        node(gb, "Add", p + "add", new String[]{p + "xw", p + "b"}, p + "logits");
        node(gb, "Softmax", p + "softmax", new String[]{p + "logits"}, PROBABILITIES).addAttribute(intAttr("axis", 1));
        Onnx.TypeProto.Tensor.Builder tt = Onnx.TypeProto.Tensor.newBuilder().setElemType(Onnx.TensorProto.DataType.FLOAT.getNumber())
                .setShape(Onnx.TensorShapeProto.newBuilder()
                        .addDim(Onnx.TensorShapeProto.Dimension.newBuilder().setDimParam("batch"))
                        .addDim(Onnx.TensorShapeProto.Dimension.newBuilder().setDimValue(w.size(1))));
        gb.addOutput(Onnx.ValueInfoProto.newBuilder().setName(PROBABILITIES).setType(Onnx.TypeProto.newBuilder().setTensorType(tt)));
    }

    private static Onnx.NodeProto.Builder node(Onnx.GraphProto.Builder gb, String op, String name, String[] inputs, String output) {
        Onnx.NodeProto.Builder n = gb.addNodeBuilder().setOpType(op).setName(name).addOutput(output);
        for (String in : inputs) {
            n.addInput(in);
        }
        return n;
    }

    /** Unsqueeze at {@code axis}: axes as an attribute before opset 13, as an input from 13 on. */
    private static void unsqueeze(Onnx.GraphProto.Builder gb, String name, String in, long axis, String out, int opset) {
        if (opset >= 13) {
            gb.addInitializer(longTensor(name + "/axes", axis));
            node(gb, "Unsqueeze", name, new String[]{in, name + "/axes"}, out);
        } else {
            node(gb, "Unsqueeze", name, new String[]{in}, out).addAttribute(intsAttr("axes", axis));
        }
    }

    /** ReduceSum over {@code axis} without keeping it: axes as an attribute before opset 13, as an input from 13 on. */
    private static void reduceSum(Onnx.GraphProto.Builder gb, String name, String in, long axis, String out, int opset) {
        Onnx.NodeProto.Builder n;
        if (opset >= 13) {
            gb.addInitializer(longTensor(name + "/axes", axis));
            n = node(gb, "ReduceSum", name, new String[]{in, name + "/axes"}, out);
        } else {
            n = node(gb, "ReduceSum", name, new String[]{in}, out).addAttribute(intsAttr("axes", axis));
        }
        n.addAttribute(intAttr("keepdims", 0));
    }

    private static Onnx.AttributeProto intAttr(String name, long v) {
        return Onnx.AttributeProto.newBuilder().setName(name).setType(Onnx.AttributeProto.AttributeType.INT).setI(v).build();
    }

    private static Onnx.AttributeProto intsAttr(String name, long v) {
        return Onnx.AttributeProto.newBuilder().setName(name).setType(Onnx.AttributeProto.AttributeType.INTS).addInts(v).build();
    }

    private static Onnx.TensorProto longTensor(String name, long v) {
        ByteBuffer buf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v);
        return Onnx.TensorProto.newBuilder().setName(name).addDims(1).setDataType(Onnx.TensorProto.DataType.INT64.getNumber())
                .setRawData(ByteString.copyFrom(buf.array())).build();
    }

    /** A float32 initializer with raw little-endian data in C order. */
    static Onnx.TensorProto floatTensor(String name, INDArray a) {
        float[] v = a.castTo(DataType.FLOAT).dup('c').data().asFloat();
        ByteBuffer buf = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(v);
        Onnx.TensorProto.Builder t = Onnx.TensorProto.newBuilder().setName(name).setDataType(Onnx.TensorProto.DataType.FLOAT.getNumber())
                .setRawData(ByteString.copyFrom(buf.array()));
        for (long d : a.shape()) {
            t.addDims(d);
        }
        return t.build();
    }
}
