package org.prilora.samples.spark;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.prilora.parallel.ParallelConfig;
import org.prilora.parallel.SyncTrainer;
import org.prilora.samples.finetune.ClusterBackend;
import org.prilora.spark.SparkPriLoraTrainer;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The main job's {@code --spark MASTER}: one {@link JavaSparkContext} for the whole command, and for every adapter
 * run a {@link SparkPriLoraTrainer} fed with the main job's own (length-bucketed) global batches, cut into one shard
 * per executor core.
 *
 * <p>Spark's own log lines are shown from WARN up. Settings it fills in when they are not given as {@code -Dspark.*} system properties: no web UI; executors get
 * {@code OMP_NUM_THREADS=1}, this JVM's {@code OPENBLAS_CORETYPE}, its Java 17 module flags and its JavaCPP memory
 * limits, and 2 GB of heap. On a cluster master (not {@code local[...]}) without {@code spark.jars} or
 * {@code spark.executor.extraClassPath}, the executors get this JVM's class path, which fits clusters whose workers
 * see the same paths (one machine, a shared install); elsewhere set one of the two.
 */
public final class SparkClusterBackend implements ClusterBackend {
    private final JavaSparkContext sc;
    private final String description;

    private SparkClusterBackend(JavaSparkContext sc, String description) {
        this.sc = sc;
        this.description = description;
    }

    /**
     * Connects to {@code master}.
     *
     * @param master a Spark master URL
     * @return the backend (close it to stop the context)
     */
    public static SparkClusterBackend connect(String master) {
        boolean ownClassPath = !isLocal(master) && !System.getProperties().containsKey("spark.jars")
                && !System.getProperties().containsKey("spark.executor.extraClassPath");
        quietSparkLogs();
        SparkConf conf = configure(new SparkConf(), master);   // new SparkConf() reads -Dspark.* properties
        JavaSparkContext sc = new JavaSparkContext(conf);
        return new SparkClusterBackend(sc, String.format(Locale.ROOT, "Spark %s, master %s: each step's batch is cut "
                        + "into sc.defaultParallelism() shards (%d now: the executor cores registered, at least 2)%s",
                sc.version(), master, sc.defaultParallelism(),
                ownClassPath ? "; executors use this JVM's class path (set spark.jars or spark.executor.extraClassPath "
                        + "where workers do not see the same paths)" : ""));
    }

    /** {@code local} and {@code local[...]} run the executors in this JVM ({@code local-cluster[...]} does not). */
    static boolean isLocal(String master) {
        return master.equals("local") || master.startsWith("local[");
    }

    /**
     * Spark's INFO lines (hundreds per run) at WARN, unless {@code -Dorg.slf4j.simpleLogger.log.org.apache.spark} says
     * otherwise; slf4j-simple reads a logger's level when the logger is made, so this must run before Spark starts.
     */
    private static void quietSparkLogs() {
        for (String pkg : List.of("org.apache.spark", "org.sparkproject")) {
            String key = "org.slf4j.simpleLogger.log." + pkg;
            if (System.getProperty(key) == null) {
                System.setProperty(key, "warn");
            }
        }
    }

    /** The defaults described above, on {@code conf}. */
    static SparkConf configure(SparkConf conf, String master) {
        conf.setMaster(master).setAppName("prilora-acceptability")
                .setIfMissing("spark.ui.enabled", "false")
                .setIfMissing("spark.executor.memory", "2g")
                .setIfMissing("spark.executorEnv.OMP_NUM_THREADS", "1");
        String coretype = System.getenv("OPENBLAS_CORETYPE");
        if (coretype != null && !coretype.isBlank()) {
            conf.setIfMissing("spark.executorEnv.OPENBLAS_CORETYPE", coretype);
        }
        conf.setIfMissing("spark.executor.extraJavaOptions", String.join(" ", executorJavaOptions()));
        if (!isLocal(master) && !conf.contains("spark.jars") && !conf.contains("spark.executor.extraClassPath")) {
            conf.set("spark.executor.extraClassPath", System.getProperty("java.class.path"));
        }
        return conf;
    }

    /** This JVM's module flags and JavaCPP limits, which the executors need as well. */
    static List<String> executorJavaOptions() {
        List<String> out = new ArrayList<>();
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (a.startsWith("--add-opens") || a.startsWith("--add-exports") || a.startsWith("-Djdk.reflect.")
                    || a.startsWith("-Dorg.bytedeco.javacpp.max") || a.equals("-XX:+IgnoreUnrecognizedVMOptions")) {
                out.add(a);
            }
        }
        return out;
    }

    /** The context (for tests and callers that add their own jobs). */
    public JavaSparkContext context() {
        return sc;
    }

    @Override
    public SyncTrainer trainer(MultiLayerNetwork net, ParallelConfig config) {
        return new SparkPriLoraTrainer(sc, net, config);
    }

    @Override
    public String describe() {
        return description;
    }

    @Override
    public void close() {
        sc.stop();
    }

    /** Registered in {@code META-INF/services}: {@code --spark MASTER} of the main job. */
    public static final class Factory implements ClusterBackend.Factory {
        @Override
        public ClusterBackend connect(String master) {
            return SparkClusterBackend.connect(master);
        }
    }
}
