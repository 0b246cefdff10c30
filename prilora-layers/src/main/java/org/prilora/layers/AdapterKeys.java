package org.prilora.layers;

import org.deeplearning4j.nn.params.DefaultParamInitializer;

/**
 * The one rule for adapter parameter keys and file tensor names. A module's keys are a prefix (empty for a dense
 * layer, {@code q}, {@code ao} … inside a block) plus a suffix: DL4J's own {@link DefaultParamInitializer#WEIGHT_KEY}
 * and {@link DefaultParamInitializer#BIAS_KEY} for the frozen base, {@value #A} and {@value #B} for what trains,
 * {@value #MASK} and {@value #STATS} for PRILoRA's non-trainable state. Keys hold no underscore: DL4J's updater
 * splits gradient keys {@code <layer>_<param>} at the last one.
 */
public final class AdapterKeys {
    /** Frozen base weight {@code [nIn, nOut]}: DL4J's key. */
    public static final String WEIGHT = DefaultParamInitializer.WEIGHT_KEY;
    /** Frozen base bias {@code [1, nOut]}: DL4J's key. */
    public static final String BIAS = DefaultParamInitializer.BIAS_KEY;
    /** Trainable A {@code [r, nIn]}. */
    public static final String A = "loraA";
    /** Trainable B {@code [nOut, r]}. */
    public static final String B = "loraB";
    /** Persistent 0/1 mask over A (PERSISTENT_MASK mode). */
    public static final String MASK = "loraM";
    /** Input-norm state {@code [1, nIn + 1]}: x̄ then the batch count. */
    public static final String STATS = "xnorm";

    /** Adapter-file tensor names: {@code <module>} plus one of these (A and B as PEFT names them). */
    public static final String FILE_A = ".lora_A";
    public static final String FILE_B = ".lora_B";
    public static final String FILE_MASK = ".lora_M";
    public static final String FILE_STATS = ".xnorm";

    private AdapterKeys() {
    }

    /**
     * How messages name a layer: {@code 'name'}, or for an unnamed one its index in the network ({@code layer3},
     * DL4J's default name) or, before it is in a network ({@code index < 0}), {@code an unnamed <Type>}.
     */
    public static String describe(org.deeplearning4j.nn.conf.layers.Layer layer, int index) {
        if (layer.getLayerName() != null) {
            return "layer '" + layer.getLayerName() + "'";
        }
        return index >= 0 ? "layer '" + "layer" + index + "' (unnamed, index " + index + ")"
                : "an unnamed " + layer.getClass().getSimpleName();
    }

    /** Whether a parameter key names a trainable adapter matrix (A or B) of any module. */
    public static boolean isTrainable(String key) {
        return key.endsWith(A) || key.endsWith(B);
    }

    /** Whether a parameter key is adapter state: A, B, mask or statistics (what an adapter file stores). */
    public static boolean isAdapterState(String key) {
        return isTrainable(key) || key.endsWith(MASK) || key.endsWith(STATS);
    }

    /** The keys of a module with the given prefix (underscores removed, see the class comment). */
    public static AdapterModule module(String name, String prefix, boolean hasBias, boolean hasMask, long nIn, long nOut, int rank) {
        String p = prefix.replace("_", "");
        return new AdapterModule(name, p + WEIGHT, hasBias ? p + BIAS : null, p + A, p + B, p + STATS,
                hasMask ? p + MASK : null, nIn, nOut, rank);
    }
}
