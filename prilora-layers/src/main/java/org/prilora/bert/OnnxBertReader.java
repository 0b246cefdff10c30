package org.prilora.bert;

import onnx.Onnx;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.shade.protobuf.CodedInputStream;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Reads the weights of a BERT-family encoder from an ONNX file (for example the all-MiniLM-L6-v2 export),
 * without DL4J's ONNX importer: it parses the {@code ModelProto} with ND4J's bundled protobuf classes, maps the
 * initializers to state-dict names with {@link BertNaming#resolveOnnx}, derives the {@link BertConfig} and checks
 * every tensor's shape against it.
 *
 * <p>Where the config comes from: vocabulary, hidden size, maximum positions and token type count from the
 * embedding tables; intermediate size from layer 0's FFN; the number of layers from the {@code encoder.layer.N}
 * names (all of 0..N-1 must be complete); the number of heads from the attention-score scale {@code 1/√headSize}
 * in front of the first {@code Softmax} (or given by the caller); the LayerNorm epsilon from the graph's
 * LayerNorm ({@code LayerNormalization}'s attribute, or the constant added before {@code Sqrt}), else BERT's 1e-12.
 *
 * <p>Only float32 (or float64) tensors stored inside the file are supported, from {@code raw_data}
 * (little-endian) or {@code float_data}/{@code double_data}.
 */
public final class OnnxBertReader {

    /** ONNX files above protobuf's default 64 MiB message limit (the MiniLM file is 90 MB) need a higher one. */
    private static final int SIZE_LIMIT = Integer.MAX_VALUE;

    private OnnxBertReader() {
    }

    /** Reads a file, deriving the number of heads from the graph. */
    public static BertWeights read(Path onnxFile) throws IOException {
        return read(onnxFile, 0);
    }

    /** Reads a file; {@code numHeads > 0} overrides the value derived from the graph. */
    public static BertWeights read(Path onnxFile, int numHeads) throws IOException {
        try (InputStream in = new BufferedInputStream(Files.newInputStream(onnxFile), 1 << 20)) {
            return read(in, numHeads);
        }
    }

    /** Reads a model from a stream (not closed), deriving the number of heads from the graph. */
    public static BertWeights read(InputStream in) throws IOException {
        return read(in, 0);
    }

    /** Reads a model from a stream (not closed); {@code numHeads > 0} overrides the value derived from the graph. */
    public static BertWeights read(InputStream in, int numHeads) throws IOException {
        return read(parse(in), numHeads);
    }

    /** Parses an ONNX {@code ModelProto}, with the protobuf size limit raised for large models. */
    public static Onnx.ModelProto parse(InputStream in) throws IOException {
        CodedInputStream cis = CodedInputStream.newInstance(in);
        cis.setSizeLimit(SIZE_LIMIT);
        Onnx.ModelProto m = Onnx.ModelProto.parseFrom(cis);
        if (!m.hasGraph()) {
            throw new IllegalArgumentException("Not an ONNX model: the file parsed to a ModelProto without a graph");
        }
        return m;
    }

    /**
     * Extracts the weights of a parsed model.
     *
     * @param numHeads attention heads, or 0 to derive them from the graph
     * @throws IllegalArgumentException when the model is not a BERT-family encoder, a tensor is missing, has the
     *                                  wrong shape or an unsupported type
     */
    public static BertWeights read(Onnx.ModelProto model, int numHeads) {
        Onnx.GraphProto g = model.getGraph();
        Map<String, Onnx.TensorProto> inits = new LinkedHashMap<>();
        for (Onnx.TensorProto t : g.getInitializerList()) {
            inits.put(t.getName(), t);
        }
        Map<String, BertNaming.OnnxSource> names = BertNaming.resolveOnnx(g);

        for (String required : BertNaming.EMBEDDING_TENSORS) {
            if (!names.containsKey(required)) {
                throw notBert(g, inits, "missing the embedding tensor '" + required + "'");
            }
        }
        TreeSet<Integer> layers = new TreeSet<>();
        for (String n : names.keySet()) {
            int l = BertNaming.layerIndexOf(n);
            if (l >= 0) {
                layers.add(l);
            }
        }
        if (!layers.contains(0)) {
            throw notBert(g, inits, "found the embeddings but no tensors of block 0 ('" + BertNaming.layerName(0)
                    + ".*'); blocks found: " + layers);
        }
        int numLayers = layers.last() + 1;
        for (int l = 0; l < numLayers; l++) {
            List<String> missing = new ArrayList<>();
            for (String t : BertNaming.blockTensors(l)) {
                if (!names.containsKey(t)) {
                    missing.add(t);
                }
            }
            if (!missing.isEmpty()) {
                throw new IllegalArgumentException("BERT ONNX model: block " + l + " of " + numLayers + " is incomplete, missing "
                        + missing + " (blocks found: " + layers + ")");
            }
        }

        long[] word = dims(inits, names, BertNaming.WORD_EMBEDDINGS);
        long[] pos = dims(inits, names, BertNaming.POSITION_EMBEDDINGS);
        long[] type = dims(inits, names, BertNaming.TOKEN_TYPE_EMBEDDINGS);
        long[] inter = dims(inits, names, BertNaming.Projection.INTERMEDIATE.bias(0));
        requireRank(BertNaming.WORD_EMBEDDINGS, word, 2);
        requireRank(BertNaming.POSITION_EMBEDDINGS, pos, 2);
        requireRank(BertNaming.TOKEN_TYPE_EMBEDDINGS, type, 2);
        requireRank(BertNaming.Projection.INTERMEDIATE.bias(0), inter, 1);
        int hidden = (int) word[1];
        int heads = numHeads > 0 ? numHeads : deriveNumHeads(g, inits, hidden);
        BertConfig config = new BertConfig((int) word[0], hidden, numLayers, heads, (int) inter[0], (int) pos[0],
                (int) type[0], deriveLayerNormEps(g, inits));

        Map<String, long[]> expected = expectedShapes(config);
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        Map<String, String> sources = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            String name = e.getKey();
            BertNaming.OnnxSource src = names.get(name);
            Onnx.TensorProto t = inits.get(src.initializer());
            INDArray a = toArray(t, name);
            if (src.transposed()) {
                a = a.transpose().dup('c');
            }
            if (!Arrays.equals(a.shape(), e.getValue())) {
                throw new IllegalArgumentException("BERT ONNX model: tensor '" + name + "' (initializer '" + src.initializer()
                        + "'" + (src.transposed() ? ", transposed" : "") + ", via " + src.evidence() + "): expected shape "
                        + Arrays.toString(e.getValue()) + " for " + config + ", got " + Arrays.toString(a.shape()));
            }
            tensors.put(name, a);
            sources.put(name, src.initializer() + (src.transposed() ? " (transposed)" : ""));
        }
        return new BertWeights(config, tensors, sources);
    }

    /** Every tensor an encoder of this config needs, with its shape in {@link BertWeights}' orientation. */
    public static Map<String, long[]> expectedShapes(BertConfig c) {
        long h = c.hidden();
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put(BertNaming.WORD_EMBEDDINGS, new long[]{c.vocabSize(), h});
        m.put(BertNaming.POSITION_EMBEDDINGS, new long[]{c.maxPositions(), h});
        m.put(BertNaming.TOKEN_TYPE_EMBEDDINGS, new long[]{c.typeVocabSize(), h});
        m.put(BertNaming.EMBEDDINGS_LN_WEIGHT, new long[]{h});
        m.put(BertNaming.EMBEDDINGS_LN_BIAS, new long[]{h});
        for (int l = 0; l < c.numLayers(); l++) {
            for (BertNaming.Projection p : BertNaming.Projection.values()) {
                long in = p == BertNaming.Projection.OUTPUT ? c.intermediate() : h;
                long out = p == BertNaming.Projection.INTERMEDIATE ? c.intermediate() : h;
                m.put(p.weight(l), new long[]{in, out});
                m.put(p.bias(l), new long[]{out});
            }
            for (BertNaming.Norm n : BertNaming.Norm.values()) {
                m.put(n.weight(l), new long[]{h});
                m.put(n.bias(l), new long[]{h});
            }
        }
        return m;
    }

    private static IllegalArgumentException notBert(Onnx.GraphProto g, Map<String, Onnx.TensorProto> inits, String why) {
        List<String> found = new ArrayList<>();
        for (String n : inits.keySet()) {
            if (found.size() == 12) {
                found.add("...");
                break;
            }
            found.add(n + Arrays.toString(inits.get(n).getDimsList().toArray()));
        }
        List<String> inputs = new ArrayList<>();
        for (Onnx.ValueInfoProto v : g.getInputList()) {
            inputs.add(v.getName());
        }
        return new IllegalArgumentException("Not a BERT-family ONNX model: " + why + ". Found " + inits.size()
                + " initializers " + found + ", graph inputs " + inputs + ", " + g.getNodeCount() + " nodes");
    }

    private static long[] dims(Map<String, Onnx.TensorProto> inits, Map<String, BertNaming.OnnxSource> names, String name) {
        BertNaming.OnnxSource s = names.get(name);
        Onnx.TensorProto t = inits.get(s.initializer());
        long[] d = new long[t.getDimsCount()];
        for (int i = 0; i < d.length; i++) {
            d[i] = t.getDims(i);
        }
        if (s.transposed() && d.length == 2) {
            d = new long[]{d[1], d[0]};
        }
        return d;
    }

    private static void requireRank(String name, long[] shape, int rank) {
        if (shape.length != rank) {
            throw new IllegalArgumentException("BERT ONNX model: tensor '" + name + "': expected rank " + rank + ", got shape "
                    + Arrays.toString(shape));
        }
    }

    /** Decodes a float32/float64 tensor into a float32 array of its shape. */
    static INDArray toArray(Onnx.TensorProto t, String name) {
        if (t.getDataLocation() == Onnx.TensorProto.DataLocation.EXTERNAL) {
            throw new IllegalArgumentException("tensor '" + name + "' (initializer '" + t.getName()
                    + "'): external data files are not supported; save the model with its weights inside");
        }
        long[] shape = new long[t.getDimsCount()];
        long n = 1;
        for (int i = 0; i < shape.length; i++) {
            shape[i] = t.getDims(i);
            n *= shape[i];
        }
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor '" + name + "': " + n + " elements is too many for one array");
        }
        float[] f = new float[(int) n];
        int dt = t.getDataType();
        if (dt == Onnx.TensorProto.DataType.FLOAT.getNumber()) {
            if (!t.getRawData().isEmpty()) {
                checkBytes(t, name, n, 4);
                t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
            } else {
                checkCount(t, name, n, t.getFloatDataCount());
                for (int i = 0; i < f.length; i++) {
                    f[i] = t.getFloatData(i);
                }
            }
        } else if (dt == Onnx.TensorProto.DataType.DOUBLE.getNumber()) {
            if (!t.getRawData().isEmpty()) {
                checkBytes(t, name, n, 8);
                ByteBuffer bb = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; i < f.length; i++) {
                    f[i] = (float) bb.getDouble();
                }
            } else {
                checkCount(t, name, n, t.getDoubleDataCount());
                for (int i = 0; i < f.length; i++) {
                    f[i] = (float) t.getDoubleData(i);
                }
            }
        } else {
            throw new IllegalArgumentException("tensor '" + name + "' (initializer '" + t.getName() + "'): expected FLOAT or DOUBLE, got "
                    + Onnx.TensorProto.DataType.forNumber(dt));
        }
        INDArray a = Nd4j.createFromArray(f);
        return shape.length == 0 ? Nd4j.scalar(f[0]) : a.reshape('c', shape);
    }

    private static void checkBytes(Onnx.TensorProto t, String name, long n, int width) {
        if (t.getRawData().size() != n * width) {
            throw new IllegalArgumentException("tensor '" + name + "' (initializer '" + t.getName() + "'): expected " + n * width
                    + " bytes of raw_data for shape " + t.getDimsList() + ", got " + t.getRawData().size());
        }
    }

    private static void checkCount(Onnx.TensorProto t, String name, long n, int count) {
        if (count != n) {
            throw new IllegalArgumentException("tensor '" + name + "' (initializer '" + t.getName() + "'): expected " + n
                    + " values for shape " + t.getDimsList() + ", got " + count);
        }
    }

    /**
     * {@code headSize} from the constant that scales the attention scores in front of the first Softmax
     * ({@code Div} by √headSize or {@code Mul} by 1/√headSize), then {@code hidden / headSize}.
     */
    static int deriveNumHeads(Onnx.GraphProto g, Map<String, Onnx.TensorProto> inits, int hidden) {
        Map<String, Onnx.NodeProto> producers = producers(g);
        for (Onnx.NodeProto n : g.getNodeList()) {
            if (!n.getOpType().equals("Softmax")) {
                continue;
            }
            Deque<String> todo = new ArrayDeque<>(List.of(n.getInput(0)));
            for (int steps = 0; steps < 8 && !todo.isEmpty(); steps++) {
                Onnx.NodeProto p = producers.get(todo.poll());
                if (p == null) {
                    continue;
                }
                if ((p.getOpType().equals("Div") || p.getOpType().equals("Mul")) && p.getInputCount() == 2) {
                    Double c = scalarConstant(p.getInput(1), producers, inits);
                    if (c != null && c > 0) {
                        double headSize = p.getOpType().equals("Div") ? c * c : 1.0 / (c * c);
                        long hs = Math.round(headSize);
                        if (hs >= 1 && Math.abs(headSize - hs) < 1e-3 * hs && hidden % hs == 0) {
                            return (int) (hidden / hs);
                        }
                    }
                }
                if (p.getOpType().equals("Add") || p.getOpType().equals("Where")) {
                    todo.addAll(p.getInputList()); // past the additive attention mask
                }
            }
            break; // only the first attention is inspected
        }
        throw new IllegalArgumentException("BERT ONNX model: cannot derive the number of attention heads from the graph"
                + " (no Softmax preceded by a constant 1/sqrt(headSize) scale); pass numHeads explicitly");
    }

    /**
     * The LayerNorm epsilon: {@code LayerNormalization}'s attribute, or the scalar added to the variance before
     * {@code Sqrt} in a decomposed LayerNorm; BERT's 1e-12 when the graph shows neither. All LayerNorms must agree.
     */
    static double deriveLayerNormEps(Onnx.GraphProto g, Map<String, Onnx.TensorProto> inits) {
        Map<String, Onnx.NodeProto> producers = producers(g);
        List<Double> found = new ArrayList<>();
        for (Onnx.NodeProto n : g.getNodeList()) {
            if (n.getOpType().endsWith("LayerNormalization")) {
                for (Onnx.AttributeProto a : n.getAttributeList()) {
                    if (a.getName().equals("epsilon")) {
                        found.add((double) a.getF());
                    }
                }
            } else if (n.getOpType().equals("Sqrt")) {
                Onnx.NodeProto add = producers.get(n.getInput(0));
                if (add != null && add.getOpType().equals("Add") && add.getInputCount() == 2) {
                    for (int i = 0; i < 2; i++) {
                        Onnx.NodeProto mean = producers.get(add.getInput(i));
                        Double c = scalarConstant(add.getInput(1 - i), producers, inits);
                        if (mean != null && mean.getOpType().equals("ReduceMean") && c != null) {
                            found.add(c);
                        }
                    }
                }
            }
        }
        if (found.isEmpty()) {
            return BertConfig.BERT_LAYER_NORM_EPS;
        }
        double eps = found.get(0);
        for (double e : found) {
            if (Math.abs(e - eps) > 1e-3 * eps) {
                throw new IllegalArgumentException("BERT ONNX model: the LayerNorms use different epsilons " + found
                        + "; expected one value");
            }
        }
        return eps;
    }

    private static Map<String, Onnx.NodeProto> producers(Onnx.GraphProto g) {
        Map<String, Onnx.NodeProto> m = new HashMap<>();
        for (Onnx.NodeProto n : g.getNodeList()) {
            for (String o : n.getOutputList()) {
                m.put(o, n);
            }
        }
        return m;
    }

    /** The value of a one-element float tensor from a {@code Constant} node or an initializer, else null. */
    private static Double scalarConstant(String name, Map<String, Onnx.NodeProto> producers, Map<String, Onnx.TensorProto> inits) {
        Onnx.TensorProto t = inits.get(name);
        if (t == null) {
            Onnx.NodeProto p = producers.get(name);
            if (p == null || !p.getOpType().equals("Constant")) {
                return null;
            }
            for (Onnx.AttributeProto a : p.getAttributeList()) {
                if (a.getName().equals("value") && a.hasT()) {
                    t = a.getT();
                } else if (a.getName().equals("value_float")) {
                    return (double) a.getF();
                }
            }
        }
        if (t == null) {
            return null;
        }
        int dt = t.getDataType();
        if (dt != Onnx.TensorProto.DataType.FLOAT.getNumber() && dt != Onnx.TensorProto.DataType.DOUBLE.getNumber()) {
            return null;
        }
        INDArray a = toArray(t, name);
        return a.length() == 1 ? a.getDouble(0) : null;
    }
}
