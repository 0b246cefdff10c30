package org.prilora.it.reliability;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.PriLoraCheckpoints;
import org.prilora.io.SafeTensors;

import java.io.File;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** Exact resume in a new JVM across a pruning step, and run-to-run determinism. */
class ResumeAndDeterminismTest {

    static Process worker(String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.add("-Xmx1g");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(ReliabilityWorker.class.getName());
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    }

    static void runWorker(String... args) throws Exception {
        Process p = worker(args);
        assertThat(p.waitFor(180, TimeUnit.SECONDS)).as("worker %s finished", List.of(args)).isTrue();
        assertThat(p.exitValue()).as("worker %s exit code", List.of(args)).isZero();
    }

    @Test
    void resumedInANewJvmEqualsUninterruptedTrainingBitForBit(@TempDir Path dir) throws Exception {
        MultiLayerNetwork straight = ReliabilityFixture.adaptedNet();
        ReliabilityFixture.trainTo(straight, 10);

        runWorker("train", dir.toString(), "4");     // checkpoint after step 4 (pruned at 3, next at 6 and 9)
        runWorker("resume", dir.toString(), "10");
        Map<String, INDArray> resumed = SafeTensors.read(dir.resolve("final.safetensors"));
        assertThat(resumed.get("params")).isEqualTo(straight.params().reshape(straight.params().length()));
        assertThat(resumed.get("updater")).isEqualTo(straight.getUpdater().getStateViewArray().reshape(straight.getUpdater().getStateViewArray().length()));
        // the pruning actually happened in the resumed part: exactly floor(0.25 * 48) = 12 masked per row of fc2's A
        assertThat(straight.getLayer(1).getParam("loraM").sum(1).toDoubleVector()).containsOnly(48.0 - 12);
    }

    @Test
    void sameSeedAndDataGiveIdenticalAdaptersRunToRun() {
        MultiLayerNetwork a = ReliabilityFixture.adaptedNet();
        MultiLayerNetwork b = ReliabilityFixture.adaptedNet();
        ReliabilityFixture.trainTo(a, 7);
        ReliabilityFixture.trainTo(b, 7);
        for (int layer = 1; layer <= 2; layer++) {
            assertThat(a.getLayer(layer).getParam("loraA")).isEqualTo(b.getLayer(layer).getParam("loraA"));
            assertThat(a.getLayer(layer).getParam("loraB")).isEqualTo(b.getLayer(layer).getParam("loraB"));
        }
        assertThat(a.params()).isEqualTo(b.params());
    }

    @Test
    void inProcessCheckpointRoundTripContinuesIdentically(@TempDir Path dir) throws Exception {
        MultiLayerNetwork a = ReliabilityFixture.adaptedNet();
        ReliabilityFixture.trainTo(a, 5);
        File f = dir.resolve("c.zip").toFile();
        PriLoraCheckpoints.save(a, f.toPath());
        MultiLayerNetwork b = PriLoraCheckpoints.restoreMultiLayerNetwork(f.toPath());
        assertThat(b.getIterationCount()).isEqualTo(5);
        ReliabilityFixture.trainTo(a, 8);
        ReliabilityFixture.trainTo(b, 8);
        assertThat(b.params()).isEqualTo(a.params());
    }
}
