package org.prilora.bert;

import onnx.Onnx;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The one place that knows the names of a BERT checkpoint: the Hugging Face state-dict names of every tensor
 * (our "roles"), the PEFT module names of the six adapted projections per block (the adapted module names used
 * for PEFT export), the optional pooler ({@link #POOLER}, resolved through the graph like the projections), the
 * parameter key prefixes of {@link PriLoraBertBlock}, and how the tensors of an ONNX
 * export map back to those names.
 *
 * <h2>ONNX exports</h2>
 * {@code torch.onnx.export} keeps the state-dict names for tensors used as they are (embeddings, biases,
 * LayerNorm), but constant-folds each linear weight's transpose into a new initializer named like
 * {@code onnx::MatMul_787}, stored {@code [in, out]} and consumed by a {@code MatMul}. {@link #resolveOnnx}
 * recovers the module of such a weight by following the graph, in this order of trust:
 * <ol>
 *   <li>the initializer's own name, when it is {@code <module>.weight};</li>
 *   <li>the bias of the same module: the {@code Add} that consumes the {@code MatMul}'s output (or the
 *       {@code Gemm}'s third input) has an initializer named {@code <module>.bias};</li>
 *   <li>the node's scope name, {@code /encoder/layer.0/attention/self/query/MatMul} →
 *       {@code encoder.layer.0.attention.self.query}.</li>
 * </ol>
 * Every clue that is present must agree. The orientation comes from the consumer: a weight that is the
 * second {@code MatMul} input is {@code [in, out]} (DL4J's orientation, used as is); a {@code Gemm} with
 * {@code transB=1} or a {@code Transpose} in between means PyTorch's {@code [out, in]}. A {@code <module>.weight}
 * that no {@code MatMul}/{@code Gemm} consumes is taken as PyTorch's {@code [out, in]}. A common name prefix
 * (as in {@code bert.embeddings...} of a task model) is removed.
 */
public final class BertNaming {

    /** Word embedding table {@code [vocab, hidden]}. */
    public static final String WORD_EMBEDDINGS = "embeddings.word_embeddings.weight";
    /** Position embedding table {@code [maxPositions, hidden]}. */
    public static final String POSITION_EMBEDDINGS = "embeddings.position_embeddings.weight";
    /** Token type embedding table {@code [typeVocab, hidden]}. */
    public static final String TOKEN_TYPE_EMBEDDINGS = "embeddings.token_type_embeddings.weight";
    /** Embedding LayerNorm gain {@code [hidden]}. */
    public static final String EMBEDDINGS_LN_WEIGHT = "embeddings.LayerNorm.weight";
    /** Embedding LayerNorm bias {@code [hidden]}. */
    public static final String EMBEDDINGS_LN_BIAS = "embeddings.LayerNorm.bias";

    /** The five embedding tensors, in the order {@link BertEmbeddings} declares them. */
    public static final List<String> EMBEDDING_TENSORS = List.of(WORD_EMBEDDINGS, POSITION_EMBEDDINGS,
            TOKEN_TYPE_EMBEDDINGS, EMBEDDINGS_LN_WEIGHT, EMBEDDINGS_LN_BIAS);

    /** The pooler's module ({@code BertPooler}: dense + tanh on the {@code [CLS]} vector); not every export has it. */
    public static final String POOLER = "pooler.dense";
    /** Pooler weight {@code [hidden, hidden]}, held in DL4J orientation {@code [in, out]}. */
    public static final String POOLER_WEIGHT = POOLER + ".weight";
    /** Pooler bias {@code [hidden]}. */
    public static final String POOLER_BIAS = POOLER + ".bias";

    private static final String LAYER_PREFIX = "encoder.layer.";
    private static final Pattern LAYER = Pattern.compile("^encoder\\.layer\\.(\\d+)\\.(.+)$");

    private BertNaming() {
    }

    /** A sub-module of a BERT block with a weight and a bias in the state dict. */
    public interface BlockTensors {
        /** The sub-module's name inside a block ({@code attention.self.query}, {@code output.LayerNorm} …). */
        String subModule();

        /** The Hugging Face module name, {@code encoder.layer.<layer>.<subModule>}. */
        default String module(int layer) {
            return layerName(layer) + "." + subModule();
        }

        /** The state-dict name of the weight (a projection's is stored here in DL4J orientation {@code [in, out]}). */
        default String weight(int layer) {
            return module(layer) + ".weight";
        }

        /** The state-dict name of the bias. */
        default String bias(int layer) {
            return module(layer) + ".bias";
        }
    }

    /** The six linear projections of a BERT block, each one adapted module. */
    public enum Projection implements BlockTensors {
        QUERY("attention.self.query", "q"),
        KEY("attention.self.key", "k"),
        VALUE("attention.self.value", "v"),
        ATTENTION_OUTPUT("attention.output.dense", "ao"),
        INTERMEDIATE("intermediate.dense", "i"),
        OUTPUT("output.dense", "o");

        private final String siteName;
        private final String paramPrefix;

        Projection(String siteName, String paramPrefix) {
            this.siteName = siteName;
            this.paramPrefix = paramPrefix;
        }

        /** The sub-module name inside a block, used as the adapted module's name ({@code attention.self.query} …). */
        public String siteName() {
            return siteName;
        }

        @Override
        public String subModule() {
            return siteName;
        }

        /**
         * Prefix of the block's parameter keys for this projection, passed to {@code AdapterKeys.module}
         * ({@code qW}, {@code qloraA} …). Keys hold no underscore: DL4J's updater splits gradient keys
         * {@code <layer>_<param>} at the last one.
         */
        public String paramPrefix() {
            return paramPrefix;
        }

    }

    /** The two LayerNorms of a BERT block (post-LN: after the attention residual and after the FFN residual). */
    public enum Norm implements BlockTensors {
        ATTENTION_OUTPUT("attention.output.LayerNorm", "ln1"),
        OUTPUT("output.LayerNorm", "ln2");

        private final String subModule;
        private final String paramPrefix;

        Norm(String subModule, String paramPrefix) {
            this.subModule = subModule;
            this.paramPrefix = paramPrefix;
        }

        @Override
        public String subModule() {
            return subModule;
        }

        /** Parameter key of the gain in {@link PriLoraBertBlock} ({@code ln1g}). */
        public String gainKey() {
            return paramPrefix + "g";
        }

        /** Parameter key of the bias in {@link PriLoraBertBlock} ({@code ln1b}). */
        public String biasKey() {
            return paramPrefix + "b";
        }
    }

    /** {@code encoder.layer.<layer>}: the block's module name, also its DL4J layer name. */
    public static String layerName(int layer) {
        if (layer < 0) {
            throw new IllegalArgumentException("layer: expected >= 0, got " + layer);
        }
        return LAYER_PREFIX + layer;
    }

    /** The six PEFT module names of a block, in {@link Projection} order. */
    public static List<String> peftModules(int layer) {
        List<String> out = new ArrayList<>();
        for (Projection p : Projection.values()) {
            out.add(p.module(layer));
        }
        return out;
    }

    /** The sixteen state-dict names of one block. */
    public static List<String> blockTensors(int layer) {
        List<String> out = new ArrayList<>();
        for (Projection p : Projection.values()) {
            out.add(p.weight(layer));
            out.add(p.bias(layer));
        }
        for (Norm n : Norm.values()) {
            out.add(n.weight(layer));
            out.add(n.bias(layer));
        }
        return out;
    }

    /** The block index of a state-dict name {@code encoder.layer.N....}, or -1 for other names (and for N beyond int). */
    public static int layerIndexOf(String name) {
        Matcher m = LAYER.matcher(name);
        if (!m.matches()) {
            return -1;
        }
        try {
            return Integer.parseInt(m.group(1));
        } catch (NumberFormatException tooLarge) {
            return -1;
        }
    }

    /** Whether {@code module} is one of the six projections of some block. */
    public static boolean isProjectionModule(String module) {
        Matcher m = LAYER.matcher(module);
        if (!m.matches()) {
            return false;
        }
        for (Projection p : Projection.values()) {
            if (p.siteName.equals(m.group(2))) {
                return true;
            }
        }
        return false;
    }

    /** A module whose weight is a linear map: one of the six projections of a block, or the pooler. */
    static boolean isLinearModule(String module) {
        return POOLER.equals(module) || isProjectionModule(module);
    }

    /**
     * Where one state-dict tensor lives in an ONNX graph.
     *
     * @param initializer the initializer's name in the file
     * @param transposed  true when the stored matrix is PyTorch's {@code [out, in]} and must be transposed to
     *                    DL4J's {@code [in, out]}; always false for non-matrix tensors
     * @param evidence    how the name was resolved (for error messages and logs)
     */
    public record OnnxSource(String initializer, boolean transposed, String evidence) {
    }

    /**
     * Maps state-dict names (without any model prefix such as {@code bert.}) to the initializers of an ONNX graph
     * that hold them. Names that are not BERT tensors are still listed under their own name (prefix removed); the
     * caller decides what is required. See the class comment for how linear weights are resolved.
     *
     * @throws IllegalArgumentException when the clues for one weight disagree or two initializers claim one name
     */
    public static Map<String, OnnxSource> resolveOnnx(Onnx.GraphProto graph) {
        Map<String, Onnx.TensorProto> inits = new LinkedHashMap<>();
        for (Onnx.TensorProto t : graph.getInitializerList()) {
            inits.put(t.getName(), t);
        }
        String prefix = modelPrefix(inits.keySet());
        Map<String, List<Onnx.NodeProto>> consumers = new HashMap<>();
        Map<String, Onnx.NodeProto> producers = new HashMap<>();
        for (Onnx.NodeProto n : graph.getNodeList()) {
            for (String in : n.getInputList()) {
                consumers.computeIfAbsent(in, k -> new ArrayList<>()).add(n);
            }
            for (String o : n.getOutputList()) {
                producers.putIfAbsent(o, n); // the first producer, as a scan of the node list finds it
            }
        }

        Map<String, OnnxSource> out = new LinkedHashMap<>();
        // 1. Linear weights, found through the MatMul/Gemm nodes that consume an initializer.
        for (Onnx.NodeProto n : graph.getNodeList()) {
            boolean gemm = n.getOpType().equals("Gemm");
            if (!(gemm || n.getOpType().equals("MatMul")) || n.getInputCount() < 2) {
                continue;
            }
            String wIn = n.getInput(1);
            boolean transposed = false;
            String init = null;
            if (inits.containsKey(wIn)) {
                init = wIn;
            } else {
                Onnx.NodeProto producer = producers.get(wIn);
                if (producer != null && producer.getOpType().equals("Transpose") && producer.getInputCount() == 1
                        && inits.containsKey(producer.getInput(0))) {
                    init = producer.getInput(0);
                    transposed = true;
                }
            }
            if (init == null || inits.get(init).getDimsCount() != 2) {
                continue; // activation × activation (attention scores) or not a matrix
            }
            if (gemm && intAttribute(n, "transB", 0) == 1) {
                transposed = !transposed;
            }
            String module = moduleOfLinear(n, init, prefix, inits, consumers, gemm);
            if (module == null) {
                continue;
            }
            String name = module + ".weight";
            OnnxSource src = new OnnxSource(init, transposed, n.getOpType() + " node '" + n.getName() + "'");
            OnnxSource prev = out.put(name, src);
            if (prev != null && !prev.initializer().equals(init)) {
                throw new IllegalArgumentException("ONNX graph: both initializers '" + prev.initializer() + "' and '" + init
                        + "' resolve to '" + name + "'");
            }
        }
        // 2. Everything else keeps its own name; a projection weight no MatMul/Gemm consumed is PyTorch [out, in].
        java.util.Set<String> claimed = new java.util.HashSet<>();
        out.values().forEach(src -> claimed.add(src.initializer()));
        for (String init : inits.keySet()) {
            if (!init.startsWith(prefix)) {
                continue;
            }
            String name = init.substring(prefix.length());
            if (out.containsKey(name) || claimed.contains(init)) {
                continue;
            }
            boolean projWeight = name.endsWith(".weight") && isLinearModule(name.substring(0, name.length() - 7));
            out.put(name, new OnnxSource(init, projWeight, "initializer name"));
        }
        return out;
    }

    /** The prefix before {@code embeddings.word_embeddings.weight} ({@code ""} or e.g. {@code "bert."}). */
    static String modelPrefix(Iterable<String> names) {
        for (String n : names) {
            if (n.equals(WORD_EMBEDDINGS)) {
                return "";
            }
        }
        for (String n : names) {
            if (n.endsWith("." + WORD_EMBEDDINGS)) {
                return n.substring(0, n.length() - WORD_EMBEDDINGS.length());
            }
        }
        return "";
    }

    /** The projection module of a linear node, or null when it is not one of a BERT block's six. */
    private static String moduleOfLinear(Onnx.NodeProto node, String init, String prefix, Map<String, Onnx.TensorProto> inits,
                                         Map<String, List<Onnx.NodeProto>> consumers, boolean gemm) {
        List<String[]> clues = new ArrayList<>(); // {module, evidence}
        if (init.endsWith(".weight")) {
            clues.add(new String[]{strip(init.substring(0, init.length() - 7), prefix), "weight name '" + init + "'"});
        }
        String biasName = null;
        if (gemm && node.getInputCount() > 2 && inits.containsKey(node.getInput(2))) {
            biasName = node.getInput(2);
        } else if (node.getOutputCount() == 1) {
            for (Onnx.NodeProto c : consumers.getOrDefault(node.getOutput(0), List.of())) {
                if (c.getOpType().equals("Add")) {
                    for (String in : c.getInputList()) {
                        if (inits.containsKey(in) && in.endsWith(".bias")) {
                            biasName = in;
                        }
                    }
                }
            }
        }
        if (biasName != null && biasName.endsWith(".bias")) {
            clues.add(new String[]{strip(biasName.substring(0, biasName.length() - 5), prefix), "bias '" + biasName + "'"});
        }
        String scope = scopeModule(node.getName());
        if (scope != null) {
            clues.add(new String[]{strip(scope, prefix), "node scope '" + node.getName() + "'"});
        }
        String module = null;
        String evidence = null;
        for (String[] c : clues) {
            if (!isLinearModule(c[0])) {
                continue;
            }
            if (module == null) {
                module = c[0];
                evidence = c[1];
            } else if (!module.equals(c[0])) {
                throw new IllegalArgumentException("ONNX graph: initializer '" + init + "' of " + node.getOpType() + " node '"
                        + node.getName() + "' resolves to module '" + module + "' by " + evidence + " but to '" + c[0]
                        + "' by " + c[1]);
            }
        }
        return module;
    }

    /** {@code /bert/encoder/layer.0/attention/self/query/MatMul} → {@code bert.encoder.layer.0.attention.self.query}. */
    private static String scopeModule(String nodeName) {
        if (nodeName == null || !nodeName.startsWith("/")) {
            return null;
        }
        int last = nodeName.lastIndexOf('/');
        if (last <= 0) {
            return null;
        }
        return nodeName.substring(1, last).replace('/', '.');
    }

    private static String strip(String name, String prefix) {
        return !prefix.isEmpty() && name.startsWith(prefix) ? name.substring(prefix.length()) : name;
    }

    private static long intAttribute(Onnx.NodeProto n, String name, long dflt) {
        for (Onnx.AttributeProto a : n.getAttributeList()) {
            if (a.getName().equals(name)) {
                return a.getI();
            }
        }
        return dflt;
    }
}
