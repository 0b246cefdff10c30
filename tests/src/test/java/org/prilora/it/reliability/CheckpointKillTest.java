package org.prilora.it.reliability;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.prilora.PriLoraCheckpoints;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Fault injection: a training JVM that writes a checkpoint after every step is killed (SIGKILL) at random
 * moments, often in the middle of a write; the newest checkpoint left behind must always restore, and no
 * partial checkpoint may ever appear under a checkpoint name. Bounded to a few trials.
 */
class CheckpointKillTest {

    @Test
    void lastGoodCheckpointAlwaysRestoresAfterKill(@TempDir Path dir) throws Exception {
        Random r = new Random(5);
        int trials = 4;
        for (int t = 0; t < trials; t++) {
            Path d = dir.resolve("trial" + t);
            Files.createDirectories(d);
            Process p = ResumeAndDeterminismTest.worker("loop", d.toString());
            // wait until the worker has written at least one checkpoint, then kill it at a random moment
            long deadline = System.currentTimeMillis() + 120_000;
            while (PriLoraCheckpoints.list(d).isEmpty() && System.currentTimeMillis() < deadline && p.isAlive()) {
                Thread.sleep(50);
            }
            assertThat(PriLoraCheckpoints.list(d)).as("trial %d wrote a checkpoint", t).isNotEmpty();
            Thread.sleep(r.nextInt(1500));
            p.destroyForcibly();
            assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();

            List<Path> ckpts = PriLoraCheckpoints.list(d);
            assertThat(ckpts).isNotEmpty();
            for (Path c : ckpts) {
                // every file under a checkpoint name is complete
                MultiLayerNetwork restored = PriLoraCheckpoints.restoreMultiLayerNetwork(c);
                assertThat(c.getFileName().toString()).isEqualTo("checkpoint-" + restored.getIterationCount() + ".zip");
            }
            Optional<MultiLayerNetwork> latest = PriLoraCheckpoints.latest(d);
            assertThat(latest).isPresent();
            // and it continues training
            ReliabilityFixture.trainTo(latest.get(), latest.get().getIterationCount() + 1);
        }
    }
}
