package org.prilora.it.reliability;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.prilora.PriLoraCheckpoints;
import org.prilora.io.SafeTensors;

import java.nio.file.Path;
import java.util.Map;

/**
 * Entry point of the worker JVMs started by the reliability tests:
 * {@code train <dir> <steps>} trains and checkpoints to {@code dir/ckpt.zip};
 * {@code resume <dir> <lastStep>} restores it, trains to {@code lastStep} and writes {@code dir/final.safetensors};
 * {@code loop <dir>} trains forever, checkpointing every step (to be killed).
 */
public final class ReliabilityWorker {
    private ReliabilityWorker() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[1]);
        switch (args[0]) {
            case "train": {
                MultiLayerNetwork net = ReliabilityFixture.adaptedNet();
                ReliabilityFixture.trainTo(net, Integer.parseInt(args[2]));
                PriLoraCheckpoints.save(net, dir.resolve("ckpt.zip"));
                break;
            }
            case "resume": {
                MultiLayerNetwork net = PriLoraCheckpoints.restoreMultiLayerNetwork(dir.resolve("ckpt.zip"));
                ReliabilityFixture.trainTo(net, Integer.parseInt(args[2]));
                SafeTensors.write(dir.resolve("final.safetensors"), Map.of("params", net.params(),
                        "updater", net.getUpdater().getStateViewArray()), null);
                break;
            }
            case "loop": {
                MultiLayerNetwork net = ReliabilityFixture.adaptedNet();
                for (int step = 1; ; step++) {
                    ReliabilityFixture.trainTo(net, step);
                    PriLoraCheckpoints.saveTo(dir, net, 2);
                    System.out.println("saved " + step);
                    System.out.flush();
                }
            }
            default:
                throw new IllegalArgumentException("mode: expected train, resume or loop, got " + args[0]);
        }
        System.exit(0);
    }
}
