package org.prilora.ops;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.rng.Random;
import org.prilora.config.AdapterInit;

/**
 * The initial state of an adapted module, written once for every path (DL4J layers, converted networks, SameDiff
 * graphs): A from {@link AdapterInit}, B = 0 (so the adapted model starts equal to the base), mask = 1, statistics = 0.
 */
public final class AdapterState {
    private AdapterState() {
    }

    /**
     * Initialises the arrays in place.
     *
     * @param a          A {@code [r, nIn]}
     * @param b          B {@code [nOut, r]}
     * @param maskOrNull the persistent mask {@code [r, nIn]}, or null
     * @param stats      the input-norm state {@code [nIn + 1]}
     * @param rng        the generator A is drawn from
     */
    public static void init(INDArray a, INDArray b, INDArray maskOrNull, INDArray stats, AdapterInit init, Random rng) {
        init.initA(a, rng);
        b.assign(0);
        if (maskOrNull != null) {
            maskOrNull.assign(1);
        }
        stats.assign(0);
    }
}
