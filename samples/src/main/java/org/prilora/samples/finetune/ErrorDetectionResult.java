package org.prilora.samples.finetune;

import org.prilora.heads.SpanMetrics;

import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * What one grammatical-error-detection run measured ({@link ErrorDetectionRunner}).
 *
 * @param settings         the run's settings
 * @param errorWeight      weight of the "error" label in the token cross-entropy ("ok" has 1)
 * @param configJson       the run's {@code PriLoraConfig} as JSON, or null without adapters
 * @param trainSentences   training sentences used
 * @param dev              dev scores
 * @param test             test scores, or null when not evaluated
 * @param trainableParams  parameters updated by training
 * @param allParams        all parameters of the model that makes the predictions (frozen encoder included)
 * @param savedFile        file name of what the run saved (adapter, whole model, or head)
 * @param savedFileBytes   its size in bytes
 * @param steps            optimizer steps
 * @param trainSeconds     wall time of the training loop
 * @param trainCpuSeconds  process CPU time (all threads) of the training loop
 * @param evalSeconds      wall time of the dev/test evaluation
 * @param losses           training loss of every step
 * @param stepSeconds      wall time of every step
 * @param pruningSteps     pruning steps the listener ran
 * @param survival         how much of each pruning survived until the next one, or null without pruning
 */
public record ErrorDetectionResult(FineTuneSettings settings, double errorWeight, String configJson, int trainSentences,
                                   Scores dev, Scores test, long trainableParams, long allParams, String savedFile,
                                   long savedFileBytes, int steps, double trainSeconds, double trainCpuSeconds,
                                   double evalSeconds, double[] losses, double[] stepSeconds, long pruningSteps,
                                   SparsityTrace.Survival survival) implements CompareRuns.Result {

    /** Checks for nulls where a value is required. */
    public ErrorDetectionResult {
        Objects.requireNonNull(settings, "settings");
        Objects.requireNonNull(dev, "dev");
        Objects.requireNonNull(losses, "losses");
        Objects.requireNonNull(stepSeconds, "stepSeconds");
    }

    /**
     * The scores of one split: "error" at the word level and at the span level (maximal runs of error words, exact
     * match), word accuracy, and the accuracy of the majority baseline (every word "ok").
     *
     * @param sentences        sentences evaluated
     * @param words            words evaluated (those within the maximum length)
     * @param wordAccuracy     share of words labelled correctly
     * @param majorityAccuracy share of words labelled "ok" (the majority baseline's accuracy; its F1 is 0)
     * @param word             word-level counts of "error"
     * @param span             span-level counts of "error"
     */
    public record Scores(int sentences, long words, double wordAccuracy, double majorityAccuracy,
                         SpanMetrics.Scores word, SpanMetrics.Scores span) {

        /**
         * @param sentences sentences evaluated
         * @param model     the model's metrics
         * @param majority  the every-word-ok baseline's metrics on the same words
         * @return the scores
         */
        static Scores of(int sentences, SpanMetrics model, SpanMetrics majority) {
            return new Scores(sentences, model.words(), model.wordAccuracy(), majority.wordAccuracy(), model.tokens(),
                    model.spans());
        }

        Map<String, Object> toMap() {
            return Json.object("sentences", sentences, "words", words,
                    "wordF1", RunOutputs.round(word.f1(), 6), "wordPrecision", RunOutputs.round(word.precision(), 6),
                    "wordRecall", RunOutputs.round(word.recall(), 6),
                    "spanF1", RunOutputs.round(span.f1(), 6), "spanPrecision", RunOutputs.round(span.precision(), 6),
                    "spanRecall", RunOutputs.round(span.recall(), 6),
                    "wordAccuracy", RunOutputs.round(wordAccuracy, 6), "majorityAccuracy", RunOutputs.round(majorityAccuracy, 6),
                    "wordCounts", counts(word), "spanCounts", counts(span));
        }

        private static Map<String, Object> counts(SpanMetrics.Scores s) {
            return Json.object("tp", s.truePositives(), "fp", s.falsePositives(), "fn", s.falseNegatives());
        }

        @SuppressWarnings("unchecked")
        static Scores fromMap(Map<String, Object> m) {
            if (m == null) {
                return null;
            }
            return new Scores(((Number) m.get("sentences")).intValue(), ((Number) m.get("words")).longValue(),
                    ((Number) m.get("wordAccuracy")).doubleValue(), ((Number) m.get("majorityAccuracy")).doubleValue(),
                    scores((Map<String, Object>) m.get("wordCounts")), scores((Map<String, Object>) m.get("spanCounts")));
        }

        private static SpanMetrics.Scores scores(Map<String, Object> c) {
            return new SpanMetrics.Scores(((Number) c.get("tp")).longValue(), ((Number) c.get("fp")).longValue(),
                    ((Number) c.get("fn")).longValue());
        }

        /** @return e.g. {@code word P 0.61 R 0.30 F1 0.41, span F1 0.30, accuracy 0.9265 (majority 0.9167)} */
        String oneLine() {
            return String.format(Locale.ROOT, "word P %.3f R %.3f F1 %.3f | span P %.3f R %.3f F1 %.3f | word accuracy %.4f "
                            + "(majority, every word ok: %.4f, F1 0)", word.precision(), word.recall(), word.f1(),
                    span.precision(), span.recall(), span.f1(), wordAccuracy, majorityAccuracy);
        }
    }

    /** @return median wall time of a step, NaN without steps */
    public double medianStepSeconds() {
        return TrainLoop.median(stepSeconds);
    }

    /** @return a one-line summary for the console */
    public String oneLine() {
        String t = test == null ? "" : String.format(Locale.ROOT, "  test word F1 %.4f span F1 %.4f", test.word().f1(),
                test.span().f1());
        return String.format(Locale.ROOT, "%-9s seed %-4d dev word F1 %.4f span F1 %.4f%s  train %.0fs, %d steps, "
                        + "median step %.2fs, %,d trainable params, file %,d B", settings.method().cliName(), settings.seed(),
                dev.word().f1(), dev.span().f1(), t, trainSeconds, steps, medianStepSeconds(), trainableParams,
                savedFileBytes);
    }
}
