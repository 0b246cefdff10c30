package org.prilora.samples.data;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Grammatical error detection (a token task) from the same LanguageTool English rule examples as
 * {@link LanguageToolAcceptability}: each wrong example is a sentence with its error at the {@code <marker>} span, and
 * its corrected partner (the span replaced by the first {@code |}-separated correction) a sentence without error.
 * Tokens inside the marked span are "error", every other token "ok".
 *
 * <p>The examples kept are those the acceptability data keeps as pairs, with the same cleaning (whitespace
 * normalised; empty corrections, examples without exactly one marker, corrections that change nothing and pairs that
 * differ only in case or punctuation dropped; duplicates by {@link LanguageToolAcceptability#dedupKey} removed, first
 * kept; texts seen both as wrong and as corrected dropped entirely), plus: wrong examples whose marker holds only white
 * space are dropped. Correct examples without a correction (no minimal pair) are not part of this task. The split is
 * the acceptability data's: group id from the corrected sentence, {@link LanguageToolAcceptability#splitOf}, so a
 * wrong sentence and its partner are always in the same split.
 */
public final class LanguageToolErrorDetection {

    private LanguageToolErrorDetection() {
    }

    /**
     * The three splits and what was dropped.
     *
     * @param source   where the examples came from
     * @param train    training split
     * @param dev      development split
     * @param test     test split
     * @param wrongExamples   examples with a {@code correction} attribute in the file
     * @param droppedExamples wrong examples left out by the cleaning (before deduplication)
     * @param duplicates      sentences left out as duplicates or as conflicting texts
     */
    public record Data(String source, List<ErrorDetectionExample> train, List<ErrorDetectionExample> dev,
                       List<ErrorDetectionExample> test, int wrongExamples, int droppedExamples, int duplicates) {
        public Data {
            train = List.copyOf(train);
            dev = List.copyOf(dev);
            test = List.copyOf(test);
        }
    }

    /**
     * Loads the grammar file from the classpath (the {@value LanguageToolAcceptability#ARTIFACT} jar).
     *
     * @throws IllegalStateException if the resource is missing or cannot be parsed
     */
    public static Data load() {
        ClassLoader loader = LanguageToolErrorDetection.class.getClassLoader();
        try (InputStream in = loader.getResourceAsStream(LanguageToolAcceptability.RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("Classpath resource " + LanguageToolAcceptability.RESOURCE + " not found; it ships in"
                        + " the Maven artifact " + LanguageToolAcceptability.ARTIFACT + ", which must be on the classpath");
            }
            return fromXml(in, LanguageToolAcceptability.RESOURCE);
        } catch (IOException e) {
            throw new IllegalStateException("Could not read " + LanguageToolAcceptability.RESOURCE + ": " + e.getMessage(), e);
        }
    }

    /** Builds the data set from any LanguageTool grammar file (the stream is not closed). */
    public static Data fromXml(InputStream xml, String sourceName) {
        Objects.requireNonNull(xml, "xml");
        Objects.requireNonNull(sourceName, "sourceName");
        return build(LanguageToolXml.parse(xml, sourceName), sourceName);
    }

    static Data build(List<LanguageToolXml.RawExample> raw, String sourceName) {
        int wrongExamples = 0;
        int dropped = 0;
        List<ErrorDetectionExample> candidates = new ArrayList<>();
        for (LanguageToolXml.RawExample e : raw) {
            if (e.type() != null || e.correction() == null) {
                continue;
            }
            wrongExamples++;
            String fix = e.correction().split("\\|", -1)[0];
            if (fix.isBlank() || e.markers() != 1) {
                dropped++;
                continue;
            }
            String text = e.text();
            String wrong = LanguageToolAcceptability.normalizeWhitespace(text);
            String right = LanguageToolAcceptability.normalizeWhitespace(text.substring(0, e.markerStart()) + fix
                    + text.substring(e.markerEnd()));
            int[] span = normalizedSpan(text, e.markerStart(), e.markerEnd(), wrong);
            if (span == null || wrong.equals(right) || LanguageToolAcceptability.differsOnlyInCaseOrPunctuation(wrong, right)) {
                dropped++;
                continue;
            }
            String group = LanguageToolAcceptability.groupIdOf(right);
            candidates.add(new ErrorDetectionExample(wrong, span[0], span[1], group, e.ruleId()));
            candidates.add(new ErrorDetectionExample(right, -1, -1, group, e.ruleId()));
        }
        Map<String, Integer> seen = new HashMap<>();   // dedup key -> 1 (wrong) | 2 (correct)
        for (ErrorDetectionExample c : candidates) {
            seen.merge(LanguageToolAcceptability.dedupKey(c.sentence()), c.hasError() ? 1 : 2, (x, y) -> x | y);
        }
        Set<String> kept = new HashSet<>();
        List<ErrorDetectionExample> train = new ArrayList<>();
        List<ErrorDetectionExample> dev = new ArrayList<>();
        List<ErrorDetectionExample> test = new ArrayList<>();
        int duplicates = 0;
        for (ErrorDetectionExample c : candidates) {
            String key = LanguageToolAcceptability.dedupKey(c.sentence());
            if (seen.get(key) == 3 || !kept.add(key)) {
                duplicates++;
                continue;
            }
            switch (LanguageToolAcceptability.splitOf(c.groupId())) {
                case TRAIN -> train.add(c);
                case DEV -> dev.add(c);
                case TEST -> test.add(c);
            }
        }
        return new Data(sourceName, train, dev, test, wrongExamples, dropped, duplicates);
    }

    /**
     * The marked span {@code [start, end)} of {@code text} in its whitespace-normalised form {@code normalized},
     * trimmed of white space; null when the marker holds only white space.
     */
    static int[] normalizedSpan(String text, int start, int end, String normalized) {
        String marked = LanguageToolAcceptability.normalizeWhitespace(text.substring(start, end));
        if (marked.isEmpty()) {
            return null;
        }
        String prefix = LanguageToolAcceptability.normalizeWhitespace(text.substring(0, start));
        int from = prefix.length();
        if (!prefix.isEmpty() && from < normalized.length() && normalized.charAt(from) == ' ') {
            from++;
        }
        if (!normalized.startsWith(marked, from)) {
            // a marker inside a word with white space next to it cannot be told apart after normalisation
            return null;
        }
        return new int[]{from, from + marked.length()};
    }
}
