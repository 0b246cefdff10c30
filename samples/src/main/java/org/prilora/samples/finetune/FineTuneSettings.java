package org.prilora.samples.finetune;

import org.prilora.config.AdapterInit;
import org.prilora.config.ScalingMode;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.PruningMode;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;

import java.util.Map;
import java.util.Objects;

/**
 * Everything that defines one fine-tuning run (one method, one seed). Immutable; the command line builds it and
 * validates the ranges, {@link #priLoraConfig()} turns the adapter part into the project's {@link PriLoraConfig}.
 *
 * @param method        what is trained
 * @param seed          seed of the training subsample, the batch order, the adapter/classifier initialisation
 * @param trainSize     training sentences drawn (class-stratified) from the train split; 0 = the whole split
 * @param epochs        passes over the training sentences
 * @param batchSize     sentences per optimizer step
 * @param learningRate  Adam learning rate of every trainable parameter (adapters and classifier)
 * @param fullLearningRate Adam learning rate of full fine-tuning ({@link Method#FULL}), chosen on dev separately
 * @param ranks         PRILoRA's rank schedule over the six blocks (e.g. {@code 4:12})
 * @param loraRank      uniform rank of the LoRA baseline
 * @param alpha         LoRA alpha; scale {@code alpha / r}
 * @param pruneFraction PRILoRA's fraction γ of every row of A pruned per pruning step
 * @param pruneInterval optimizer steps between pruning steps
 * @param pruneStart    first step that may prune (1-based)
 * @param emaBeta       EMA coefficient β of the input-norm statistics
 * @param pruneMode     REGROW (pruned entries may grow back) or PERSISTENT_MASK
 * @param maxLength     maximum tokens per sentence, special tokens included (longer sentences are truncated)
 * @param evaluateTest  whether to evaluate the test split (false for the dev-only ablation)
 * @param balanced      whether the training sample holds both classes equally (else the split's ~74/26 shares)
 * @param classWeights  whether the loss weighs each class by {@code n / (2 n_class)} of the training sample
 */
public record FineTuneSettings(Method method, long seed, int trainSize, int epochs, int batchSize, double learningRate,
                               double fullLearningRate, RankSchedule ranks, int loraRank, double alpha,
                               double pruneFraction, int pruneInterval, long pruneStart, double emaBeta,
                               PruningMode pruneMode, int maxLength, boolean evaluateTest, boolean balanced,
                               boolean classWeights) {

    /** Layer name of the classification head, saved with the adapters ("modules to save"). */
    public static final String HEAD = BertEncoderFactory.CLASSIFIER_NAME;

    /** Checks for nulls; ranges are checked by the command line (with option names in the messages). */
    public FineTuneSettings {
        Objects.requireNonNull(method, "method");
        Objects.requireNonNull(ranks, "ranks");
        Objects.requireNonNull(pruneMode, "pruneMode");
    }

    /**
     * @param m another method
     * @return the same settings for that method
     */
    public FineTuneSettings withMethod(Method m) {
        return new FineTuneSettings(m, seed, trainSize, epochs, batchSize, learningRate, fullLearningRate, ranks, loraRank,
                alpha, pruneFraction, pruneInterval, pruneStart, emaBeta, pruneMode, maxLength, evaluateTest, balanced,
                classWeights);
    }

    /**
     * @param s another seed
     * @return the same settings with that seed
     */
    public FineTuneSettings withSeed(long s) {
        return new FineTuneSettings(method, s, trainSize, epochs, batchSize, learningRate, fullLearningRate, ranks,
                loraRank, alpha, pruneFraction, pruneInterval, pruneStart, emaBeta, pruneMode, maxLength, evaluateTest,
                balanced, classWeights);
    }

    /** @return the rank schedule of this run's adapters: {@code ranks}, or uniform {@code loraRank} */
    public RankSchedule rankSchedule() {
        return method.linearRanks() ? ranks : RankSchedule.uniform(loraRank);
    }

    /** @return the learning rate of this run: {@code fullLearningRate} for full fine-tuning, else {@code learningRate} */
    public double runLearningRate() {
        return method == Method.FULL ? fullLearningRate : learningRate;
    }

    /** @return the pruning mode of this run: PERSISTENT_MASK for {@link Method#PRILORA_PERSISTENT}, else {@code pruneMode} */
    public PruningMode runPruneMode() {
        return method == Method.PRILORA_PERSISTENT ? PruningMode.PERSISTENT_MASK : pruneMode;
    }

    /** @return PRILoRA's pruning schedule; {@link PruningSchedule#none()} for the methods that do not prune */
    public PruningSchedule pruning() {
        if (!method.pruned()) {
            return PruningSchedule.none();
        }
        return PruningSchedule.builder().fraction(pruneFraction).interval(pruneInterval).startStep(pruneStart)
                .emaBeta(emaBeta).build();
    }

    /**
     * The adapter configuration of this run: ranks, alpha (scale alpha/r), pruning, Kaiming-uniform A, seed, and
     * the classifier as the module to save. {@code PriLora.adapt} converts the plain pretrained MiniLM with it, and
     * it is recorded in the adapter file and metrics.json.
     *
     * @return the configuration
     * @throws IllegalStateException for {@link Method#HEAD_ONLY}, which has no adapters
     */
    public PriLoraConfig priLoraConfig() {
        if (!method.usesAdapters()) {
            throw new IllegalStateException("method " + method + " trains no adapters; it has no PriLoraConfig");
        }
        return PriLoraConfig.builder()
                .rankSchedule(rankSchedule())
                .alpha(alpha)
                .scalingMode(ScalingMode.ALPHA_OVER_R)
                .pruningMode(runPruneMode())
                .pruning(pruning())
                .init(AdapterInit.KAIMING_UNIFORM)
                .seed(seed)
                .modulesToSave(HEAD)
                .build();
    }

    /** @return the settings as an ordered map, for metrics.json */
    public Map<String, Object> toMap() {
        Map<String, Object> m = Json.object("method", method.cliName(), "seed", seed, "trainSize", trainSize,
                "balanced", balanced, "classWeights", classWeights, "epochs", epochs, "batchSize", batchSize,
                "learningRate", runLearningRate(), "maxLength", maxLength);
        if (method.usesAdapters()) {
            PruningSchedule p = pruning();
            m.putAll(Json.object("ranks", rankSchedule().toString(), "alpha", alpha, "pruneFraction", p.fraction(),
                    "pruneInterval", p.interval(), "pruneStart", p.startStep(), "emaBeta", p.emaBeta(),
                    "pruneMode", runPruneMode().name()));
        }
        m.put("evaluateTest", evaluateTest);
        return m;
    }
}
