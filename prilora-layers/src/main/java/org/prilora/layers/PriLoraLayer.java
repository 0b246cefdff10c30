package org.prilora.layers;

import org.prilora.config.AdapterSettings;

import java.util.List;

/**
 * A DL4J layer configuration that carries PRILoRA adapters: {@link PriLoraDense}, {@link PriLoraSelfAttention} and
 * the BERT block. The listener, {@link PriLoraRanks}, the conversion and the adapter files find adapted layers and
 * their {@link AdapterModule}s through it.
 */
public interface PriLoraLayer {

    /** The layer's adapter rank (one rank for all its modules). */
    int getRank();

    /** Sets the rank; only before the network is initialised (used by {@link PriLoraRanks}). */
    void setRank(int rank);

    /** Alpha, scaling, pruning mode, A init and dropout of every module of the layer. */
    AdapterSettings getAdapter();

    /** The adapted modules of this layer, with their parameter keys. */
    List<AdapterModule> adapterModules();

    /** The LoRA scale {@code s} for this layer's rank. */
    default double loraScale() {
        return getAdapter().scale(getRank());
    }

    /** Whether a parameter of this layer is trained (its A and B, plus any the layer adds). */
    default boolean isTrainableParam(String key) {
        return AdapterKeys.isTrainable(key);
    }

    /** The layer's name in the network (DL4J's layer name). */
    String getLayerName();
}
