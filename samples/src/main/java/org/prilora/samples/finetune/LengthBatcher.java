package org.prilora.samples.finetune;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Random;

/**
 * Deterministic mini-batching of variable-length sentences with little padding.
 *
 * <p>Training: each epoch shuffles all sentences with a {@link Random} seeded from {@code (seed, epoch)} (Java
 * specifies that generator's algorithm, so the order is the same on every JVM), cuts the shuffled list into
 * buckets of {@code batchSize × bucketBatches} sentences, sorts each bucket by length (stable, so ties keep the
 * shuffled order), cuts it into batches and finally shuffles the order of the batches. Sentences in one batch then
 * have similar lengths (MiniLM's cost grows with the padded length T), while every epoch still sees a different
 * random grouping. Only the very last batch of an epoch can be smaller than {@code batchSize}; nothing is dropped.
 *
 * <p>Evaluation: all sentences sorted by length (stable), cut into batches; callers map predictions back by
 * {@link PaddedBatch#indices()}.
 */
public final class LengthBatcher {

    /** Default batches per length bucket. */
    public static final int DEFAULT_BUCKET_BATCHES = 16;

    private LengthBatcher() {
    }

    /**
     * The batches of one training epoch, as indices into the sentence list.
     *
     * @param lengths       token count of every sentence
     * @param batchSize     sentences per batch, at least 1
     * @param bucketBatches batches per length bucket, at least 1 (1: no length grouping beyond one batch)
     * @param seed          run seed
     * @param epoch         epoch number (0-based)
     * @return the batches, in training order; together they hold every index exactly once
     */
    public static List<int[]> trainingBatches(int[] lengths, int batchSize, int bucketBatches, long seed, int epoch) {
        requirePositive("batchSize", batchSize);
        requirePositive("bucketBatches", bucketBatches);
        Random random = new Random(epochSeed(seed, epoch));
        List<Integer> order = new ArrayList<>(lengths.length);
        for (int i = 0; i < lengths.length; i++) {
            order.add(i);
        }
        Collections.shuffle(order, random);
        int bucket = Math.multiplyExact(batchSize, bucketBatches);
        List<int[]> batches = new ArrayList<>();
        for (int from = 0; from < order.size(); from += bucket) {
            List<Integer> b = new ArrayList<>(order.subList(from, Math.min(order.size(), from + bucket)));
            b.sort(Comparator.comparingInt(i -> lengths[i])); // List.sort is stable
            cut(b, batchSize, batches);
        }
        Collections.shuffle(batches, random);
        return batches;
    }

    /**
     * Evaluation batches: every index once, sorted by length.
     *
     * @param lengths   token count of every sentence
     * @param batchSize sentences per batch, at least 1
     * @return the batches
     */
    public static List<int[]> evaluationBatches(int[] lengths, int batchSize) {
        requirePositive("batchSize", batchSize);
        List<Integer> order = new ArrayList<>(lengths.length);
        for (int i = 0; i < lengths.length; i++) {
            order.add(i);
        }
        order.sort(Comparator.comparingInt(i -> lengths[i]));
        List<int[]> batches = new ArrayList<>();
        cut(order, batchSize, batches);
        return batches;
    }

    /**
     * @param n         sentences
     * @param batchSize sentences per batch
     * @return number of batches per training epoch (the last one may be smaller)
     */
    public static int batchesPerEpoch(int n, int batchSize) {
        requirePositive("batchSize", batchSize);
        return (n + batchSize - 1) / batchSize;
    }

    /**
     * Pads the selected sentences on the right to the longest of them and builds the network's arrays.
     *
     * @param tokenIds  unpadded token ids of all sentences
     * @param labelsOrNull labels of all sentences (0/1), or null for no labels
     * @param indices   which sentences, in batch order
     * @return features {@code [mb, 2, T]} (channel 0 token ids, channel 1 token types, all 0 for single sentences),
     *         attention mask {@code [mb, T]} (1 = real token) and one-hot labels {@code [mb, 2]} (or null)
     */
    public static PaddedBatch pad(List<int[]> tokenIds, int[] labelsOrNull, int[] indices) {
        if (indices.length == 0) {
            throw new IllegalArgumentException("indices: expected at least one sentence, got none");
        }
        int mb = indices.length;
        int t = 0;
        int tokens = 0;
        for (int i : indices) {
            t = Math.max(t, tokenIds.get(i).length);
            tokens += tokenIds.get(i).length;
        }
        float[] features = new float[mb * 2 * t]; // token type channel stays 0
        float[] mask = new float[mb * t];
        float[] labels = labelsOrNull == null ? null : new float[mb * 2];
        for (int r = 0; r < mb; r++) {
            int[] ids = tokenIds.get(indices[r]);
            for (int k = 0; k < ids.length; k++) {
                features[r * 2 * t + k] = ids[k];
                mask[r * t + k] = 1f;
            }
            if (labels != null) {
                int y = labelsOrNull[indices[r]];
                if (y != 0 && y != 1) {
                    throw new IllegalArgumentException("labels[" + indices[r] + "]: expected 0 or 1, got " + y);
                }
                labels[r * 2 + y] = 1f;
            }
        }
        return new PaddedBatch(
                Nd4j.create(features, new long[]{mb, 2, t}, 'c').castTo(DataType.FLOAT),
                Nd4j.create(mask, new long[]{mb, t}, 'c').castTo(DataType.FLOAT),
                labels == null ? null : Nd4j.create(labels, new long[]{mb, 2}, 'c').castTo(DataType.FLOAT),
                indices.clone(), t, tokens);
    }

    /** Seed of one epoch's generator: mixes the run seed and the epoch so neighbouring seeds do not correlate. */
    static long epochSeed(long seed, int epoch) {
        long z = seed * 0x9E3779B97F4A7C15L + epoch;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L; // SplitMix64 finaliser
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static void cut(List<Integer> order, int batchSize, List<int[]> out) {
        for (int from = 0; from < order.size(); from += batchSize) {
            out.add(order.subList(from, Math.min(order.size(), from + batchSize)).stream().mapToInt(Integer::intValue)
                    .toArray());
        }
    }

    private static void requirePositive(String name, int v) {
        if (v < 1) {
            throw new IllegalArgumentException(name + ": expected >= 1, got " + v);
        }
    }

    /**
     * One padded batch.
     *
     * @param features    {@code [mb, 2, T]} token ids and token types
     * @param mask        {@code [mb, T]} attention mask
     * @param labels      {@code [mb, 2]} one-hot labels, or null
     * @param indices     indices of the sentences, in row order
     * @param paddedLength T
     * @param realTokens  number of real (unpadded) tokens in the batch
     */
    public record PaddedBatch(INDArray features, INDArray mask, INDArray labels, int[] indices, int paddedLength,
                              int realTokens) {
        /** @return sentences in the batch */
        public int size() {
            return indices.length;
        }

        @Override
        public String toString() {
            return "PaddedBatch[mb=" + indices.length + ", T=" + paddedLength + ", indices=" + Arrays.toString(indices) + "]";
        }
    }
}
