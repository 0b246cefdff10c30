package org.prilora;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.longer.CountNonZero;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.layers.AdapterModule;
import org.prilora.ops.InputNormStats;
import org.prilora.ops.LoraLinear;
import org.prilora.ops.ModuleState;

/**
 * Figures of one adapted module for logging: rank, the fraction of zero entries in the effective A ({@code A⊙M}) at
 * the moment it is read, and a summary of the input-norm EMA x̄. In REGROW mode the optimizer refills pruned entries
 * at the next step, so {@code aSparsity} is the pruning's effect only when read right after a pruning step.
 */
public record ModuleFigures(String layer, String module, int rank, long nIn, long nOut, double aSparsity,
                            double xnormMean, double xnormMin, double xnormMax, long batchesSeen) {

    static ModuleFigures of(String layer, AdapterModule m, ModuleState s) {
        INDArray aEff = LoraLinear.effectiveA(s.a(), s.maskOrNull());
        double zeros = aEff.length() - Nd4j.getExecutioner().exec(new CountNonZero(aEff)).getDouble(0);
        InputNormStats st = InputNormStats.wrap(s.stats(), 0.0);
        INDArray x = st.norms();
        return new ModuleFigures(layer, m.name(), m.rank(), m.nIn(), m.nOut(), zeros / aEff.length(),
                x.meanNumber().doubleValue(), x.minNumber().doubleValue(), x.maxNumber().doubleValue(), st.batchesSeen());
    }

    /** {@code layer} or {@code layer.module}. */
    public String qualifiedName() {
        return module.isEmpty() ? layer : layer + "." + module;
    }

    @Override
    public String toString() {
        return String.format("%-40s r=%-3d sparsity(A)=%.3f x̄ mean=%.4g min=%.4g max=%.4g batches=%d",
                qualifiedName(), rank, aSparsity, xnormMean, xnormMin, xnormMax, batchesSeen);
    }
}
