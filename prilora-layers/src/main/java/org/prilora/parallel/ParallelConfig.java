package org.prilora.parallel;

import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.optimize.api.TrainingListener;
import org.prilora.PriLoraListener;
import org.prilora.config.NonFinitePolicy;
import org.prilora.config.PruningSchedule;

import java.io.Serializable;
import java.util.Collection;

/**
 * Settings of synchronous data-parallel PRILoRA training (immutable; {@link #builder()}). The pruning schedule and
 * NaN policy default to those of the {@link PriLoraListener} attached to the network, so a network set up for
 * {@code fit} trains the same way in parallel; the workers count is used by {@link LocalParallelTrainer}.
 */
public final class ParallelConfig implements Serializable {
    private static final long serialVersionUID = 1L;

    private final PruningSchedule pruning;
    private final NonFinitePolicy nonFinitePolicy;
    private final int workers;
    private final boolean singleThreadedNd4j;

    private ParallelConfig(Builder b) {
        this.pruning = b.pruning;
        this.nonFinitePolicy = b.nonFinitePolicy;
        this.workers = b.workers;
        this.singleThreadedNd4j = b.singleThreadedNd4j;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The pruning schedule, or null to take the network's {@link PriLoraListener}'s. */
    public PruningSchedule pruning() {
        return pruning;
    }

    /** The NaN policy, or null to take the network's {@link PriLoraListener}'s (FAIL without one). */
    public NonFinitePolicy nonFinitePolicy() {
        return nonFinitePolicy;
    }

    /** Worker threads of {@link LocalParallelTrainer}. */
    public int workers() {
        return workers;
    }

    /** Whether {@link LocalParallelTrainer} limits ND4J to one thread per operation while it is open. */
    public boolean singleThreadedNd4j() {
        return singleThreadedNd4j;
    }

    PruningSchedule resolveSchedule(Model net) {
        if (pruning != null) {
            return pruning;
        }
        PriLoraListener l = listener(net);
        if (l == null) {
            throw new IllegalArgumentException("pruning: not set, and the network has no PriLoraListener to take it from;"
                    + " set ParallelConfig.builder().pruning(...) or attach a PriLoraListener");
        }
        return l.getSchedule();
    }

    NonFinitePolicy resolveNonFinitePolicy(Model net) {
        if (nonFinitePolicy != null) {
            return nonFinitePolicy;
        }
        PriLoraListener l = listener(net);
        return l == null ? NonFinitePolicy.FAIL : l.getNonFinitePolicy();
    }

    private static PriLoraListener listener(Model net) {
        Collection<TrainingListener> ls = net instanceof MultiLayerNetwork ? ((MultiLayerNetwork) net).getListeners()
                : net instanceof ComputationGraph ? ((ComputationGraph) net).getListeners() : null;
        if (ls != null) {
            for (TrainingListener l : ls) {
                if (l instanceof PriLoraListener) {
                    return (PriLoraListener) l;
                }
            }
        }
        return null;
    }

    @Override
    public String toString() {
        return "ParallelConfig{pruning=" + pruning + ", nonFinitePolicy=" + nonFinitePolicy + ", workers=" + workers
                + ", singleThreadedNd4j=" + singleThreadedNd4j + "}";
    }

    /** Builder of {@link ParallelConfig}. */
    public static final class Builder {
        private PruningSchedule pruning;
        private NonFinitePolicy nonFinitePolicy;
        private int workers = Math.max(1, Runtime.getRuntime().availableProcessors());
        private boolean singleThreadedNd4j = true;

        private Builder() {
        }

        /** The pruning schedule (default: the network's {@link PriLoraListener}'s). */
        public Builder pruning(PruningSchedule schedule) {
            this.pruning = schedule;
            return this;
        }

        /** The NaN policy (default: the network's {@link PriLoraListener}'s, else FAIL). */
        public Builder nonFinitePolicy(NonFinitePolicy policy) {
            this.nonFinitePolicy = policy;
            return this;
        }

        /** Worker threads for {@link LocalParallelTrainer} (default: available processors); 1 to 1024. */
        public Builder workers(int workers) {
            this.workers = workers;
            return this;
        }

        /**
         * Whether {@link LocalParallelTrainer} sets ND4J's per-operation thread counts to 1 while it is open (default
         * true): data parallelism over the cores instead of ND4J's OpenMP threads inside each small op. Also start the
         * JVM with {@code OMP_NUM_THREADS=1} so BLAS runs single-threaded in each worker.
         */
        public Builder singleThreadedNd4j(boolean v) {
            this.singleThreadedNd4j = v;
            return this;
        }

        public ParallelConfig build() {
            if (workers < 1 || workers > 1024) {
                throw new IllegalArgumentException("workers: expected 1 to 1024, got " + workers);
            }
            return new ParallelConfig(this);
        }
    }
}
