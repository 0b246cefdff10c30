package org.prilora.samples.finetune;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.params.DefaultParamInitializer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Locale;

/**
 * How a run handles the class imbalance of the task (73.6 % acceptable), derived from the training split only.
 *
 * <p>A softmax classifier estimates the class posterior under the class shares it was trained with: the sample's
 * shares, or 1/2 each when the sample is class-balanced or the loss is class-weighted. Prediction wants the posterior
 * under the shares of the task itself, estimated from the whole training split (dev and test are never looked at).
 * Bayes' rule turns one into the other by adding {@code log π_split(c) − log π_trained(c)} to the logit of class
 * {@code c}; that shift is folded into the classifier's bias after training, so that the saved head (and every later
 * {@code output()}) predicts with it. When the model was trained on the split's own shares the shift is 0.
 *
 * @param splitAcceptable   share of label 1 ("acceptable") in the whole training split
 * @param trainedAcceptable share of label 1 the loss saw: the sample's share, or 0.5 with class weights
 * @param weights           per-class loss weights {@code [w0, w1]} ({@code n / (2 n_c)} of the sample), or null
 */
record ClassPrior(double splitAcceptable, double trainedAcceptable, double[] weights) {

    /**
     * @param splitAcceptable  acceptable sentences in the whole training split
     * @param splitSize        sentences in the whole training split
     * @param sampleAcceptable acceptable sentences in the run's training sample
     * @param sampleSize       sentences in the run's training sample
     * @param classWeights     whether the loss weighs the classes to equal total weight
     * @return the prior handling of the run
     * @throws IllegalArgumentException when a class is missing from the split or the sample
     */
    static ClassPrior of(int splitAcceptable, int splitSize, int sampleAcceptable, int sampleSize, boolean classWeights) {
        if (splitAcceptable <= 0 || splitAcceptable >= splitSize || sampleAcceptable <= 0 || sampleAcceptable >= sampleSize) {
            throw new IllegalArgumentException("both classes must occur: split " + splitAcceptable + "/" + splitSize
                    + " acceptable, sample " + sampleAcceptable + "/" + sampleSize);
        }
        double p = (double) sampleAcceptable / sampleSize;
        double[] w = classWeights ? new double[]{0.5 / (1 - p), 0.5 / p} : null;
        return new ClassPrior((double) splitAcceptable / splitSize, classWeights ? 0.5 : p, w);
    }

    /** @return the logit shift {@code [Δ0, Δ1]} added to the classifier's bias */
    double[] logitShift() {
        return new double[]{Math.log(1 - splitAcceptable) - Math.log(1 - trainedAcceptable),
                Math.log(splitAcceptable) - Math.log(trainedAcceptable)};
    }

    /**
     * Per-example loss weights of a batch as a DL4J label mask {@code [mb, 1]} (the output layer multiplies each
     * example's loss and gradient by it), or null without class weights.
     *
     * @param labels one-hot labels {@code [mb, 2]}
     * @return the mask or null
     */
    INDArray labelMask(INDArray labels) {
        if (weights == null) {
            return null;
        }
        // one-hot labels [mb, 2] · weights [2, 1]: each row's class weight, without a host loop per step
        return labels.mmul(Nd4j.create(weights, new long[]{2, 1}, labels.dataType()));
    }

    /**
     * Adds {@link #logitShift()} to the bias of a softmax output layer.
     *
     * @param classifier the output layer ({@code b} of shape {@code [1, 2]})
     */
    void correct(Layer classifier) {
        INDArray b = classifier.getParam(DefaultParamInitializer.BIAS_KEY);
        double[] d = logitShift();
        b.putScalar(0, b.getDouble(0) + d[0]);
        b.putScalar(1, b.getDouble(1) + d[1]);
    }

    /** @return one line for the console and metrics.json */
    String describe() {
        double[] d = logitShift();
        return String.format(Locale.ROOT, "class prior: training split %.1f%% acceptable, loss saw %.1f%%%s; "
                        + "classifier bias shifted by [%.4f, %.4f]", 100 * splitAcceptable, 100 * trainedAcceptable,
                weights == null ? "" : String.format(Locale.ROOT, " (class weights %.3f, %.3f)", weights[0], weights[1]),
                d[0], d[1]);
    }
}
