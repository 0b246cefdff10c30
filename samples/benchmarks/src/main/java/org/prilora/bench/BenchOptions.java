package org.prilora.bench;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.nd4j.shade.jackson.databind.SerializationFeature;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * What every timing benchmark shares (a picocli mixin): the {@code --rounds}, {@code --warmup} and {@code --out}
 * options, the environment that decides its speed (printed and recorded), the GEMM reference rate, and its result
 * files {@code NAME.json}, {@code NAME.csv} and {@code NAME.png} in {@code --out}.
 */
public final class BenchOptions {

    @Option(names = "--rounds", description = "Interleaved timed rounds per variant (default: ${DEFAULT-VALUE}).")
    int rounds;
    @Option(names = "--warmup", description = "Untimed warm-up steps per variant (default: ${DEFAULT-VALUE}).")
    int warmup;
    @Option(names = "--out", description = "Output directory (default: ${DEFAULT-VALUE}).")
    Path out = Path.of("bench-results");

    /**
     * @param rounds default of {@code --rounds}
     * @param warmup default of {@code --warmup}
     */
    BenchOptions(int rounds, int warmup) {
        this.rounds = rounds;
        this.warmup = warmup;
    }

    /**
     * Creates {@code --out}, prints the OpenBLAS core type and thread settings, and starts the result document with
     * them, the benchmark's name, the command that reruns it and the timing options.
     *
     * @param benchmark what is measured
     * @param command   the command line that reruns it
     * @return the result document, to be completed and passed to {@link #write}
     * @throws IOException if {@code --out} cannot be created
     */
    Map<String, Object> begin(String benchmark, String command) throws IOException {
        Files.createDirectories(out);
        String coretype = System.getenv("OPENBLAS_CORETYPE");
        String threads = System.getenv("OMP_NUM_THREADS");
        int cores = Runtime.getRuntime().availableProcessors();
        System.out.printf("OPENBLAS_CORETYPE=%s, OMP_NUM_THREADS=%s, %d cores%n", coretype, threads, cores);
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("benchmark", benchmark);
        json.put("command", command);
        json.put("openblasCoretype", coretype);
        json.put("ompNumThreads", threads);
        json.put("availableProcessors", cores);
        json.put("rounds", rounds);
        json.put("warmup", warmup);
        return json;
    }

    /**
     * Measures and prints the float32 GEMM rate of {@code [m,k]·[k,n]}, best of 10.
     *
     * @return GFLOPS
     */
    static double gemmReference(int m, int k, int n) {
        double gflops = GemmReference.gflops(m, k, n, 10);
        System.out.printf("GEMM reference [%d,%d]x[%d,%d]: %.1f GFLOPS%n", m, k, k, n, gflops);
        return gflops;
    }

    /**
     * Writes {@code name.json} (the document), {@code name.csv} (whatever {@code csv} prints) and {@code name.png}.
     *
     * @throws IOException if a file cannot be written
     */
    void write(String name, Map<String, Object> json, Consumer<PrintWriter> csv, CategoryChart chart) throws IOException {
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.resolve(name + ".json").toFile(), json);
        try (PrintWriter w = new PrintWriter(out.resolve(name + ".csv").toFile())) {
            csv.accept(w);
        }
        BitmapEncoder.saveBitmap(chart, out.resolve(name).toString(), BitmapEncoder.BitmapFormat.PNG);
        System.out.println("wrote " + out.toAbsolutePath().resolve(name + ".json"));
    }
}
