package org.prilora.bert;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Objects;

/**
 * The task head a {@link BertEncoderFactory} puts on the encoder, always as the layer named
 * {@link BertEncoderFactory#CLASSIFIER_NAME} (Hugging Face's {@code classifier}, the name PEFT users list in
 * {@code modules_to_save}):
 * <ul>
 *   <li>{@link #sequenceClassification}: pooling ({@link BertPooling}) + softmax over {@code n} classes,
 *       cross-entropy, optionally weighted per class; labels one-hot {@code [mb, n]};</li>
 *   <li>{@link #regression}: pooling + one linear output, mean squared error; labels {@code [mb, 1]};</li>
 *   <li>{@link #tokenClassification}: softmax over {@code n} labels at every token (DL4J's {@code RnnOutputLayer}),
 *       labels {@code [mb, n, T]} with a label mask {@code [mb, T]} so that the loss covers only the labelled
 *       tokens ({@code org.prilora.heads.TokenLabels} builds both, leaving out padding and special tokens).</li>
 * </ul>
 * Immutable; values are checked when it is made.
 */
public final class BertHead implements Serializable {
    private static final long serialVersionUID = 1L;

    /** The kind of task. */
    public enum Kind {
        /** One label per sentence (or pair) out of {@code n}. */
        SEQUENCE_CLASSIFICATION,
        /** One real value per sentence (or pair). */
        REGRESSION,
        /** One label per token out of {@code n}. */
        TOKEN_CLASSIFICATION
    }

    private final Kind kind;
    private final int numLabels;
    private final double[] classWeights;

    private BertHead(Kind kind, int numLabels, double[] classWeights) {
        this.kind = kind;
        this.numLabels = numLabels;
        this.classWeights = classWeights;
    }

    /** Softmax over {@code numClasses >= 2} classes of the pooled vector, unweighted cross-entropy. */
    public static BertHead sequenceClassification(int numClasses) {
        return new BertHead(Kind.SEQUENCE_CLASSIFICATION, requireClasses("numClasses", numClasses), null);
    }

    /**
     * Softmax over {@code classWeights.length >= 2} classes, cross-entropy with these per-class weights (each finite and
     * {@code > 0}), for imbalanced classes.
     */
    public static BertHead sequenceClassification(double... classWeights) {
        double[] w = checkWeights(classWeights);
        return new BertHead(Kind.SEQUENCE_CLASSIFICATION, w.length, w);
    }

    /** One linear output of the pooled vector, mean squared error (STS-B's kind of task). */
    public static BertHead regression() {
        return new BertHead(Kind.REGRESSION, 1, null);
    }

    /** Softmax over {@code numLabels >= 2} labels at every token, unweighted cross-entropy over the labelled tokens. */
    public static BertHead tokenClassification(int numLabels) {
        return new BertHead(Kind.TOKEN_CLASSIFICATION, requireClasses("numLabels", numLabels), null);
    }

    /** Per-token softmax over {@code classWeights.length >= 2} labels with per-label weights in the cross-entropy. */
    public static BertHead tokenClassification(double... classWeights) {
        double[] w = checkWeights(classWeights);
        return new BertHead(Kind.TOKEN_CLASSIFICATION, w.length, w);
    }

    private static int requireClasses(String field, int n) {
        if (n < 2) {
            throw new IllegalArgumentException(field + ": expected >= 2, got " + n);
        }
        return n;
    }

    private static double[] checkWeights(double[] w) {
        Objects.requireNonNull(w, "classWeights");
        requireClasses("classWeights.length", w.length);
        for (int i = 0; i < w.length; i++) {
            if (!(w[i] > 0) || Double.isInfinite(w[i])) {
                throw new IllegalArgumentException("classWeights[" + i + "]: expected a finite value > 0, got " + w[i]);
            }
        }
        return w.clone();
    }

    public Kind kind() {
        return kind;
    }

    /** Classes or labels ({@code 1} for regression): the head's {@code nOut}. */
    public int numLabels() {
        return numLabels;
    }

    /** The per-class loss weights, or null when unweighted. */
    public double[] classWeights() {
        return classWeights == null ? null : classWeights.clone();
    }

    /** Whether the head reads one pooled vector per sentence (every kind but token classification). */
    public boolean pooled() {
        return kind != Kind.TOKEN_CLASSIFICATION;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof BertHead h && h.kind == kind && h.numLabels == numLabels && Arrays.equals(h.classWeights, classWeights);
    }

    @Override
    public int hashCode() {
        return Objects.hash(kind, numLabels, Arrays.hashCode(classWeights));
    }

    @Override
    public String toString() {
        return kind + "(" + numLabels + (classWeights == null ? "" : ", weights " + Arrays.toString(classWeights)) + ")";
    }
}
