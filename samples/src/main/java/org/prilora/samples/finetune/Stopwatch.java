package org.prilora.samples.finetune;

import java.lang.management.ManagementFactory;
import java.lang.management.OperatingSystemMXBean;

/**
 * Wall time and process CPU time since it was started. CPU time counts every thread, ND4J's native OpenMP/BLAS
 * threads included, so unlike wall time it barely changes when other processes compete for the cores.
 *
 * @param wallStartNanos {@link System#nanoTime()} at the start
 * @param cpuStartNanos  {@link #processCpuNanos()} at the start
 */
record Stopwatch(long wallStartNanos, long cpuStartNanos) {

    /** @return a stopwatch started now */
    static Stopwatch start() {
        return new Stopwatch(System.nanoTime(), processCpuNanos());
    }

    /** @return wall seconds since the start */
    double wallSeconds() {
        return (System.nanoTime() - wallStartNanos) / 1e9;
    }

    /** @return process CPU seconds since the start */
    double cpuSeconds() {
        return (processCpuNanos() - cpuStartNanos) / 1e9;
    }

    /** @return CPU time of the whole process so far, in nanoseconds, or 0 where the JVM cannot tell */
    static long processCpuNanos() {
        OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
            return Math.max(0, sun.getProcessCpuTime());
        }
        return 0;
    }
}
