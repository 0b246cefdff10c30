package org.prilora.samples.finetune;

import org.prilora.ModuleFigures;

import java.util.List;
import java.util.Objects;

/**
 * What one fine-tuning run measured.
 *
 * @param settings          the run's settings
 * @param configJson        the run's {@code PriLoraConfig} as JSON, or null for head-only
 * @param trainSentences    training sentences used (after subsampling)
 * @param trainAcceptable   of those, labelled acceptable
 * @param devSentences      dev split size
 * @param testSentences     test split size (0 when the test split was not evaluated)
 * @param dev               dev confusion counts
 * @param test              test confusion counts, or null when not evaluated
 * @param trainableParams   parameters updated by training
 * @param allParams         all parameters of the model that makes the predictions (frozen encoder included)
 * @param adapterFile       file name of the saved adapter (or, for head-only, the saved classifier)
 * @param adapterFileBytes  its size in bytes
 * @param steps             optimizer steps
 * @param trainSeconds      wall time of the training loop (for head-only: embedding the training sentences plus
 *                          training the classifier; embeddings served from the cache cost nothing)
 * @param trainCpuSeconds   process CPU time (all threads) of the training loop: a measure of work that other
 *                          processes competing for the cores hardly change
 * @param evalSeconds       wall time of the dev/test evaluation
 * @param losses            training loss of every step
 * @param stepSeconds       wall time of every step (batch padding, forward, backward, update, listener)
 * @param figures           per adapted projection: rank, final A sparsity, x̄ (empty for head-only)
 * @param pruningSteps      pruning steps the listener ran
 * @param priorNote         how the class prior was handled ({@link ClassPrior#describe()})
 * @param survival          how much of each pruning survived until the next one, or null without pruning
 */
public record RunResult(FineTuneSettings settings, String configJson, int trainSentences, int trainAcceptable,
                        int devSentences, int testSentences, BinaryConfusion dev, BinaryConfusion test,
                        long trainableParams, long allParams, String adapterFile, long adapterFileBytes, int steps,
                        double trainSeconds, double trainCpuSeconds, double evalSeconds, double[] losses, double[] stepSeconds,
                        List<ModuleFigures> figures,
                        long pruningSteps, String priorNote, SparsityTrace.Survival survival)
        implements CompareRuns.Result {

    /** Checks for nulls where a value is required. */
    public RunResult {
        Objects.requireNonNull(settings, "settings");
        Objects.requireNonNull(dev, "dev");
        Objects.requireNonNull(losses, "losses");
        Objects.requireNonNull(stepSeconds, "stepSeconds");
        figures = List.copyOf(figures);
    }

    /** @return mean loss of the last {@code n} steps (all steps if fewer), NaN without steps */
    public double finalLoss(int n) {
        if (losses.length == 0) {
            return Double.NaN;
        }
        int from = Math.max(0, losses.length - n);
        double s = 0;
        for (int i = from; i < losses.length; i++) {
            s += losses[i];
        }
        return s / (losses.length - from);
    }

    /** @return median wall time of a step, NaN without steps */
    public double medianStepSeconds() {
        return TrainLoop.median(stepSeconds);
    }

    /** @return a one-line summary for the console */
    public String oneLine() {
        String t = test == null ? "" : String.format(java.util.Locale.ROOT, "  test acc %.4f MCC %.4f", test.accuracy(), test.mcc());
        return String.format(java.util.Locale.ROOT, "%-9s seed %-4d dev acc %.4f MCC %.4f%s  train %.0fs, %d steps, "
                        + "median step %.2fs, %,d trainable params, file %,d B",
                settings.method().cliName(), settings.seed(), dev.accuracy(), dev.mcc(), t, trainSeconds, steps,
                medianStepSeconds(), trainableParams, adapterFileBytes);
    }
}
