package org.prilora.samediff;

import org.prilora.config.PriLoraConfig;

import java.util.List;
import java.util.Objects;

/**
 * What {@link SameDiffPriLora#inject} did to a graph: the adapted modules in graph order, the variables it froze
 * (VARIABLE turned CONSTANT), the number of blocks, and the configuration. The same report can be read back
 * from a graph at any time, also after {@code SameDiff.load}, with {@link SameDiffPriLora#report}. Immutable.
 */
public final class InjectionReport {

    private final PriLoraConfig config;
    private final List<GraphModule> modules;
    private final List<String> frozenVariables;
    private final int numBlocks;

    InjectionReport(PriLoraConfig config, List<GraphModule> modules, List<String> frozenVariables, int numBlocks) {
        this.config = config;
        this.modules = List.copyOf(modules);
        this.frozenVariables = List.copyOf(frozenVariables);
        this.numBlocks = numBlocks;
    }

    public PriLoraConfig config() {
        return config;
    }

    /** Adapted modules (one per adapted weight) in graph order. */
    public List<GraphModule> modules() {
        return modules;
    }

    /** The module of the weight called {@code weightName}. */
    public GraphModule module(String weightName) {
        for (GraphModule s : modules) {
            if (s.weightName().equals(weightName)) {
                return s;
            }
        }
        throw new IllegalArgumentException("weightName: no adapted weight '" + weightName + "'; adapted: "
                + modules.stream().map(GraphModule::weightName).toList());
    }

    /**
     * Variables that were trainable (VARIABLE) before injection and are frozen (CONSTANT) now: the adapted
     * weights, their biases and every other parameter not listed in {@link PriLoraConfig#modulesToSave()}.
     */
    public List<String> frozenVariables() {
        return frozenVariables;
    }

    /** Number of distinct blocks the ranks were chosen for. */
    public int numBlocks() {
        return numBlocks;
    }

    /** Trainable adapter parameters (entries of all A and B). */
    public long adapterParameterCount() {
        long n = 0;
        for (GraphModule s : modules) {
            n += (long) s.rank() * (s.nIn() + s.nOut());
        }
        return n;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("PRILoRA SameDiff injection: ").append(modules.size()).append(" modules, ")
                .append(numBlocks).append(" blocks, ").append(adapterParameterCount()).append(" adapter parameters, ")
                .append(frozenVariables.size()).append(" variables frozen\n");
        for (GraphModule s : modules) {
            sb.append("  ").append(s).append('\n');
        }
        return sb.toString();
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof InjectionReport)) {
            return false;
        }
        InjectionReport r = (InjectionReport) o;
        return numBlocks == r.numBlocks && config.equals(r.config) && frozenVariables.equals(r.frozenVariables)
                && modules.toString().equals(r.modules.toString());
    }

    @Override
    public int hashCode() {
        return Objects.hash(config, frozenVariables, numBlocks, modules.toString());
    }
}
