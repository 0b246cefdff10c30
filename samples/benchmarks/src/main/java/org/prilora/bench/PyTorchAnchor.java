package org.prilora.bench;

import org.nd4j.shade.jackson.databind.JsonNode;
import org.nd4j.shade.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The PyTorch side of {@link EncoderBenchmark}: {@code pytorch/encoder_step.py} started once as a subprocess and
 * asked, one JSON line per request on its stdin, for one timed training step at a time, so that PyTorch steps
 * alternate with the Java variants' steps in the same rounds. The step's milliseconds are measured inside Python
 * (forward, backward, Adam); the request and answer are not part of them.
 *
 * <p>The subprocess runs single-threaded ({@code OPENBLAS_NUM_THREADS=1}, {@code OMP_NUM_THREADS=1},
 * {@code torch.set_num_threads(1)}) with passive OpenMP waiting (two busy-waiting BLAS threads made PyTorch steps
 * about 6× slower on the shared 2-core machine), the JVM's {@code OPENBLAS_CORETYPE}, and Debian's OpenBLAS first on
 * {@code LD_LIBRARY_PATH}: Debian's {@code python3-torch} links {@code libblas.so.3}, which is the reference BLAS
 * (~6 GFLOPS) unless that directory provides OpenBLAS's.
 */
final class PyTorchAnchor implements AutoCloseable {

    /**
     * The {@code --torch-openblas} default: the first of {@link #OPENBLAS_DIRS} that holds {@code libblas.so.3}.
     */
    static final String DEFAULT_OPENBLAS_DIR = "auto";

    /**
     * Where Debian's {@code libopenblas0-pthread} puts its {@code libblas.so.3}: installed with {@code apt-get install},
     * or unpacked with {@code dpkg -x} under {@code /opt/debian-openblas} (the README's two install routes).
     */
    static final List<String> OPENBLAS_DIRS = List.of("/usr/lib/x86_64-linux-gnu/openblas-pthread",
            "/opt/debian-openblas/usr/lib/x86_64-linux-gnu/openblas-pthread");

    /** {@code dir}, or for {@code "auto"} the first of {@link #OPENBLAS_DIRS} holding {@code libblas.so.3} (else the first). */
    static Path openblasDir(String dir) {
        if (!DEFAULT_OPENBLAS_DIR.equals(dir)) {
            return Path.of(dir);
        }
        for (String d : OPENBLAS_DIRS) {
            if (Files.isRegularFile(Path.of(d, "libblas.so.3"))) {
                return Path.of(d);
            }
        }
        return Path.of(OPENBLAS_DIRS.get(0));
    }

    /** Why the anchor could not run; {@link EncoderBenchmark} records the message as {@code "skipped"}. */
    static final class Unavailable extends Exception {
        private static final long serialVersionUID = 1L;

