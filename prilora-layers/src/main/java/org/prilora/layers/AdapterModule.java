package org.prilora.layers;

import org.deeplearning4j.nn.conf.layers.samediff.SDLayerParams;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.rng.Random;
import org.prilora.config.AdapterInit;
import org.prilora.ops.AdapterState;
import org.prilora.ops.LoraLinear;
import org.prilora.ops.ModuleState;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

/**
 * One adapted module (PEFT's word for an adapted projection) inside a PRILoRA layer: where its frozen weight, its
 * A and B, its input statistics and (in PERSISTENT_MASK mode) its mask live in the layer's parameter table
 * (keys from {@link AdapterKeys#module}). A {@link PriLoraDense} has one module; a {@link PriLoraSelfAttention} has
 * four (query, key, value, output), a BERT block six.
 *
 * @param name      module name inside the layer ({@code ""} for a dense layer, {@code "query"} …)
 * @param weightKey frozen W0 {@code [nIn, nOut]}
 * @param biasKey   frozen b0 {@code [1, nOut]}, or null
 * @param aKey      trainable A {@code [r, nIn]}
 * @param bKey      trainable B {@code [nOut, r]}
 * @param statsKey  input-norm state {@code [1, nIn + 1]} (x̄ then the batch count)
 * @param maskKey   0/1 mask over A, or null in REGROW mode
 */
public record AdapterModule(String name, String weightKey, String biasKey, String aKey, String bKey, String statsKey,
                            String maskKey, long nIn, long nOut, int rank) {

    public AdapterModule {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(weightKey, "weightKey");
        Objects.requireNonNull(aKey, "aKey");
        Objects.requireNonNull(bKey, "bKey");
        Objects.requireNonNull(statsKey, "statsKey");
    }

    /** Number of trainable adapter parameters: {@code r·(nIn + nOut)}. */
    public long adapterParams() {
        return (long) rank * (nIn + nOut);
    }

    /** {@code layer} or {@code layer.module}: the module's name in a network (adapter files, PEFT, summaries). */
    public String qualifiedName(String layer) {
        return name.isEmpty() ? layer : layer + "." + name;
    }

    /** Keys and shapes of the module's parameters in flattened order: W, b, A, B, mask, statistics. */
    public LinkedHashMap<String, long[]> paramShapes() {
        LinkedHashMap<String, long[]> m = new LinkedHashMap<>();
        m.put(weightKey, new long[]{nIn, nOut});
        if (biasKey != null) {
            m.put(biasKey, new long[]{1, nOut});
        }
        m.put(aKey, new long[]{rank, nIn});
        m.put(bKey, new long[]{nOut, rank});
        if (maskKey != null) {
            m.put(maskKey, new long[]{rank, nIn});
        }
        m.put(statsKey, new long[]{1, nIn + 1});
        return m;
    }

    /** Declares the parameters of a SameDiff-defined layer (the bias as a bias parameter, everything else as weights). */
    public void declare(SDLayerParams params) {
        for (Map.Entry<String, long[]> e : paramShapes().entrySet()) {
            if (e.getKey().equals(biasKey)) {
                params.addBiasParam(e.getKey(), e.getValue());
            } else {
                params.addWeightParam(e.getKey(), e.getValue());
            }
        }
    }

    /** Initial adapter state ({@link AdapterState#init}): A drawn from {@code rng}, B = 0, mask = 1, statistics = 0. */
    public void initState(Function<String, INDArray> params, AdapterInit init, Random rng) {
        AdapterState.init(params.apply(aKey), params.apply(bKey), maskKey == null ? null : params.apply(maskKey),
                params.apply(statsKey), init, rng);
    }

    /**
     * The adapted projection {@code x·W + b + s·(x·(A⊙M)ᵀ)·Bᵀ} of a 2-D input {@code [N, nIn]} in a SameDiff layer
     * definition, from the layer's parameter variables ({@link LoraLinear#forward}).
     */
    public SDVariable forward(SameDiff sd, SDVariable x2d, Map<String, SDVariable> params, double scale) {
        return LoraLinear.forward(sd, x2d, params.get(weightKey), biasKey == null ? null : params.get(biasKey),
                params.get(aKey), params.get(bKey), maskKey == null ? null : params.get(maskKey), scale);
    }

    /** The module's live state for the statistics-and-pruning core, named {@code qualifiedName}. */
    public ModuleState state(String qualifiedName, Function<String, INDArray> params) {
        return new ModuleState(qualifiedName, params.apply(aKey), maskKey == null ? null : params.apply(maskKey),
                params.apply(statsKey));
    }
}
