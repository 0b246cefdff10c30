package org.prilora.bench;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.dataset.DataSet;
import org.prilora.config.RankSchedule;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.concurrent.Callable;

/**
 * A plain loop of training steps of one {@link EncoderBenchmark} variant, for a profiler to sample (Java Flight
 * Recorder: {@code -XX:StartFlightRecording=...}); prints the wall-clock time at which the timed steps start so that
 * {@code tools/profile/jfr_breakdown.py --since} can leave out warm-up and workspace sizing.
 *
 * <p>Run: {@code mvn -B -q -pl samples/benchmarks initialize exec:exec -Dexec.args="-Xmx8g -XX:StartFlightRecording=filename=/tmp/step.jfr,settings=profile
 * -classpath %classpath org.prilora.bench.StepProfile --variant lora"}
 */
@Command(name = "step-profile", mixinStandardHelpOptions = true,
        description = "Training steps of one encoder-benchmark variant in a loop, for a sampling profiler.")
public final class StepProfile implements Callable<Integer> {

    @Option(names = "--variant", description = "full, lora, prilora or lora-graph (default: ${DEFAULT-VALUE}).")
    String variant = "lora";
    @Option(names = "--steps", description = "Timed steps (default: ${DEFAULT-VALUE}).")
    int steps = 15;
    @Option(names = "--warmup", description = "Untimed steps first (default: ${DEFAULT-VALUE}).")
    int warmup = 3;

    /**
     * Entry point.
     *
     * @param args options ({@code --help} lists them)
     */
    public static void main(String[] args) {
        System.exit(new CommandLine(new StepProfile()).execute(args));
    }

    @Override
    public Integer call() {
        if (!java.util.List.of("full", "lora", "prilora", "lora-graph").contains(variant)) {
            throw new CommandLine.ParameterException(new CommandLine(this),
                    "--variant: expected full, lora, prilora or lora-graph, got '" + variant + "'");
        }
        if (steps < 1 || warmup < 0) {
            throw new CommandLine.ParameterException(new CommandLine(this),
                    "--steps: expected >= 1 and --warmup >= 0, got " + steps + " and " + warmup);
        }
        MultiLayerNetwork net = EncoderBenchmark.encoder(variant,
                "prilora".equals(variant) ? RankSchedule.linear(4, 12) : RankSchedule.uniform(8));
        DataSet ds = EncoderBenchmark.data(32, 64);
        for (int i = 0; i < warmup; i++) {
            net.fit(ds);
        }
        System.out.println("timed steps start at " + LocalTime.now().format(DateTimeFormatter.ofPattern("HH:mm:ss.SSS")));
        long t0 = System.nanoTime();
        for (int i = 0; i < steps; i++) {
            net.fit(ds);
        }
        System.out.printf("%s: %.1f ms per step over %d steps%n", variant, (System.nanoTime() - t0) / 1e6 / steps, steps);
        return 0;
    }
}
