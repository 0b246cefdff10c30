package org.prilora.bench;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs a memory probe in a fresh JVM and parses its one-line answer: in one process DL4J's workspaces and ND4J's
 * off-heap buffers are shared by every network, so a variant's own footprint needs its own process.
 */
final class ChildJvm {
    /** The line prefix of a probe's answer: {@code PREFIX key=value key=value ...} with long values. */
    static final String PREFIX = "MEMORY ";

    private ChildJvm() {
    }

    /**
     * Runs {@code mainClass} with {@code args} under this JVM's classpath, heap limit and JavaCPP off-heap limits
     * (the child inherits the environment: OPENBLAS_CORETYPE, OMP_NUM_THREADS), and returns its answer.
     *
     * @throws IllegalStateException if the child fails or prints no answer
     */
    static Map<String, Object> probe(Class<?> mainClass, String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx" + (Runtime.getRuntime().maxMemory() >> 20) + "m");
        // Without the limits ND4J's off-heap memory of the child is bounded only by the machine.
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (a.startsWith("-Dorg.bytedeco.javacpp.")) {
                cmd.add(a);
            }
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(mainClass.getName());
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String answer = null;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream()))) {
            for (String line; (line = r.readLine()) != null; ) {
                if (line.startsWith(PREFIX)) {
                    answer = line.substring(PREFIX.length());
                }
            }
        }
        int rc = p.waitFor();
        if (rc != 0 || answer == null) {
            throw new IllegalStateException("memory probe " + mainClass.getSimpleName() + " " + String.join(" ", args)
                    + " failed (exit code " + rc + ")");
        }
        Map<String, Object> m = new LinkedHashMap<>();
        for (String kv : answer.trim().split(" ")) {
            String[] parts = kv.split("=");
            m.put(parts[0], Long.parseLong(parts[1]));
        }
        return m;
    }

    /** A field of {@code /proc/self/status} in bytes (e.g. {@code VmHWM}, {@code VmRSS}), or -1 where unknown. */
    static long procStatusBytes(String field) {
        Path status = Path.of("/proc/self/status");
        try {
            for (String line : Files.exists(status) ? Files.readAllLines(status) : List.<String>of()) {
                if (line.startsWith(field + ":")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024L;
                }
            }
        } catch (java.io.IOException e) {
            return -1;
        }
        return -1;
    }

    /**
     * Resets this process's peak resident set ({@code VmHWM}) to its current resident set (Linux
     * {@code /proc/self/clear_refs}, value 5), so that a later peak covers only what follows.
     *
     * @return whether the kernel accepted it
     */
    static boolean resetPeakRss() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
            return true;
        } catch (java.io.IOException | SecurityException e) {
            return false;
        }
    }
}
