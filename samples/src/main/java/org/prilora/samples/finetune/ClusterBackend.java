package org.prilora.samples.finetune;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.prilora.parallel.ParallelConfig;
import org.prilora.parallel.SyncTrainer;

import java.util.Iterator;
import java.util.ServiceLoader;

/**
 * A cluster that computes the shards of the main job's adapter runs ({@code --spark MASTER}) while the network, the
 * updater and the pruning stay in this JVM. Found with {@link ServiceLoader}, so that the main job's module never
 * depends on Spark: the {@code samples/spark} module registers the Spark one.
 */
public interface ClusterBackend extends AutoCloseable {

    /** A trainer for {@code net} whose shards run on the cluster. */
    SyncTrainer trainer(MultiLayerNetwork net, ParallelConfig config);

    /** One line for the log: what runs where. */
    String describe();

    /** Disconnects from the cluster. */
    @Override
    void close();

    /** Connects to a cluster; registered in {@code META-INF/services}. */
    interface Factory {
        /** @param master the cluster's master URL, as given to {@code --spark} */
        ClusterBackend connect(String master);
    }

    /**
     * Connects with the first registered factory.
     *
     * @param master the master URL
     * @return the backend
     * @throws IllegalStateException when no factory is on the class path, saying how to run with one
     */
    static ClusterBackend connect(String master) {
        Iterator<Factory> it = ServiceLoader.load(Factory.class).iterator();
        if (!it.hasNext()) {
            throw new IllegalStateException("--spark " + master + ": no cluster backend on the class path. The Spark one is "
                    + "in the samples/spark module; run the main job from there (mvn -B -q -pl samples/spark initialize "
                    + "exec:exec -Dexec.args=\"... --spark " + master + "\", see README \"Scale out\")");
        }
        return it.next().connect(master);
    }
}
