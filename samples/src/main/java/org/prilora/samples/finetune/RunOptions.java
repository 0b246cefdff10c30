package org.prilora.samples.finetune;

import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

/**
 * The options of one run that every task's command shares (a picocli mixin): method, training budget, learning
 * rate, seed, maximum length and whether the test split is evaluated. Defaults are the main job's
 * ({@link AcceptabilityFineTune}).
 */
final class RunOptions {

    @Option(names = "--method", defaultValue = "prilora", converter = AcceptabilityFineTune.MethodConverter.class,
            paramLabel = "METHOD",
            description = "prilora | lora | linear-unpruned | uniform-pruned | prilora-persistent | full | head-only "
                    + "(default: ${DEFAULT-VALUE}). lora: uniform rank, no pruning; linear-unpruned and "
                    + "uniform-pruned: the paper's two ablations; prilora-persistent: PERSISTENT_MASK pruning; full: "
                    + "every weight trains (--full-lr); head-only: frozen encoder, only the head trains.")
    Method method;

    @Option(names = "--train-size", defaultValue = AcceptabilityFineTune.DEFAULT_TRAIN_SIZE, paramLabel = "N",
            description = "Training sentences drawn from the train split with the seed; 0 = the whole split (default: "
                    + "${DEFAULT-VALUE}).")
    int trainSize;

    @Option(names = "--epochs", defaultValue = AcceptabilityFineTune.DEFAULT_EPOCHS, paramLabel = "N",
            description = "Passes over the training sentences, 1..1000 (default: ${DEFAULT-VALUE}).")
    int epochs;

    @Option(names = "--batch-size", defaultValue = AcceptabilityFineTune.DEFAULT_BATCH_SIZE, paramLabel = "N",
            description = "Sentences per optimizer step, 1..1024 (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--lr", defaultValue = AcceptabilityFineTune.DEFAULT_LR, paramLabel = "RATE",
            description = "Adam learning rate of adapters and head, in (0, 1) (default: ${DEFAULT-VALUE}).")
    double lr;

    @Option(names = "--seed", defaultValue = AcceptabilityFineTune.DEFAULT_SEED, paramLabel = "SEED",
            description = "Seed of the sample, batch order and initialisation (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--max-length", defaultValue = AcceptabilityFineTune.DEFAULT_MAX_LENGTH, paramLabel = "TOKENS",
            description = "Maximum tokens per sentence incl. [CLS]/[SEP], 2..512; longer ones are truncated "
                    + "(default: ${DEFAULT-VALUE}).")
    int maxLength;

    @Option(names = "--skip-test", description = "Evaluate the dev split only (for ablations: the test split stays unseen).")
    boolean skipTest;

    /** Checks the ranges, naming the option, the value and the allowed range. */
    void check(CommandSpec spec) {
        OptionChecks.check(spec, trainSize >= 0, "--train-size", trainSize, "0 (whole train split) or a sentence count >= 1");
        OptionChecks.check(spec, epochs >= 1 && epochs <= 1000, "--epochs", epochs, "1..1000");
        OptionChecks.check(spec, batchSize >= 1 && batchSize <= 1024, "--batch-size", batchSize, "1..1024");
        OptionChecks.check(spec, lr > 0 && lr < 1, "--lr", lr, "a number in (0, 1)");
        OptionChecks.check(spec, maxLength >= 2 && maxLength <= 512, "--max-length", maxLength,
                "2..512 (MiniLM has 512 positions)");
    }
}
