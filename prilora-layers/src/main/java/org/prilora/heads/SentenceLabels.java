package org.prilora.heads;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Objects;

/** Label arrays for the sentence-level heads (sequence classification, regression), with checked values. */
public final class SentenceLabels {
    private SentenceLabels() {
    }

    /**
     * One-hot labels {@code [mb, numClasses]} for a sequence-classification head.
     *
     * @throws IllegalArgumentException when a label is outside {@code [0, numClasses)}, naming the example and value
     */
    public static INDArray oneHot(int[] labels, int numClasses, DataType dataType) {
        Objects.requireNonNull(labels, "labels");
        if (numClasses < 2) {
            throw new IllegalArgumentException("numClasses: expected >= 2, got " + numClasses);
        }
        INDArray out = Nd4j.zeros(dataType, labels.length, numClasses);
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 || labels[i] >= numClasses) {
                throw new IllegalArgumentException("labels[" + i + "]: expected a class index in [0, " + (numClasses - 1)
                        + "] (numClasses = " + numClasses + "), got " + labels[i]);
            }
            out.putScalar(i, labels[i], 1.0);
        }
        return out;
    }

    /**
     * Targets {@code [mb, 1]} for a regression head.
     *
     * @throws IllegalArgumentException when a target is not finite
     */
    public static INDArray regression(double[] targets, DataType dataType) {
        Objects.requireNonNull(targets, "targets");
        for (int i = 0; i < targets.length; i++) {
            if (!Double.isFinite(targets[i])) {
                throw new IllegalArgumentException("targets[" + i + "]: expected a finite value, got " + targets[i]);
            }
        }
        return Nd4j.createFromArray(targets).castTo(dataType).reshape(targets.length, 1);
    }
}
