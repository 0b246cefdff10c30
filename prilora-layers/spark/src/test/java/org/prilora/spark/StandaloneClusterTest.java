package org.prilora.spark;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.PriLoraListener;
import org.prilora.config.PruningMode;
import org.prilora.parallel.ParallelConfig;
import org.prilora.parallel.ParallelFixtures;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.prilora.parallel.ParallelFixtures.SCHEDULE;

/**
 * A real standalone Spark cluster on loopback: a Master and two Workers, each a JVM of its own started from this
 * test's class path, and the Workers' executors in JVMs of their own (one core each). The driver is this JVM. The
 * adapted MLP trains through the executors, from an RDD and from batches the driver holds, and ends where single-JVM
 * training ends.
 */
class StandaloneClusterTest {
    private static final List<Process> DAEMONS = new ArrayList<>();
    private static final Set<String> EXECUTORS_USED = ConcurrentHashMap.newKeySet();
    private static JavaSparkContext sc;
    private static Path home;

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** The Java 17 flags this JVM got from surefire (spark.java17.flags), for the daemons and the executors. */
    private static List<String> moduleFlags() {
        List<String> out = new ArrayList<>();
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (a.startsWith("--add-opens") || a.startsWith("--add-exports") || a.startsWith("-Djdk.reflect.")
                    || a.equals("-XX:+IgnoreUnrecognizedVMOptions")) {
                out.add(a);
            }
        }
        return out;
    }

    private static Process daemon(String name, String mainClass, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx512m"));
        cmd.addAll(moduleFlags());
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), mainClass));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(home.resolve(name + ".log").toFile());
        // the Workers build executor command lines from SPARK_HOME/jars (empty: everything comes from
        // spark.executor.extraClassPath) and need the Scala version when no Spark build directory is there
        pb.environment().put("SPARK_HOME", home.toString());
        pb.environment().put("SPARK_SCALA_VERSION", "2.12");
        pb.environment().put("OMP_NUM_THREADS", "1");
        Process p = pb.start();
        DAEMONS.add(p);
        return p;
    }

    @BeforeAll
    static void startCluster() throws Exception {
        home = Files.createTempDirectory("prilora-spark-standalone");
        Files.createDirectories(home.resolve("jars"));
        int port = freePort();
        String master = "spark://127.0.0.1:" + port;
        daemon("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", String.valueOf(port),
                "--webui-port", String.valueOf(freePort()));
        for (int w = 1; w <= 2; w++) {
            Files.createDirectories(home.resolve("work" + w));
            daemon("worker" + w, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1",
                    "--memory", "1g", "--webui-port", String.valueOf(freePort()), "--work-dir",
                    home.resolve("work" + w).toString(), master);
        }
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
        String executorOptions = String.join(" ", moduleFlags()) + " -Ddtype=double"
                + " -Dorg.bytedeco.javacpp.maxbytes=1G -Dorg.bytedeco.javacpp.maxphysicalbytes=3G";
        SparkConf conf = new SparkConf().setMaster(master).setAppName("prilora-standalone-test")
                .set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1")
                .set("spark.executor.cores", "1").set("spark.cores.max", "2").set("spark.executor.memory", "512m")
                .set("spark.executor.extraClassPath", System.getProperty("java.class.path"))
                .set("spark.executor.extraJavaOptions", executorOptions)
                .set("spark.executorEnv.OMP_NUM_THREADS", "1");
        sc = new JavaSparkContext(conf);   // registers with the Master in the background; executors follow
        sc.sc().addSparkListener(new SparkListener() {
            @Override
            public void onTaskEnd(SparkListenerTaskEnd taskEnd) {
                EXECUTORS_USED.add(taskEnd.taskInfo().executorId());
            }
        });
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (sc.sc().getExecutorMemoryStatus().size() < 3) {   // the driver and two executors
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the two executors did not register within 120 s; logs in " + home);
            }
            Thread.sleep(500);
        }
    }

    @AfterAll
    static void stopCluster() {
        if (sc != null) {
            sc.stop();
        }
        for (Process p : DAEMONS) {
            p.descendants().forEach(ProcessHandle::destroy);
            p.destroy();
        }
        for (Process p : DAEMONS) {
            try {
                if (!p.waitFor(20, TimeUnit.SECONDS)) {
                    p.descendants().forEach(ProcessHandle::destroyForcibly);
                    p.destroyForcibly();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        try (var files = Files.walk(home)) {
            files.sorted(java.util.Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    void twoExecutorJvmsTrainLikeASingleJvm() {
        DataSet all = ParallelFixtures.data(23, 1);
        MultiLayerNetwork start = ParallelFixtures.adaptedMlp(PruningMode.REGROW);
        MultiLayerNetwork ref = start.clone();
        ref.setListeners(new PriLoraListener(SCHEDULE));
        for (int e = 0; e < 2; e++) {
            for (DataSet b : ParallelFixtures.batches(all, 10)) {
                ref.fit(b);
            }
        }

        MultiLayerNetwork fromRdd = start.clone();
        ShardedData<DataSet> data = ShardedData.of(sc.parallelize(ParallelFixtures.batches(all, 1), 2),
                RowConverter.dataSets(), 10, 2);
        try (SparkPriLoraTrainer t = new SparkPriLoraTrainer(sc, fromRdd, ParallelConfig.builder().pruning(SCHEDULE).build())) {
            t.fitEpoch(data);
            t.fitEpoch(data);
        } finally {
            data.unpersist();
        }
        assertThat(EXECUTORS_USED).hasSize(2);
        assertThat(ParallelFixtures.zerosInA(ref)).isPositive();
        ParallelFixtures.assertSameTraining(ref, fromRdd, 1e-6);

        EXECUTORS_USED.clear();
        MultiLayerNetwork fed = start.clone();
        try (SparkPriLoraTrainer t = new SparkPriLoraTrainer(sc, fed, ParallelConfig.builder().pruning(SCHEDULE).build())) {
            for (int e = 0; e < 2; e++) {
                for (DataSet b : ParallelFixtures.batches(all, 10)) {
                    t.step(b);
                }
                t.driver().endEpoch();
            }
        }
        assertThat(EXECUTORS_USED).hasSize(2);
        ParallelFixtures.assertSameTraining(ref, fed, 1e-6);
    }
}
