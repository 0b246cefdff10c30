package org.prilora.heads;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * Precision, recall and F1 of a token-classification model at two levels, accumulated over sentences of word labels:
 * <ul>
 *   <li><b>spans</b> (entities), exact matches of start, end and type, as {@code seqeval}/{@code conlleval} count
 *       them. {@link #bio} reads BIO tags ({@code B-X} starts a span of type {@code X}, {@code I-X} continues it; an
 *       {@code I-X} that does not continue an {@code X} span starts one, as conlleval does); {@link #simple} takes
 *       every maximal run of one non-outside label as a span of that label.</li>
 *   <li><b>tokens</b>: every word whose gold or predicted label is not the outside label; a true positive when
 *       both are the same label (for BIO, the same type). Plus word accuracy over all words.</li>
 * </ul>
 * Words labelled {@link TokenLabels#IGNORE} in the gold sequence are skipped at the token level and break spans.
 * Not thread-safe.
 */
public final class SpanMetrics {

    /** Precision, recall and F1 with their counts; all three are 0 when undefined (no predictions, no gold). */
    public record Scores(long truePositives, long falsePositives, long falseNegatives) {
        public double precision() {
            return truePositives + falsePositives == 0 ? 0 : (double) truePositives / (truePositives + falsePositives);
        }

        public double recall() {
            return truePositives + falseNegatives == 0 ? 0 : (double) truePositives / (truePositives + falseNegatives);
        }

        public double f1() {
            double p = precision();
            double r = recall();
            return p + r == 0 ? 0 : 2 * p * r / (p + r);
        }

        @Override
        public String toString() {
            return String.format("P %.4f R %.4f F1 %.4f (tp %d, fp %d, fn %d)", precision(), recall(), f1(), truePositives,
                    falsePositives, falseNegatives);
        }
    }

    private final int outside;
    private final String[] bioTags;   // null for simple spans
    private long spanTp;
    private long spanFp;
    private long spanFn;
    private long tokTp;
    private long tokFp;
    private long tokFn;
    private long correctWords;
    private long words;

    private SpanMetrics(int outside, String[] bioTags) {
        this.outside = outside;
        this.bioTags = bioTags;
    }

    /** Simple span labels: {@code outsideLabel} is "no span"; every other label is a span type. */
    public static SpanMetrics simple(int outsideLabel) {
        return new SpanMetrics(outsideLabel, null);
    }

    /**
     * BIO labels: {@code tags[label]} is {@code "O"}, {@code "B-<type>"} or {@code "I-<type>"}.
     *
     * @throws IllegalArgumentException when a tag is none of these, or there is not exactly one {@code "O"}
     */
    public static SpanMetrics bio(String... tags) {
        Objects.requireNonNull(tags, "tags");
        int o = -1;
        for (int i = 0; i < tags.length; i++) {
            if ("O".equals(tags[i])) {
                if (o >= 0) {
                    throw new IllegalArgumentException("tags: expected one \"O\", found it at " + o + " and " + i);
                }
                o = i;
            } else if (tags[i] == null || !(tags[i].startsWith("B-") || tags[i].startsWith("I-")) || tags[i].length() < 3) {
                throw new IllegalArgumentException("tags[" + i + "]: expected \"O\", \"B-<type>\" or \"I-<type>\", got " + tags[i]);
            }
        }
        if (o < 0) {
            throw new IllegalArgumentException("tags: expected one \"O\" tag, got none in " + java.util.Arrays.toString(tags));
        }
        return new SpanMetrics(o, tags.clone());
    }

    /**
     * Adds one sentence: gold and predicted word labels of equal length.
     *
     * @throws IllegalArgumentException when the lengths differ or a label is out of range for BIO tags
     */
    public SpanMetrics add(int[] gold, int[] predicted) {
        Objects.requireNonNull(gold, "gold");
        Objects.requireNonNull(predicted, "predicted");
        if (gold.length != predicted.length) {
            throw new IllegalArgumentException("predicted: expected " + gold.length + " labels like gold, got " + predicted.length);
        }
        for (int w = 0; w < gold.length; w++) {
            if (gold[w] == TokenLabels.IGNORE) {
                continue;
            }
            words++;
            String g = type(gold[w]);
            String p = type(predicted[w]);
            if (g != null && g.equals(p)) {
                tokTp++;
            } else {
                if (p != null) {
                    tokFp++;
                }
                if (g != null) {
                    tokFn++;
                }
            }
            if (gold[w] == predicted[w]) {
                correctWords++;
            }
        }
        Set<List<Object>> gs = spans(gold, gold);
        Set<List<Object>> ps = spans(predicted, gold);
        for (List<Object> s : ps) {
            if (gs.contains(s)) {
                spanTp++;
            } else {
                spanFp++;
            }
        }
        for (List<Object> s : gs) {
            if (!ps.contains(s)) {
                spanFn++;
            }
        }
        return this;
    }

    /** Span type of a label, or null for the outside label. */
    private String type(int label) {
        if (label == outside || label == TokenLabels.IGNORE) {
            return null;
        }
        if (bioTags == null) {
            return Integer.toString(label);
        }
        if (label < 0 || label >= bioTags.length) {
            throw new IllegalArgumentException("label: expected an index in [0, " + (bioTags.length - 1) + "] of the BIO tags, got " + label);
        }
        return bioTags[label].substring(2);
    }

    private boolean begins(int label) {
        return bioTags != null && label != outside && label >= 0 && bioTags[label].startsWith("B-");
    }

    /** Spans as (start, end exclusive, type); positions where {@code gold} is IGNORE end any span. */
    private Set<List<Object>> spans(int[] labels, int[] gold) {
        Set<List<Object>> out = new HashSet<>();
        int start = -1;
        String current = null;
        for (int w = 0; w <= labels.length; w++) {
            String t = w < labels.length && gold[w] != TokenLabels.IGNORE ? type(labels[w]) : null;
            boolean continues = t != null && t.equals(current) && !(w < labels.length && begins(labels[w]));
            if (!continues) {
                if (current != null) {
                    out.add(List.of(start, w, current));
                }
                current = t;
                start = w;
            }
        }
        return out;
    }

    /** Span (entity) level scores. */
    public Scores spans() {
        return new Scores(spanTp, spanFp, spanFn);
    }

    /** Token (word) level scores over the non-outside labels. */
    public Scores tokens() {
        return new Scores(tokTp, tokFp, tokFn);
    }

    /** Fraction of words whose predicted label equals the gold one (0 when none was added). */
    public double wordAccuracy() {
        return words == 0 ? 0 : (double) correctWords / words;
    }

    /** Words counted so far (IGNORE excluded). */
    public long words() {
        return words;
    }

    /** Every prediction an outside label: what a majority "nothing to find" baseline scores on the same gold labels. */
    public static int[] allOutside(int length, int outsideLabel) {
        int[] p = new int[length];
        java.util.Arrays.fill(p, outsideLabel);
        return p;
    }

    @Override
    public String toString() {
        return "spans " + spans() + "; tokens " + tokens() + "; word accuracy " + String.format("%.4f", wordAccuracy());
    }

    /** For tests: the spans of one label sequence as (start, end, type) lists. */
    List<List<Object>> spansOf(int[] labels) {
        return new ArrayList<>(spans(labels, labels));
    }
}
