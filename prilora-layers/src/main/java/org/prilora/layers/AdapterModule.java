package org.prilora.layers;

import java.util.Objects;

/**
 * One adapted projection inside a PRILoRA layer: where its frozen weight, its A and B, its input
 * statistics and (in PERSISTENT_MASK mode) its mask live in the layer's parameter table.
 *
 * <p>A {@link PriLoraDense} has one site; a {@link PriLoraSelfAttention} has four (query, key, value,
 * output). The listener, the merge and the adapter files all work site by site.
 *
 * @param name       site name inside the layer ({@code ""} for a dense layer, {@code "query"} …)
 * @param weightKey  frozen W0 {@code [nIn, nOut]}
 * @param biasKey    frozen b0 {@code [1, nOut]}, or null
 * @param aKey       trainable A {@code [r, nIn]}
 * @param bKey       trainable B {@code [nOut, r]}
 * @param statsKey   input-norm state {@code [1, nIn + 1]} (x̄ then the batch count)
 * @param maskKey    0/1 mask over A, or null in REGROW mode
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

    /**
     * The standard keys for a site: {@code <prefix>W}, {@code <prefix>b}, {@code <prefix>loraA},
     * {@code <prefix>loraB}, {@code <prefix>xnorm}, {@code <prefix>loraM}. Underscores are removed from the
     * prefix: DL4J splits gradient keys ({@code "<layer>_<param>"}) at the last underscore, so a parameter key
     * must not contain one.
     */
    public static AdapterModule standard(String name, String prefix, boolean hasBias, boolean hasMask, long nIn, long nOut, int rank) {
        String p = prefix.replace("_", "");
        return new AdapterModule(name, p + "W", hasBias ? p + "b" : null, p + "loraA", p + "loraB",
                p + "xnorm", hasMask ? p + "loraM" : null, nIn, nOut, rank);
    }

    /** Number of trainable adapter parameters: {@code r·(nIn + nOut)}. */
    public long adapterParams() {
        return (long) rank * (nIn + nOut);
    }
}
