package org.prilora.samples.data;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * A grammatical-acceptability data set split into train, dev and test, plus the bookkeeping of how it was built
 * (what was read, what was dropped and why). Instances are immutable; the lists are unmodifiable.
 *
 * <p>Produced by {@link LanguageToolAcceptability#load()}; see that class for the construction and split rules.
 */
public final class AcceptabilityData {

    /**
     * How many source examples were read and how many were dropped, per reason.
     *
     * @param sourceExamples           {@code <example>} elements read (XML comments are not read)
     * @param incorrectExamples        of those, examples with a {@code correction} attribute (wrong sentences)
     * @param correctExamples          of those, examples with neither {@code correction} nor {@code type}
     * @param typedExamples            of those, examples with a {@code type} attribute (e.g. {@code triggers_error});
     *                                 all left out, their label is not a plain grammaticality judgement
     * @param emptyCorrection          wrong examples dropped because the (first) correction is empty
     * @param badMarker                wrong examples dropped because they hold no, or more than one, {@code <marker>}
     * @param identicalCorrection      wrong examples dropped because applying the correction changes nothing
     *                                 (after whitespace normalisation)
     * @param caseOrPunctuationOnly    pairs dropped because wrong and corrected sentence differ only in letter case,
     *                                 accents, punctuation or symbols, which an uncased model cannot (or should not)
     *                                 learn as grammaticality; see
     *                                 {@link LanguageToolAcceptability#differsOnlyInCaseOrPunctuation(String, String)}
     * @param duplicates               sentence copies dropped because the same text (same label) came earlier
     * @param conflictingTexts         distinct texts that occur with both labels; every copy of them is dropped
     * @param conflictingCopies        sentence copies dropped for {@code conflictingTexts}
     */
    public record Counts(int sourceExamples, int incorrectExamples, int correctExamples, int typedExamples,
                         int emptyCorrection, int badMarker, int identicalCorrection, int caseOrPunctuationOnly,
                         int duplicates, int conflictingTexts, int conflictingCopies) {
    }

    private final List<AcceptabilityExample> train;
    private final List<AcceptabilityExample> dev;
    private final List<AcceptabilityExample> test;
    private final Counts counts;
    private final String source;

    AcceptabilityData(String source, List<AcceptabilityExample> train, List<AcceptabilityExample> dev,
                      List<AcceptabilityExample> test, Counts counts) {
        this.source = Objects.requireNonNull(source, "source");
        this.train = List.copyOf(train);
        this.dev = List.copyOf(dev);
        this.test = List.copyOf(test);
        this.counts = Objects.requireNonNull(counts, "counts");
    }

    /** @return the training split, in source-file order */
    public List<AcceptabilityExample> train() {
        return train;
    }

    /** @return the development (validation) split, in source-file order */
    public List<AcceptabilityExample> dev() {
        return dev;
    }

    /** @return the test split, in source-file order */
    public List<AcceptabilityExample> test() {
        return test;
    }

    /**
     * @param split which split
     * @return that split's examples
     */
    public List<AcceptabilityExample> get(LanguageToolAcceptability.Split split) {
        return switch (Objects.requireNonNull(split, "split")) {
            case TRAIN -> train;
            case DEV -> dev;
            case TEST -> test;
        };
    }

    /** @return train, dev and test concatenated (a new unmodifiable list) */
    public List<AcceptabilityExample> all() {
        List<AcceptabilityExample> all = new ArrayList<>(size());
        all.addAll(train);
        all.addAll(dev);
        all.addAll(test);
        return List.copyOf(all);
    }

    /** @return total number of examples over the three splits */
    public int size() {
        return train.size() + dev.size() + test.size();
    }

    /** @return what was read and dropped while building the data */
    public Counts counts() {
        return counts;
    }

    /** @return name of the source the data was built from (a classpath resource, or a caller-given name) */
    public String source() {
        return source;
    }

    /**
     * @param examples any list of examples
     * @return how many of them are labelled acceptable
     */
    public static int countAcceptable(List<AcceptabilityExample> examples) {
        int n = 0;
        for (AcceptabilityExample e : examples) {
            if (e.acceptable()) {
                n++;
            }
        }
        return n;
    }

    /**
     * A human-readable, multi-line summary: split sizes and class balance per split, then what was read and
     * what was dropped and why.
     *
     * @return the summary, lines separated by {@code \n}
     */
    public String summary() {
        StringBuilder sb = new StringBuilder();
        sb.append("Acceptability data from ").append(source).append('\n');
        line(sb, "train", train);
        line(sb, "dev", dev);
        line(sb, "test", test);
        line(sb, "total", all());
        Counts c = counts;
        sb.append(String.format(Locale.ROOT,
                "  read: %d examples = %d wrong (with correction) + %d correct + %d typed%n",
                c.sourceExamples(), c.incorrectExamples(), c.correctExamples(), c.typedExamples()));
        sb.append("  dropped:\n");
        drop(sb, c.typedExamples(), "typed examples (type=\"triggers_error\" etc.)");
        drop(sb, c.emptyCorrection(), "wrong examples with an empty correction");
        drop(sb, c.badMarker(), "wrong examples without exactly one <marker>");
        drop(sb, c.identicalCorrection(), "wrong examples whose correction leaves the sentence unchanged");
        drop(sb, c.caseOrPunctuationOnly(), "pairs differing only in case/accents/punctuation/symbols (x2 sentences)");
        drop(sb, c.duplicates(), "duplicate sentences (same text, same label; first kept)");
        sb.append(String.format(Locale.ROOT,
                "    %6d sentences with conflicting labels (%d distinct texts seen as both 0 and 1; all copies)%n",
                c.conflictingCopies(), c.conflictingTexts()));
        return sb.toString().replace(System.lineSeparator(), "\n");
    }

    private static void line(StringBuilder sb, String name, List<AcceptabilityExample> split) {
        int ok = countAcceptable(split);
        double pct = split.isEmpty() ? 0.0 : 100.0 * ok / split.size();
        sb.append(String.format(Locale.ROOT, "  %-5s %6d sentences: %6d acceptable (%.1f%%), %6d unacceptable%n",
                name, split.size(), ok, pct, split.size() - ok));
    }

    private static void drop(StringBuilder sb, int n, String why) {
        sb.append(String.format(Locale.ROOT, "    %6d %s%n", n, why));
    }

    @Override
    public String toString() {
        return "AcceptabilityData[train=" + train.size() + ", dev=" + dev.size() + ", test=" + test.size() + "]";
    }
}