        Unavailable(String reason) {
            super(reason);
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String EOF = "\u0000eof";

    private final Process process;
    private final BufferedWriter in;
    /** stdout lines, read by a daemon thread so that a hung or dead subprocess becomes a timeout, not a hang. */
    private final BlockingQueue<String> out = new ArrayBlockingQueue<>(64);
    private final List<String> stderrTail = new ArrayList<>();
    private final JsonNode ready;
    private final long timeoutSeconds;

    private PyTorchAnchor(Process process, long timeoutSeconds) throws Unavailable {
        this.process = process;
        this.timeoutSeconds = timeoutSeconds;
        this.in = new BufferedWriter(new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8));
        Thread reader = new Thread(() -> pump(new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8)), true), "pytorch-stdout");
        Thread errors = new Thread(() -> pump(new BufferedReader(new InputStreamReader(process.getErrorStream(), StandardCharsets.UTF_8)), false), "pytorch-stderr");
        reader.setDaemon(true);
        errors.setDaemon(true);
        reader.start();
        errors.start();
        // Building three encoders takes seconds; importing torch the first time can take longer.
        JsonNode first = read(Math.max(timeoutSeconds, 300));
        if (!first.path("ready").asBoolean(false)) {
            close();
            throw new Unavailable("the PyTorch script did not start: " + first.path("error").asText(first.toString()));
        }
        this.ready = first;
    }

    /**
     * Starts the script.
     *
     * @param python         the interpreter (must import torch)
     * @param script         {@code encoder_step.py}
     * @param openblasDir    directory with Debian's OpenBLAS {@code libblas.so.3}, or null for the interpreter's own BLAS
     * @param batch          batch size
     * @param seq            tokens per row
     * @param timeoutSeconds longest wait for one answer
     * @throws Unavailable if the interpreter, the script or torch is missing, or the script fails to start
     */
    static PyTorchAnchor start(String python, Path script, Path openblasDir, int batch, int seq, long timeoutSeconds) throws Unavailable {
        if (!Files.isRegularFile(script)) {
            throw new Unavailable("script " + script.toAbsolutePath() + " not found (--torch-script)");
        }
        ProcessBuilder pb = new ProcessBuilder(python, "-u", script.toString(), "--batch", Integer.toString(batch),
                "--seq", Integer.toString(seq), "--threads", "1");
        Map<String, String> env = pb.environment();
        env.put("OPENBLAS_NUM_THREADS", "1");
        env.put("OMP_NUM_THREADS", "1");
        env.put("MKL_NUM_THREADS", "1");
        env.put("OMP_WAIT_POLICY", "PASSIVE");
        String coretype = System.getenv("OPENBLAS_CORETYPE");
        if (coretype != null && !coretype.isBlank()) {
            env.put("OPENBLAS_CORETYPE", coretype);
        }
        if (openblasDir != null) {
            String old = env.get("LD_LIBRARY_PATH");
            env.put("LD_LIBRARY_PATH", openblasDir.toAbsolutePath() + (old == null || old.isEmpty() ? "" : ":" + old));
        }
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new Unavailable("cannot start '" + python + "': " + e.getMessage());
        }
        return new PyTorchAnchor(p, timeoutSeconds);
    }

    private void pump(BufferedReader r, boolean stdout) {
        try (r) {
            for (String line; (line = r.readLine()) != null; ) {
                if (stdout) {
                    out.put(line);
                } else {
                    System.err.println(line);
                    synchronized (stderrTail) {
                        stderrTail.add(line);
                        if (stderrTail.size() > 20) {
                            stderrTail.remove(0);
                        }
                    }
                }
            }
        } catch (IOException | InterruptedException e) {
            // the process ended or we are closing
        }
        if (stdout) {
            out.offer(EOF);
        }
    }

    private JsonNode read(long seconds) throws Unavailable {
        String line;
        try {
            line = out.poll(seconds, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Unavailable("interrupted while waiting for the PyTorch script");
        }
        if (line == null || EOF.equals(line)) {
            String tail;
            synchronized (stderrTail) {
                tail = String.join(" | ", stderrTail);
            }
            throw new Unavailable((line == null ? "no answer from the PyTorch script within " + seconds + " s"
                    : "the PyTorch script exited") + (tail.isEmpty() ? "" : "; its stderr: " + tail));
        }
        try {
            return JSON.readTree(line);
        } catch (IOException e) {
            throw new Unavailable("the PyTorch script answered '" + line + "', not JSON");
        }
    }

    private JsonNode ask(Map<String, ?> request) {
        try {
            in.write(JSON.writeValueAsString(request));
            in.write('\n');
            in.flush();
            JsonNode answer = read(timeoutSeconds);
            if (answer.has("error")) {
                throw new IllegalStateException("PyTorch script: " + answer.get("error").asText());
            }
            return answer;
        } catch (IOException | Unavailable e) {
            throw new IllegalStateException("PyTorch script: " + e.getMessage(), e);
        }
    }

    /** What the script reported on start: torch version, threads, mapped BLAS libraries, environment, parameter counts. */
    JsonNode info() {
        return ready;
    }

    /** Trainable parameters of a PyTorch variant ({@code full}, {@code lora}, {@code linear}). */
    long trainableParams(String variant) {
        return ready.path("variants").path(variant).path("trainableParams").asLong(-1);
    }

    /** One timed optimizer step of {@code variant}; its milliseconds as measured inside Python. */
    double step(String variant) {
        return ask(Map.of("variant", variant, "steps", 1)).path("ms").get(0).asDouble();
    }

    /** PyTorch's float32 matmul rate of {@code [m,k]·[k,n]}, best of {@code reps}, in GFLOPS. */
    double gemmGflops(int m, int k, int n, int reps) {
        return ask(Map.of("op", "gemm", "m", m, "k", k, "n", n, "reps", reps)).path("gflops").asDouble();
    }

    @Override
    public void close() {
        try {
            in.write("{\"op\":\"quit\"}\n");
            in.flush();
        } catch (IOException e) {
            // already gone
        }
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroy();
            }
        } catch (InterruptedException e) {
            process.destroy();
            Thread.currentThread().interrupt();
        }
    }
}
