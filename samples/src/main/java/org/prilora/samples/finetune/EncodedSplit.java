package org.prilora.samples.finetune;

import org.prilora.bert.BertTokenizer;
import org.prilora.samples.data.AcceptabilityExample;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * A list of examples tokenized once, unpadded: each sentence's WordPiece ids ({@code [CLS] … [SEP]}, truncated to the
 * tokenizer's maximum length) and its label. Batches are padded later, per batch, by {@link LengthBatcher#pad}, so
 * the padding only ever reaches the longest sentence of the batch. Instances are immutable.
 */
public final class EncodedSplit {

    /** Sentences per tokenizer call: large enough to use the Rust tokenizer's batching, small enough for memory. */
    private static final int CHUNK = 512;

    private final List<AcceptabilityExample> examples;
    private final List<int[]> tokenIds;
    private final int[] labels;

    /**
     * @param examples the source examples
     * @param tokenIds the unpadded token ids of each example, same order
     * @throws IllegalArgumentException if the sizes differ or a sentence has no tokens
     */
    public EncodedSplit(List<AcceptabilityExample> examples, List<int[]> tokenIds) {
        this.examples = List.copyOf(Objects.requireNonNull(examples, "examples"));
        if (tokenIds.size() != examples.size()) {
            throw new IllegalArgumentException("tokenIds: expected one entry per example (" + examples.size() + "), got "
                    + tokenIds.size());
        }
        List<int[]> ids = new ArrayList<>(tokenIds.size());
        for (int i = 0; i < tokenIds.size(); i++) {
            int[] t = tokenIds.get(i);
            if (t == null || t.length == 0) {
                throw new IllegalArgumentException("tokenIds[" + i + "]: expected at least one token");
            }
            ids.add(t.clone());
        }
        this.tokenIds = List.copyOf(ids);
        this.labels = examples.stream().mapToInt(AcceptabilityExample::label).toArray();
    }

    /**
     * Tokenizes every example's sentence.
     *
     * @param tokenizer the tokenizer (its maximum length truncates)
     * @param examples  the examples
     * @return the encoded split
     */
    public static EncodedSplit encode(BertTokenizer tokenizer, List<AcceptabilityExample> examples) {
        List<int[]> ids = new ArrayList<>(examples.size());
        for (int from = 0; from < examples.size(); from += CHUNK) {
            List<AcceptabilityExample> chunk = examples.subList(from, Math.min(examples.size(), from + CHUNK));
            BertTokenizer.Batch b = tokenizer.encode(chunk.stream().map(AcceptabilityExample::sentence).toList());
            long[][] all = b.ids();
            long[][] mask = b.attentionMask();
            for (int i = 0; i < b.batchSize(); i++) {
                int n = b.realLength(i);
                // the tokenizer pads on the right; anything else would misplace position embeddings below
                for (int t = 0; t < mask[i].length; t++) {
                    if ((mask[i][t] != 0) != (t < n)) {
                        throw new IllegalStateException("tokenizer: expected right padding, got attention mask "
                                + Arrays.toString(mask[i]) + " for sentence: " + chunk.get(i).sentence());
                    }
                }
                int[] row = new int[n];
                for (int t = 0; t < n; t++) {
                    row[t] = Math.toIntExact(all[i][t]);
                }
                ids.add(row);
            }
        }
        return new EncodedSplit(examples, ids);
    }

    /** @return number of sentences */
    public int size() {
        return labels.length;
    }

    /** @return the examples, in order */
    public List<AcceptabilityExample> examples() {
        return examples;
    }

    /** @return unpadded token ids, one array per sentence (the list is unmodifiable; do not modify the arrays) */
    public List<int[]> tokenIds() {
        return tokenIds;
    }

    /** @return labels (a copy) */
    public int[] labels() {
        return labels.clone();
    }

    /** @return token counts (special tokens included), one per sentence */
    public int[] lengths() {
        return tokenIds.stream().mapToInt(a -> a.length).toArray();
    }

    /** @return mean token count */
    public double meanLength() {
        return tokenIds.stream().mapToInt(a -> a.length).average().orElse(0);
    }
}
