package org.prilora.config;

/** What happens to pruned entries of A between pruning steps. */
public enum PruningMode {
    /** Pruned entries are zeroed but stay trainable and may grow back (the paper's "temporary magnitude"). */
    REGROW,
    /** Pruned entries are held at zero by a persistent 0/1 mask that multiplies A in the forward pass. */
    PERSISTENT_MASK
}
