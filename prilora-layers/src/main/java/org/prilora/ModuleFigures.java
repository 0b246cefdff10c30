package org.prilora;

/**
 * Figures of one adapted projection for logging: rank, the fraction of zero entries in the effective A
 * ({@code A⊙M}), and a summary of the input-norm EMA x̄.
 */
public record ModuleFigures(String layer, String site, int rank, long nIn, long nOut, double aSparsity,
                          double xnormMean, double xnormMin, double xnormMax, long batchesSeen) {

    /** {@code layer} or {@code layer.site}. */
    public String qualifiedName() {
        return site.isEmpty() ? layer : layer + "." + site;
    }

    @Override
    public String toString() {
        return String.format("%-40s r=%-3d sparsity(A)=%.3f x̄ mean=%.4g min=%.4g max=%.4g batches=%d",
                qualifiedName(), rank, aSparsity, xnormMean, xnormMin, xnormMax, batchesSeen);
    }
}
