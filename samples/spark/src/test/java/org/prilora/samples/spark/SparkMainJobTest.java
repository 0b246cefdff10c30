package org.prilora.samples.spark;

import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.AdapterFile;
import org.prilora.PriLoraAdapters;
import org.prilora.samples.finetune.AcceptabilityFineTune;
import org.prilora.samples.finetune.FineTuneRunner;
import org.prilora.samples.finetune.Json;
import org.prilora.samples.finetune.RunOutputs;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * The main job end to end with {@code --spark local[2]} against {@code --workers 2} (two threads of this JVM) on the
 * real MiniLM and real sentences, a small budget (3 steps of 16, pruning every step): Spark runs the shards (6 tasks),
 * and the losses, the pruning steps, the adapter file and its pruned positions are those of the local workers.
 */
class SparkMainJobTest {

    /** Counts the Spark tasks of the run (registered through {@code spark.extraListeners}). */
    public static final class TaskCounter extends SparkListener {
        static final AtomicInteger TASKS = new AtomicInteger();

        @Override
        public void onTaskEnd(SparkListenerTaskEnd taskEnd) {
            if (taskEnd.taskInfo().successful()) {
                TASKS.incrementAndGet();
            }
        }
    }

    private static final List<String> BUDGET = List.of("--method", "prilora", "--train-size", "48", "--batch-size", "16",
            "--max-length", "24", "--prune-start", "1", "--prune-interval", "1", "--skip-test", "--seed", "3");

    private static int run(Path out, String... parallel) {
        List<String> args = new java.util.ArrayList<>(BUDGET);
        args.addAll(List.of(parallel));
        args.addAll(List.of("--out", out.toString()));
        return AcceptabilityFineTune.execute(args.toArray(String[]::new));
    }

    @Test
    @SuppressWarnings("unchecked")
    void sparkTrainsTheMainJobLikeLocalWorkers(@TempDir Path dir) throws Exception {
        System.setProperty("spark.extraListeners", TaskCounter.class.getName());
        try {
            assertThat(run(dir.resolve("spark"), "--spark", "local[2]")).isZero();
        } finally {
            System.clearProperty("spark.extraListeners");
        }
        assertThat(TaskCounter.TASKS.get()).as("Spark tasks: 3 steps x 2 shards").isEqualTo(6);
        assertThat(run(dir.resolve("local"), "--workers", "2")).isZero();

        Map<String, Object> spark = Json.readObject(dir.resolve("spark").resolve(RunOutputs.METRICS));
        Map<String, Object> local = Json.readObject(dir.resolve("local").resolve(RunOutputs.METRICS));
        List<Number> sparkLoss = (List<Number>) spark.get("losses");
        List<Number> localLoss = (List<Number>) local.get("losses");
        assertThat(sparkLoss).hasSize(3);
        for (int k = 0; k < sparkLoss.size(); k++) {
            assertThat(sparkLoss.get(k).doubleValue()).as("loss of step %d", k + 1)
                    .isCloseTo(localLoss.get(k).doubleValue(), within(2e-6));
        }
        assertThat(spark.get("pruningSteps")).isEqualTo(local.get("pruningSteps"));
        assertThat(((Number) spark.get("pruningSteps")).intValue()).isEqualTo(3);

        AdapterFile a = PriLoraAdapters.read(dir.resolve("spark").resolve(FineTuneRunner.ADAPTER_FILE));
        AdapterFile b = PriLoraAdapters.read(dir.resolve("local").resolve(FineTuneRunner.ADAPTER_FILE));
        assertThat(a.tensors().keySet()).isEqualTo(b.tensors().keySet());
        int pruned = 0;
        int zeros = 0;
        for (Map.Entry<String, INDArray> e : a.tensors().entrySet()) {
            INDArray x = e.getValue();
            INDArray y = b.tensors().get(e.getKey());
            double scale = Math.max(1e-12, y.norm2Number().doubleValue());
            assertThat(x.sub(y).norm2Number().doubleValue() / scale).as(e.getKey()).isLessThan(1e-5);
            if (e.getKey().endsWith(".lora_A")) {   // REGROW files hold no mask: the pruned zeros of the last step
                assertThat(x.eq(0.0)).as("pruned positions of " + e.getKey()).isEqualTo(y.eq(0.0));
                zeros += x.eq(0.0).castTo(org.nd4j.linalg.api.buffer.DataType.INT).sumNumber().intValue();
                pruned++;
            }
        }
        assertThat(pruned).as("adapted projections compared").isEqualTo(36);
        assertThat(zeros).as("pruned entries of A").isPositive();
    }

    @Test
    void sparkAndWorkersExcludeEachOther(@TempDir Path dir) {
        assertThat(run(dir, "--spark", "local[2]", "--workers", "2")).isEqualTo(2);
    }
}
