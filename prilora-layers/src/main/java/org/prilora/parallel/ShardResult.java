package org.prilora.parallel;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What one shard of a global batch contributes to a step, and what shards sum to: the number of examples, the sum of
 * their losses ({@code score · examples}), the summed (not averaged) gradient of the trainable parameters (DL4J's raw
 * gradient, which its updater divides by the minibatch size), and, per adapted module, the per-feature <b>sums of
 * squared</b> input norms over the shard's real tokens. Sums of squares add exactly across shards, so the square root
 * of the total is the column norm over the whole global batch, which is what a single JVM measures.
 */
public final class ShardResult implements Serializable {
    private static final long serialVersionUID = 1L;

    private long examples;
    private double lossSum;
    private FlatValues gradient;
    private final LinkedHashMap<String, double[]> squaredNorms;

    ShardResult(long examples, double lossSum, FlatValues gradient, LinkedHashMap<String, double[]> squaredNorms) {
        this.examples = examples;
        this.lossSum = lossSum;
        this.gradient = gradient;
        this.squaredNorms = squaredNorms;
    }

    /** The neutral element: a shard with no examples. */
    public static ShardResult empty() {
        return new ShardResult(0, 0, null, new LinkedHashMap<>());
    }

    /** Adds {@code other} into this one and returns this (the reduction of {@code treeReduce} and of the local pool). */
    public ShardResult plus(ShardResult other) {
        if (other.examples == 0) {
            return this;
        }
        if (examples == 0) {
            examples = other.examples;
            lossSum = other.lossSum;
            gradient = other.gradient.copy();
            other.squaredNorms.forEach((k, v) -> squaredNorms.put(k, v.clone()));
            return this;
        }
        examples += other.examples;
        lossSum += other.lossSum;
        gradient.addInPlace(other.gradient);
        for (Map.Entry<String, double[]> e : other.squaredNorms.entrySet()) {
            double[] mine = squaredNorms.get(e.getKey());
            if (mine == null) {
                squaredNorms.put(e.getKey(), e.getValue().clone());
            } else {
                double[] v = e.getValue();
                for (int i = 0; i < mine.length; i++) {
                    mine[i] += v[i];
                }
            }
        }
        return this;
    }

    /** Examples in this shard (or all shards summed). */
    public long examples() {
        return examples;
    }

    /** Sum of the examples' scores (DL4J's mean minibatch score times the number of examples). */
    public double lossSum() {
        return lossSum;
    }

    /** The summed trainable gradient, or null when there are no examples. */
    public FlatValues gradient() {
        return gradient;
    }

    /** Per module name, the per-feature sums of squared input norms (modules that did not run are absent). */
    public Map<String, double[]> squaredNorms() {
        return squaredNorms;
    }
}
