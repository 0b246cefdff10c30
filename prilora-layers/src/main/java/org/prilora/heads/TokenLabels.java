package org.prilora.heads;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.bert.BertTokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Per-token labels for a token-classification head ({@code BertHead.tokenClassification}), built from one label per
 * word: one-hot labels {@code [mb, numLabels, T]} and the label mask {@code [mb, T]} that DL4J's
 * {@code RnnOutputLayer} applies to the loss. The mask is 1 only at labelled text tokens, so padding and the special
 * tokens ({@code [CLS]}, {@code [SEP]}) never reach the loss; with {@link SubWordLabels#FIRST_PIECE} only the first
 * piece of each word counts. Words are the tokenizer's words ({@link BertTokenizer.Batch#wordIds()}); a word label
 * {@link #IGNORE} leaves that word out of the loss.
 *
 * <pre>{@code
 * BertTokenizer.Batch b = tokenizer.encode(sentences);
 * TokenLabels y = TokenLabels.fromWordLabels(b, wordLabels, 2, SubWordLabels.FIRST_PIECE);
 * DataSet ds = new DataSet(b.features(DataType.FLOAT, true), y.labels(), b.maskArray(DataType.FLOAT), y.mask());
 * }</pre>
 *
 * @param labels one-hot {@code [mb, numLabels, T]} (all zero where the mask is 0)
 * @param mask   {@code [mb, T]}, 1 where the token's label counts
 */
public record TokenLabels(INDArray labels, INDArray mask) {

    /** A word label that is not trained on (masked out). */
    public static final int IGNORE = -1;

    /**
     * Token labels from word labels: {@code wordLabels.get(i)[w]} is the label of word {@code w} of sentence {@code i}.
     *
     * @throws IllegalArgumentException when the number of sentences or of words does not match the batch, a label is
     *                                  outside {@code [0, numLabels)} (and not {@link #IGNORE}), or the batch holds pairs
     */
    public static TokenLabels fromWordLabels(BertTokenizer.Batch batch, List<int[]> wordLabels, int numLabels, SubWordLabels subWords) {
        return fromWordLabels(batch, wordLabels, numLabels, subWords, DataType.FLOAT);
    }

    /** {@link #fromWordLabels(BertTokenizer.Batch, List, int, SubWordLabels)} in the given data type. */
    public static TokenLabels fromWordLabels(BertTokenizer.Batch batch, List<int[]> wordLabels, int numLabels, SubWordLabels subWords,
                                             DataType dataType) {
        Objects.requireNonNull(batch, "batch");
        Objects.requireNonNull(wordLabels, "wordLabels");
        Objects.requireNonNull(subWords, "subWords");
        if (numLabels < 2) {
            throw new IllegalArgumentException("numLabels: expected >= 2, got " + numLabels);
        }
        int mb = batch.batchSize();
        int t = batch.length();
        if (wordLabels.size() != mb) {
            throw new IllegalArgumentException("wordLabels: expected one label array per sentence of the batch (" + mb + "), got "
                    + wordLabels.size());
        }
        long[][] words = batch.wordIds();
        long[][] sequences = batch.sequenceIds();
        INDArray labels = Nd4j.zeros(dataType, mb, numLabels, t);
        INDArray mask = Nd4j.zeros(dataType, mb, t);
        for (int i = 0; i < mb; i++) {
            int[] wl = Objects.requireNonNull(wordLabels.get(i), "wordLabels[" + i + "]");
            int n = wordCount(words[i]);
            boolean mayBeTruncated = batch.realLength(i) >= batch.maxLength();
            if (wl.length < n || (wl.length > n && !mayBeTruncated)) {
                throw new IllegalArgumentException("wordLabels[" + i + "]: expected " + n + " labels (the sentence has " + n
                        + " words, " + batch.realLength(i) + " tokens), got " + wl.length);
            }
            for (int w = 0; w < wl.length; w++) {
                if (wl[w] != IGNORE && (wl[w] < 0 || wl[w] >= numLabels)) {
                    throw new IllegalArgumentException("wordLabels[" + i + "][" + w + "]: expected a label index in [0, "
                            + (numLabels - 1) + "] (numLabels = " + numLabels + ") or IGNORE (-1), got " + wl[w]);
                }
            }
            long previous = -1;
            for (int k = 0; k < t; k++) {
                if (sequences[i][k] > 0) {
                    throw new IllegalArgumentException("batch: token labels are for single sentences, example " + i + " is a pair");
                }
                long w = words[i][k];
                if (w < 0 || !batch.isTextToken(i, k)) {
                    previous = -1;
                    continue;
                }
                boolean first = w != previous;
                previous = w;
                int label = wl[(int) w];
                if (label == IGNORE || (subWords == SubWordLabels.FIRST_PIECE && !first)) {
                    continue;
                }
                labels.putScalar(new long[]{i, label, k}, 1.0);
                mask.putScalar(i, k, 1.0);
            }
        }
        return new TokenLabels(labels, mask);
    }

    /** Words of one tokenized sentence: one more than the largest word id (0 when it has no text token). */
    static int wordCount(long[] wordIds) {
        long max = -1;
        for (long w : wordIds) {
            max = Math.max(max, w);
        }
        return (int) (max + 1);
    }

    /**
     * Word labels of sentence {@code i} from character spans: a word gets {@code spanLabel} when any of its pieces
     * overlaps one of the spans {@code [start, end)} (Unicode code points, as {@link BertTokenizer.Batch#charStart}),
     * {@code otherLabel} otherwise.
     */
    public static int[] wordsInSpans(BertTokenizer.Batch batch, int i, List<int[]> spans, int spanLabel, int otherLabel) {
        long[] words = batch.wordIds()[i];
        int[] out = new int[wordCount(words)];
        java.util.Arrays.fill(out, otherLabel);
        for (int k = 0; k < words.length; k++) {
            if (words[k] < 0 || !batch.isTextToken(i, k)) {
                continue;
            }
            for (int[] s : spans) {
                if (batch.charStart(i, k) < s[1] && s[0] < batch.charEnd(i, k)) {
                    out[(int) words[k]] = spanLabel;
                }
            }
        }
        return out;
    }

    /**
     * Predicted label of every word of each sentence: the arg-max of the head's output {@code [mb, numLabels, T]} at
     * the word's first piece.
     */
    public static List<int[]> wordPredictions(BertTokenizer.Batch batch, INDArray output) {
        if (output.rank() != 3 || output.size(0) != batch.batchSize() || output.size(2) != batch.length()) {
            throw new IllegalArgumentException("output: expected [" + batch.batchSize() + ", numLabels, " + batch.length()
                    + "] for this batch, got " + java.util.Arrays.toString(output.shape()));
        }
        INDArray argmax = output.argMax(1);   // [mb, T]
        long[][] words = batch.wordIds();
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < batch.batchSize(); i++) {
            int[] p = new int[wordCount(words[i])];
            java.util.Arrays.fill(p, IGNORE);
            for (int k = 0; k < words[i].length; k++) {
                long w = words[i][k];
                if (w >= 0 && batch.isTextToken(i, k) && p[(int) w] == IGNORE) {
                    p[(int) w] = argmax.getInt(i, k);
                }
            }
            out.add(p);
        }
        return out;
    }
}
