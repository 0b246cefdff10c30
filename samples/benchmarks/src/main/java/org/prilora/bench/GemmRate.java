package org.prilora.bench;

/**
 * Prints ND4J's float32 GEMM rate for the benchmark shape under the OpenBLAS core type this JVM was started with.
 * Rerun per core type: {@code mvn -B -q -pl samples/benchmarks initialize exec:exec -Dsample.main=org.prilora.bench.GemmRate
 * -Dopenblas.coretype=HASWELL} (or SKYLAKEX, ...); see README "Fast matrix multiplies".
 */
public final class GemmRate {
    private GemmRate() {
    }

    /**
     * Entry point.
     *
     * @param args none
     */
    public static void main(String[] args) {
        double a = GemmReference.gflops(2048, 384, 1536, 15);
        double b = GemmReference.gflops(2048, 1536, 384, 15);
        System.out.printf("OPENBLAS_CORETYPE=%s: [2048,384]x[384,1536] %.1f GFLOPS, [2048,1536]x[1536,384] %.1f GFLOPS%n",
                System.getenv("OPENBLAS_CORETYPE"), a, b);
    }
}
