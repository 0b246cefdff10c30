package org.prilora.layers;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/**
 * A runtime PRILoRA layer that measures, during each training forward pass, the L2 norm of every input
 * feature of each adapted projection over the real (unmasked) rows. {@link org.prilora.PriLoraListener}
 * takes these after each iteration and folds them into the EMA stored in the layer's parameters.
 */
public interface AdapterStatsSource {

    /** Where the runtime holds what its latest training forward pass measured. */
    MeasuredNorms measuredNorms();

    /**
     * The per-module batch norms ({@code [nIn]} vectors, detached from workspaces) measured in the latest
     * training forward pass, keyed by {@link AdapterModule#name()}; empty if none since the last call. Clears them.
     */
    default Map<String, INDArray> takeBatchNorms() {
        return measuredNorms().take();
    }
}
