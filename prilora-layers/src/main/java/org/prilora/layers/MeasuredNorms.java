package org.prilora.layers;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/**
 * The input norms a runtime layer measured in its latest training forward pass, per module name, held until the
 * listener takes them (once). The one implementation of {@link AdapterStatsSource#takeBatchNorms} for every runtime.
 */
public final class MeasuredNorms implements java.io.Serializable {
    private static final long serialVersionUID = 1L;

    private Map<String, INDArray> pending;

    /** Replaces what is held (null clears it). */
    public void hold(Map<String, INDArray> norms) {
        pending = norms;
    }

    /** What is held, or an empty map; clears it. */
    public Map<String, INDArray> take() {
        Map<String, INDArray> m = pending == null ? Map.of() : pending;
        pending = null;
        return m;
    }
}
