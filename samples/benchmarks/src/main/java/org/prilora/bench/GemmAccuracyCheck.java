package org.prilora.bench;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Checks that the OpenBLAS kernels of the core type this JVM runs with compute float32 GEMMs correctly: every
 * combination of sizes up to 1536 and both transposes, against the same product in double precision. Rerun:
 * {@code mvn -B -q -pl samples/benchmarks initialize exec:exec -Dsample.main=org.prilora.bench.GemmAccuracyCheck -Dopenblas.coretype=SKYLAKEX}.
 */
public final class GemmAccuracyCheck {
    private GemmAccuracyCheck() {
    }

    /**
     * Entry point.
     *
     * @param args none
     */
    public static void main(String[] args) {
        Nd4j.getRandom().setSeed(1);
        double worst = 0;
        int n = 0;
        int[] sizes = {1, 3, 7, 16, 17, 31, 64, 65, 127, 384, 385, 1536};
        for (int m : sizes) {
            for (int k : sizes) {
                for (int cols : new int[]{1, 5, 33, 384, 1537}) {
                    if ((long) m * k * cols > 3e8) {
                        continue;
                    }
                    for (boolean ta : new boolean[]{false, true}) {
                        for (boolean tb : new boolean[]{false, true}) {
                            INDArray a = Nd4j.rand(DataType.FLOAT, ta ? k : m, ta ? m : k).subi(0.5);
                            INDArray b = Nd4j.rand(DataType.FLOAT, tb ? cols : k, tb ? k : cols).subi(0.5);
                            INDArray c = Nd4j.gemm(a, b, ta, tb);
                            INDArray ref = Nd4j.gemm(a.castTo(DataType.DOUBLE), b.castTo(DataType.DOUBLE), ta, tb);
                            double err = c.castTo(DataType.DOUBLE).sub(ref).amaxNumber().doubleValue() / Math.sqrt(k);
                            worst = Math.max(worst, err);
                            n++;
                        }
                    }
                }
            }
        }
        System.out.printf("OPENBLAS_CORETYPE=%s: %d float GEMMs vs double, worst |err|/sqrt(k) = %.3e%n",
                System.getenv("OPENBLAS_CORETYPE"), n, worst);
    }
}
