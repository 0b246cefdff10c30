package org.prilora.examples;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Random;

/** The toy task of the small examples: two interleaved noisy spirals in the plane, one per class. */
public final class Spirals {

    private Spirals() {
    }

    /**
     * @param n    points, classes alternating
     * @param seed random seed
     * @return features {@code [n, 2]} and one-hot labels {@code [n, 2]}, float
     */
    public static DataSet generate(int n, long seed) {
        Random r = new Random(seed);
        INDArray x = Nd4j.zeros(DataType.FLOAT, n, 2);
        INDArray y = Nd4j.zeros(DataType.FLOAT, n, 2);
        for (int i = 0; i < n; i++) {
            int c = i % 2;
            double t = 0.25 + 1.5 * r.nextDouble();
            double angle = t * Math.PI + c * Math.PI;
            x.putScalar(i, 0, t * Math.cos(angle) / 1.75 + 0.03 * r.nextGaussian());
            x.putScalar(i, 1, t * Math.sin(angle) / 1.75 + 0.03 * r.nextGaussian());
            y.putScalar(i, c, 1.0);
        }
        return new DataSet(x, y);
    }
}
