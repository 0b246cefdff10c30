package org.prilora.parallel;

/**
 * What one synchronous data-parallel step did.
 *
 * @param step      the optimizer step, 1-based (the model's iteration count after the step)
 * @param examples  examples in the global batch
 * @param score     the global batch's mean score (loss plus regularisation), as {@code net.score()} after a fit
 * @param pruned    whether this step pruned A
 * @param admitted  whether the batch's input norms went into x̄ (false only under {@code SKIP_STATISTICS})
 */
public record StepResult(long step, long examples, double score, boolean pruned, boolean admitted) {
}
