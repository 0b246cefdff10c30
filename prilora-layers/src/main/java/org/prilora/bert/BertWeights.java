package org.prilora.bert;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The pretrained tensors of a BERT-family encoder, keyed by Hugging Face state-dict name (see
 * {@link BertNaming}), with the {@link BertConfig} they fit. Linear weights ({@code ...query.weight} …) are
 * held in DL4J orientation {@code [in, out]}, i.e. transposed relative to the PyTorch state dict; biases and
 * LayerNorm vectors are 1-D {@code [n]}; embedding tables are {@code [rows, hidden]}.
 *
 * <p>Built by {@link OnnxBertReader}, which has checked every shape against the config.
 */
public final class BertWeights {

    private final BertConfig config;
    private final Map<String, INDArray> tensors;
    private final Map<String, String> sources;

    /**
     * @param config  the hyperparameters the tensors fit
     * @param tensors state-dict name → array (copied into an unmodifiable ordered map; arrays are not copied)
     * @param sources state-dict name → where it came from (e.g. the ONNX initializer), for messages; may be empty
     */
    public BertWeights(BertConfig config, Map<String, INDArray> tensors, Map<String, String> sources) {
        this.config = Objects.requireNonNull(config, "config");
        this.tensors = Collections.unmodifiableMap(new LinkedHashMap<>(Objects.requireNonNull(tensors, "tensors")));
        this.sources = Collections.unmodifiableMap(new LinkedHashMap<>(Objects.requireNonNull(sources, "sources")));
    }

    public BertConfig config() {
        return config;
    }

    /** The tensor with this state-dict name. */
    public INDArray get(String name) {
        INDArray a = tensors.get(name);
        if (a == null) {
            throw new IllegalArgumentException("BertWeights: no tensor named '" + name + "' (have " + tensors.size()
                    + " tensors, e.g. " + tensors.keySet().stream().limit(6).toList() + ")");
        }
        return a;
    }

    /** Whether the checkpoint has BERT's pooler ({@link BertNaming#POOLER_WEIGHT} and {@link BertNaming#POOLER_BIAS}). */
    public boolean hasPooler() {
        return tensors.containsKey(BertNaming.POOLER_WEIGHT) && tensors.containsKey(BertNaming.POOLER_BIAS);
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /** All state-dict names, in file order. */
    public Set<String> names() {
        return tensors.keySet();
    }

    /** Read-only view of all tensors. */
    public Map<String, INDArray> asMap() {
        return tensors;
    }

    /** Where a tensor came from (the ONNX initializer name, and whether it was transposed), or null. */
    public String sourceOf(String name) {
        return sources.get(name);
    }

    /** Shape of a tensor, for messages. */
    public String shapeOf(String name) {
        return Arrays.toString(get(name).shape());
    }
}
