package org.prilora.ops;

import java.util.Objects;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The live training state of one adapted module, as the statistics-and-pruning core sees it: its name (for messages),
 * A {@code [r, nIn]}, the persistent 0/1 mask over A or null (REGROW), and the input-norm state vector
 * {@code [nIn + 1]} (x̄ then the batch count, see {@link InputNormStats}). The arrays are views of the model's own
 * storage (DL4J parameters or SameDiff variables), so changes made through them are the model's.
 */
public record ModuleState(String name, INDArray a, INDArray maskOrNull, INDArray stats) {
    public ModuleState {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(a, "a");
        Objects.requireNonNull(stats, "stats");
    }
}
