package org.prilora.bert;

import onnx.Onnx;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.shade.protobuf.CodedInputStream;
import org.nd4j.shade.protobuf.InvalidProtocolBufferException;

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
 * <p>The pooler ({@code pooler.dense}, dense + tanh on {@code [CLS]}) is read when the file has it and left out
 * otherwise ({@link BertWeights#hasPooler()}); the sentence-embedding exports of all-MiniLM-L6-v2 and
 * bge-small-en-v1.5 have none.
 *
 * <p>Only float32 (or float64) tensors stored inside the file are supported, from {@code raw_data}
 * (little-endian) or {@code float_data}/{@code double_data}. Quantized models (8-bit weights behind
 * {@code DequantizeLinear}, {@code MatMulInteger}, {@code QLinearMatMul} … nodes, such as the {@code -q} variants of
 * langchain4j's embedding models) are rejected with a message naming their quantized tensors.
 *
 * <p>Errors: bytes that are not a protobuf {@code ModelProto} give an {@link IOException} (protobuf's
 * {@code InvalidProtocolBufferException}); a model that parses but is not a readable BERT-family encoder gives an
 * {@link IllegalArgumentException} whose message says what was expected and what was found.
 */
public final class OnnxBertReader {

    /** ONNX files above protobuf's default 64 MiB message limit (the MiniLM file is 90 MB) need a higher one. */
    private static final int SIZE_LIMIT = Integer.MAX_VALUE;
    private static final int MAX_RANK = 32;

    private OnnxBertReader() {
    }

    /**
     * Reads a file, deriving the number of heads from the graph.
     *
     * @throws IOException              if the file cannot be read or is not an ONNX protobuf
     * @throws IllegalArgumentException if the model is not a readable BERT-family encoder (see the class comment)
     */
    public static BertWeights read(Path onnxFile) throws IOException {
        return read(onnxFile, 0);
    }

    /**
     * Reads a file; {@code numHeads > 0} overrides the value derived from the graph.
     *
     * @throws IOException              if the file cannot be read or is not an ONNX protobuf
     * @throws IllegalArgumentException if the model is not a readable BERT-family encoder
     */
    public static BertWeights read(Path onnxFile, int numHeads) throws IOException {
        try (InputStream in = new BufferedInputStream(Files.newInputStream(onnxFile), 1 << 20)) {
            return read(in, numHeads);
        }
    }

    /**
     * Reads a model from a stream (not closed), deriving the number of heads from the graph.
     *
     * @throws IOException              if the stream fails or does not hold an ONNX protobuf
     * @throws IllegalArgumentException if the model is not a readable BERT-family encoder
     */
    public static BertWeights read(InputStream in) throws IOException {
        return read(in, 0);
    }

    /**
     * Reads a model from a stream (not closed); {@code numHeads > 0} overrides the value derived from the graph.
     *
     * @throws IOException              if the stream fails or does not hold an ONNX protobuf
     * @throws IllegalArgumentException if the model is not a readable BERT-family encoder
     */
    public static BertWeights read(InputStream in, int numHeads) throws IOException {
        return read(parse(in), numHeads);
    }

    /**
     * Parses an ONNX {@code ModelProto}, with the protobuf size limit raised for large models.
     *
     * @throws IOException              if the stream fails or does not hold a protobuf message
     * @throws IllegalArgumentException if the message has no graph
     */
    public static Onnx.ModelProto parse(InputStream in) throws IOException {
        CodedInputStream cis = CodedInputStream.newInstance(in);
        cis.setSizeLimit(SIZE_LIMIT);
        Onnx.ModelProto m;
        try {
            m = Onnx.ModelProto.parseFrom(cis);
        } catch (RuntimeException e) {
            // ND4J's shaded protobuf fails on some corrupt lengths with an IllegalStateException (a negative string
            // length reaches refillBuffer) instead of its InvalidProtocolBufferException
            throw new InvalidProtocolBufferException("Not an ONNX model: the protobuf decoder failed at byte "
                    + cis.getTotalBytesRead() + " (" + e + ")");
        }
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
        rejectQuantized(g, inits);
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
        if (layers.last() == Integer.MAX_VALUE) { // the block count would overflow and skip the completeness check
            throw new IllegalArgumentException("BERT ONNX model: block index " + layers.last() + " is out of range (blocks found: "
                    + layers.size() + ", the first " + layers.first() + ")");
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
        int hidden = size(BertNaming.WORD_EMBEDDINGS, word, 1);
        int heads = numHeads > 0 ? numHeads : deriveNumHeads(g, inits, hidden);
        BertConfig config = new BertConfig(size(BertNaming.WORD_EMBEDDINGS, word, 0), hidden, numLayers, heads,
                size(BertNaming.Projection.INTERMEDIATE.bias(0), inter, 0), size(BertNaming.POSITION_EMBEDDINGS, pos, 0),
                size(BertNaming.TOKEN_TYPE_EMBEDDINGS, type, 0), deriveLayerNormEps(g, inits));

        Map<String, long[]> expected = expectedShapes(config);
        // the pooler is optional (sentence-embedding exports drop it); when one of its tensors is there, both must be
        boolean poolerWeight = names.containsKey(BertNaming.POOLER_WEIGHT);
        boolean poolerBias = names.containsKey(BertNaming.POOLER_BIAS);
        if (poolerWeight != poolerBias) {
            throw new IllegalArgumentException("BERT ONNX model: the pooler is incomplete, found '" + (poolerWeight
                    ? BertNaming.POOLER_WEIGHT : BertNaming.POOLER_BIAS) + "' but not '" + (poolerWeight
                    ? BertNaming.POOLER_BIAS : BertNaming.POOLER_WEIGHT) + "'");
        }
        if (poolerWeight) {
            expected.put(BertNaming.POOLER_WEIGHT, new long[]{hidden, hidden});
            expected.put(BertNaming.POOLER_BIAS, new long[]{hidden});
        }
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        Map<String, String> sources = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            String name = e.getKey();
            BertNaming.OnnxSource src = names.get(name);
            Onnx.TensorProto t = inits.get(src.initializer());
            long[] stored = dims(inits, names, name);
            if (src.transposed() && stored.length != 2) {
                stored = reversed(stored);
            }
            // the shape is checked before any data is decoded, so a hostile shape allocates nothing
            if (!Arrays.equals(stored, e.getValue())) {
                throw new IllegalArgumentException("BERT ONNX model: tensor '" + name + "' (initializer '" + src.initializer()
                        + "'" + (src.transposed() ? ", transposed" : "") + ", via " + src.evidence() + "): expected shape "
                        + Arrays.toString(e.getValue()) + " for " + config + ", got " + Arrays.toString(stored));
            }
            INDArray a = toArray(t, name);
            if (src.transposed()) {
                a = a.transpose().dup('c');
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

    /**
     * Operators of ONNX's quantized formats (QDQ, integer and QLinear operators, onnxruntime's contrib operators), each
     * with the input positions that carry quantized data (the others are scales and zero points).
     */
    private static final Map<String, int[]> QUANTIZED_OPS = Map.ofEntries(
            Map.entry("DequantizeLinear", new int[]{0}), Map.entry("QuantizeLinear", new int[]{0}),
            Map.entry("DynamicQuantizeLinear", new int[]{0}), Map.entry("MatMulInteger", new int[]{0, 1}),
            Map.entry("ConvInteger", new int[]{0, 1}), Map.entry("MatMulIntegerToFloat", new int[]{0, 1}),
            Map.entry("QLinearMatMul", new int[]{0, 3}), Map.entry("QLinearConv", new int[]{0, 3}),
            Map.entry("QGemm", new int[]{0, 3}), Map.entry("DynamicQuantizeMatMul", new int[]{1}),
            Map.entry("MatMulNBits", new int[]{1}), Map.entry("GatherBlockQuantized", new int[]{0}),
            Map.entry("QAttention", new int[]{1}), Map.entry("QEmbedLayerNormalization", new int[]{2, 3, 4}),
            Map.entry("QOrderedMatMul", new int[]{0, 2}));

    /** Names of the quantized tensors shown in the message; the count is always given. */
    private static final int QUANTIZED_SHOWN = 5;

    /**
     * Rejects a quantized model up front: its weights are integers the reader cannot use, and without this check it
     * would be reported as "not a BERT-family model" for lack of the float tensors.
     */
    private static void rejectQuantized(Onnx.GraphProto g, Map<String, Onnx.TensorProto> inits) {
        Map<String, Integer> ops = new java.util.TreeMap<>();
        java.util.Set<String> tensors = new java.util.LinkedHashSet<>();
        for (Onnx.NodeProto n : g.getNodeList()) {
            if (!QUANTIZED_OPS.containsKey(n.getOpType())) {
                continue;
            }
            ops.merge(n.getOpType(), 1, Integer::sum);
            int[] data = QUANTIZED_OPS.get(n.getOpType());
            for (int i = 0; i < n.getInputCount(); i++) {
                Onnx.TensorProto t = inits.get(n.getInput(i));
                if (t != null && isLowBitInteger(t.getDataType()) && contains(data, i)) {
                    tensors.add(t.getName());
                }
            }
        }
        if (ops.isEmpty()) {
            return;
        }
        List<String> shown = new ArrayList<>();
        for (String name : tensors) {
            if (shown.size() == QUANTIZED_SHOWN) {
                shown.add("...");
                break;
            }
            Onnx.TensorProto t = inits.get(name);
            shown.add("'" + name + "' " + t.getDimsList() + " " + dataTypeName(t.getDataType()));
        }
        int nodes = ops.values().stream().mapToInt(Integer::intValue).sum();
        throw new IllegalArgumentException("Quantized ONNX model: quantized models are not supported, this reader needs float32"
                + " or float64 weights. The graph has " + nodes + " quantization node" + (nodes == 1 ? "" : "s") + " " + ops
                + (tensors.isEmpty() ? "" : " and " + tensors.size() + " quantized tensor" + (tensors.size() == 1 ? "" : "s")
                + " in all, e.g. " + String.join(", ", shown)) + ". Use the model's float (non-quantized) ONNX export"
                + " instead, e.g. all-minilm-l6-v2 rather than all-minilm-l6-v2-q.");
    }

    private static boolean contains(int[] values, int v) {
        for (int x : values) {
            if (x == v) {
                return true;
            }
        }
        return false;
    }

    /** 8-bit and 4-bit integers, the types quantized weights are stored in. */
    private static boolean isLowBitInteger(int dt) {
        return dt == Onnx.TensorProto.DataType.INT8.getNumber() || dt == Onnx.TensorProto.DataType.UINT8.getNumber()
                || dt == 21 || dt == 22; // UINT4, INT4 (ONNX 1.15; newer than ND4J's bundled enum)
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

    /** Dimension {@code i} of a tensor that sets a config size, which must fit an int. */
    private static int size(String name, long[] shape, int i) {
        if (shape[i] < 1 || shape[i] > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("BERT ONNX model: tensor '" + name + "' has shape " + Arrays.toString(shape)
                    + "; expected sizes from 1 to " + Integer.MAX_VALUE);
        }
        return (int) shape[i];
    }

    private static long[] reversed(long[] d) {
        long[] r = new long[d.length];
        for (int i = 0; i < d.length; i++) {
            r[i] = d[d.length - 1 - i];
        }
        return r;
    }

    private static void requireRank(String name, long[] shape, int rank) {
        if (shape.length != rank) {
            throw new IllegalArgumentException("BERT ONNX model: tensor '" + name + "': expected rank " + rank + ", got shape "
                    + Arrays.toString(shape));
        }
    }

    /** Decodes a float32/float64 tensor into a float32 array of its shape. */
    static INDArray toArray(Onnx.TensorProto t, String name) {
        String what = "tensor '" + name + "' (initializer '" + t.getName() + "')";
        if (t.getDataLocation() == Onnx.TensorProto.DataLocation.EXTERNAL) {
            throw new IllegalArgumentException(what + ": external data files are not supported; save the model with its weights inside");
        }
        int dt = t.getDataType();
        boolean isFloat = dt == Onnx.TensorProto.DataType.FLOAT.getNumber();
        if (!isFloat && dt != Onnx.TensorProto.DataType.DOUBLE.getNumber()) {
            throw new IllegalArgumentException(what + ": expected FLOAT or DOUBLE, got " + dataTypeName(dt));
        }
        if (t.getDimsCount() > MAX_RANK) {
            throw new IllegalArgumentException(what + ": rank " + t.getDimsCount() + " exceeds ND4J's maximum rank " + MAX_RANK);
        }
        long[] shape = new long[t.getDimsCount()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = t.getDims(i);
        }
        long n = elementCount(shape);
        if (n < 1 || n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(what + ": shape " + Arrays.toString(shape) + (n < 0 ? " has a negative or overflowing size"
                    : n == 0 ? " has no elements" : " has " + n + " elements, too many for one array") + "; expected 1 to "
                    + Integer.MAX_VALUE + " elements");
        }
        // the stored data is checked against the shape before the array is allocated
        boolean raw = !t.getRawData().isEmpty();
        if (raw) {
            checkBytes(t, name, n, isFloat ? 4 : 8);
        } else {
            checkCount(t, name, n, isFloat ? t.getFloatDataCount() : t.getDoubleDataCount());
        }
        float[] f = new float[(int) n];
        if (isFloat && raw) {
            t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
        } else if (isFloat) {
            for (int i = 0; i < f.length; i++) {
                f[i] = t.getFloatData(i);
            }
        } else if (raw) {
            ByteBuffer bb = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < f.length; i++) {
                f[i] = (float) bb.getDouble();
            }
        } else {
            for (int i = 0; i < f.length; i++) {
                f[i] = (float) t.getDoubleData(i);
            }
        }
        INDArray a = Nd4j.createFromArray(f);
        return shape.length == 0 ? Nd4j.scalar(f[0]) : a.reshape('c', shape);
    }

    /** The number of elements of a shape, or -1 when a dimension is negative or the product overflows. */
    private static long elementCount(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                return -1;
            }
            try {
                n = Math.multiplyExact(n, d);
            } catch (ArithmeticException overflow) {
                return -1;
            }
        }
        return n;
    }

    private static String dataTypeName(int dt) {
        Onnx.TensorProto.DataType t = Onnx.TensorProto.DataType.forNumber(dt);
        return t == null ? "data type " + dt : t.name();
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
            if (!n.getOpType().equals("Softmax") || n.getInputCount() == 0) {
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
            } else if (n.getOpType().equals("Sqrt") && n.getInputCount() > 0) {
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
        long[] shape = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
        if (elementCount(shape) != 1 || shape.length > MAX_RANK) {
            return null;
        }
        return toArray(t, name).getDouble(0);
    }
}
