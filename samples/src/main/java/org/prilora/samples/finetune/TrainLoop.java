package org.prilora.samples.finetune;

import me.tongfei.progressbar.ProgressBar;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.PrintStream;
import java.util.Locale;

/**
 * The loops every method shares, so that head-only and the adapter methods see the same batches in the same order:
 * training over length-bucketed batches ({@link LengthBatcher#trainingBatches}) with a progress bar and a divergence
 * check, and evaluation over length-sorted batches into a {@link BinaryConfusion}.
 */
final class TrainLoop {

    /** Sentences per forward-only batch (evaluation, embeddings). */
    static final int EVAL_BATCH = 64;

    /** One optimizer step on a batch; returns the batch loss. */
    @FunctionalInterface
    interface Step {
        double fit(LengthBatcher.PaddedBatch batch);
    }

    /** Called after every optimizer step, outside the timed part (step numbers are 1-based). */
    @FunctionalInterface
    interface AfterStep {
        void stepDone(int step);
    }

    /** Network output (class probabilities {@code [mb, 2]}) for a batch. */
    @FunctionalInterface
    interface Forward {
        INDArray output(LengthBatcher.PaddedBatch batch);
    }

    /**
     * Per-step loss and wall time of a training loop.
     *
     * @param losses  loss of every step
     * @param seconds wall time of every step
     */
    record Trace(double[] losses, double[] seconds) {
    }

    private final ProgressBars bars;
    private final PrintStream out;

    /**
     * @param bars progress bar factory
     * @param out  where the evaluation lines go
     */
    TrainLoop(ProgressBars bars, PrintStream out) {
        this.bars = bars;
        this.out = out;
    }

    /**
     * Runs {@code s.epochs()} epochs of {@code step} over {@code train}.
     *
     * @throws IllegalStateException when a loss is not finite (naming the step and the learning rate)
     */
    Trace train(FineTuneSettings s, EncodedSplit train, Step step) {
        return train(s, train, step, k -> {
        });
    }

    /**
     * Runs {@code s.epochs()} epochs of {@code step} over {@code train}, calling {@code after} after every step.
     *
     * @throws IllegalStateException when a loss is not finite (naming the step and the learning rate)
     */
    Trace train(FineTuneSettings s, EncodedSplit train, Step step, AfterStep after) {
        int total = LengthBatcher.batchesPerEpoch(train.size(), s.batchSize()) * s.epochs();
        double[] losses = new double[total];
        double[] seconds = new double[total];
        int[] lengths = train.lengths();
        int[] labels = train.labels();
        int k = 0;
        String task = "train " + s.method().cliName() + " s" + s.seed();
        try (ProgressBar bar = bars.start(task, (long) train.size() * s.epochs())) {
            for (int epoch = 0; epoch < s.epochs(); epoch++) {
                for (int[] idx : LengthBatcher.trainingBatches(lengths, s.batchSize(), LengthBatcher.DEFAULT_BUCKET_BATCHES,
                        s.seed(), epoch)) {
                    long t0 = System.nanoTime();
                    double loss = step.fit(LengthBatcher.pad(train.tokenIds(), labels, idx));
                    seconds[k] = (System.nanoTime() - t0) / 1e9;
                    if (!Double.isFinite(loss)) {
                        throw new IllegalStateException("training diverged: loss " + loss + " at step " + (k + 1)
                                + " (learning rate " + s.runLearningRate() + ")");
                    }
                    losses[k++] = loss;
                    after.stepDone(k);
                    bar.stepBy(idx.length);
                    bar.setExtraMessage(ProgressBars.extra(String.format(Locale.ROOT, "ep %d/%d step %d/%d loss %.3f avg10 %.3f",
                            epoch + 1, s.epochs(), k, total, loss, mean(losses, Math.max(0, k - 10), k))));
                }
            }
        }
        return new Trace(losses, seconds);
    }

    /** Predicts every sentence of {@code split} (argmax of {@code forward}) and prints accuracy and MCC. */
    BinaryConfusion evaluate(String task, EncodedSplit split, Forward forward) {
        int[] predicted = new int[split.size()];
        try (ProgressBar bar = bars.start(task, split.size())) {
            for (int[] idx : LengthBatcher.evaluationBatches(split.lengths(), EVAL_BATCH)) {
                LengthBatcher.PaddedBatch b = LengthBatcher.pad(split.tokenIds(), null, idx);
                int[] p = forward.output(b).argMax(1).toIntVector();
                for (int k = 0; k < idx.length; k++) {
                    predicted[idx[k]] = p[k];
                }
                bar.stepBy(idx.length);
                bar.setExtraMessage(ProgressBars.extra("T=" + b.paddedLength()));
            }
        }
        BinaryConfusion c = BinaryConfusion.of(predicted, split.labels());
        out.print(report(task, c));
        return c;
    }

    /**
     * The evaluation lines of a split: accuracy next to the majority-class baseline, MCC and the confusion matrix.
     *
     * @param task split name
     * @param c    its confusion counts (label 1 = acceptable)
     * @return lines ending in a newline
     */
    static String report(String task, BinaryConfusion c) {
        return String.format(Locale.ROOT, "%s: acc %.4f (majority class %.4f) MCC %.4f%n"
                        + "  %-24s predicted acceptable  predicted unacceptable%n"
                        + "  %-24s %20d  %22d%n  %-24s %20d  %22d%n",
                task, c.accuracy(), c.majorityAccuracy(), c.mcc(), "",
                "actual acceptable", c.tp(), c.fn(), "actual unacceptable", c.fp(), c.tn());
    }

    /** @return the median of {@code a}, NaN when empty */
    static double median(double[] a) {
        if (a.length == 0) {
            return Double.NaN;
        }
        double[] s = a.clone();
        java.util.Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    /** @return the mean of {@code a[from, to)}, NaN when empty */
    static double mean(double[] a, int from, int to) {
        double s = 0;
        for (int i = from; i < to; i++) {
            s += a[i];
        }
        return to > from ? s / (to - from) : Double.NaN;
    }
}
