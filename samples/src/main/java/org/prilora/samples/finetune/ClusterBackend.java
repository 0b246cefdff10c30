package org.prilora.samples.finetune;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.prilora.parallel.ParallelConfig;
import org.prilora.parallel.SyncTrainer;

import java.util.Iterator;
import java.util.NoSuchElementException;
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
     * The first registered factory.
     *
     * @param master the master URL (for the message)
     * @return the factory
     * @throws NoSuchElementException when none is on the class path, saying how to run with one
     */
    static Factory factory(String master) {
        Iterator<Factory> it = ServiceLoader.load(Factory.class).iterator();
        if (!it.hasNext()) {
            throw new NoSuchElementException("--spark " + master + ": no cluster backend on the class path. The Spark one "
                    + "is in the samples/spark module; run the main job from there: mvn -B -q -pl samples/spark initialize "
                    + "exec:exec -Dexec.args=\"-Xmx8g -classpath %classpath org.prilora.samples.finetune.AcceptabilityFineTune"
                    + " --spark " + master + " ...\" (README \"Scale out\")");
        }
        return it.next();
    }
}
