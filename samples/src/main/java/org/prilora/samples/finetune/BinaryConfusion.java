package org.prilora.samples.finetune;

/**
 * Confusion counts of a binary classifier, with accuracy and the Matthews correlation coefficient (the GLUE CoLA
 * metric). Label 1 is the positive class ("acceptable").
 *
 * @param tp predicted 1, true 1
 * @param tn predicted 0, true 0
 * @param fp predicted 1, true 0
 * @param fn predicted 0, true 1
 */
public record BinaryConfusion(long tp, long tn, long fp, long fn) {

    /**
     * @throws IllegalArgumentException if any count is negative
     */
    public BinaryConfusion {
        if (tp < 0 || tn < 0 || fp < 0 || fn < 0) {
            throw new IllegalArgumentException("confusion counts must be >= 0, got tp=" + tp + " tn=" + tn + " fp=" + fp
                    + " fn=" + fn);
        }
    }

    /**
     * Counts predictions against labels.
     *
     * @param predicted predicted labels, each 0 or 1
     * @param actual    true labels, each 0 or 1, same length
     * @return the counts
     * @throws IllegalArgumentException if the lengths differ or a value is not 0/1
     */
    public static BinaryConfusion of(int[] predicted, int[] actual) {
        if (predicted.length != actual.length) {
            throw new IllegalArgumentException("predicted and actual must have the same length, got " + predicted.length
                    + " and " + actual.length);
        }
        long tp = 0;
        long tn = 0;
        long fp = 0;
        long fn = 0;
        for (int i = 0; i < predicted.length; i++) {
            int p = predicted[i];
            int a = actual[i];
            if ((p != 0 && p != 1) || (a != 0 && a != 1)) {
                throw new IllegalArgumentException("labels must be 0 or 1, got predicted=" + p + " actual=" + a
                        + " at index " + i);
            }
            if (p == 1) {
                if (a == 1) {
                    tp++;
                } else {
                    fp++;
                }
            } else if (a == 0) {
                tn++;
            } else {
                fn++;
            }
        }
        return new BinaryConfusion(tp, tn, fp, fn);
    }

    /** @return number of examples counted */
    public long total() {
        return tp + tn + fp + fn;
    }

    /** @return (tp + tn) / total, or 0 when empty */
    public double accuracy() {
        long n = total();
        return n == 0 ? 0.0 : (double) (tp + tn) / n;
    }

    /** @return the accuracy of always predicting the class that is more frequent here, or 0 when empty */
    public double majorityAccuracy() {
        long n = total();
        return n == 0 ? 0.0 : (double) Math.max(tp + fn, tn + fp) / n;
    }

    /** @return the share of examples predicted acceptable (label 1), or 0 when empty */
    public double predictedPositiveShare() {
        long n = total();
        return n == 0 ? 0.0 : (double) (tp + fp) / n;
    }

    /**
     * Matthews correlation coefficient:
     * {@code (tp·tn − fp·fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn))}.
     * When a factor of the denominator is 0 (a constant classifier, or only one class present) the result is 0,
     * the convention scikit-learn uses (and the limit for a constant predictor).
     *
     * @return MCC in [-1, 1]
     */
    public double mcc() {
        // doubles throughout: the product of four counts overflows a long beyond ~55k examples per cell
        double num = (double) tp * tn - (double) fp * fn;
        double den = Math.sqrt((double) (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
        // clamp: rounding can land a hair outside [-1, 1] for perfect (or perfectly wrong) classifiers
        return den == 0.0 ? 0.0 : Math.max(-1.0, Math.min(1.0, num / den));
    }
}
