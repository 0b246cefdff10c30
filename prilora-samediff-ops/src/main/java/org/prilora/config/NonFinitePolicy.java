package org.prilora.config;

/** What the PRILoRA training listeners do when a batch's adapter inputs hold NaN or infinity. */
public enum NonFinitePolicy {
    /** Throw before the optimizer applies the step, naming the layer and step; nothing is updated. */
    FAIL,
    /** Leave that batch out of the input statistics, log a warning and count it; training goes on. */
    SKIP_STATISTICS
}
