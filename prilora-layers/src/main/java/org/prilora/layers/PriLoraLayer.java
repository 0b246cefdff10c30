package org.prilora.layers;

import org.prilora.config.AdapterInit;
import org.prilora.config.ScalingMode;
import org.prilora.config.PruningMode;

import java.util.List;

/**
 * A DL4J layer configuration that carries PRILoRA adapters. Implemented by {@link PriLoraDense},
 * {@link PriLoraSelfAttention} and the transformer layers; the listener, {@link PriLoraRanks}, the
 * conversion and the adapter files find adapted layers through it.
 */
public interface PriLoraLayer {

    /** The layer's adapter rank (one rank for all its sites). */
    int getRank();

    /** Sets the rank; only before the network is initialised (used by {@link PriLoraRanks}). */
    void setRank(int rank);

    double getAlpha();

    ScalingMode getScalingMode();

    /** REGROW layers have no mask parameter; PERSISTENT_MASK layers carry one per site. */
    PruningMode getPruningMode();

    AdapterInit getAdapterInit();

    /** The adapted projections of this layer, with their parameter keys. */
    List<AdapterModule> adapterModules();

    /** The LoRA scale {@code s} for this layer's rank. */
    default double loraScale() {
        return getScalingMode().scale(getAlpha(), getRank());
    }

    /** The layer's name in the network (DL4J's layer name). */
    String getLayerName();
}
