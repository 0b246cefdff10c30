package org.prilora.samples.finetune;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Batching, padding and determinism of {@link LengthBatcher}. */
class LengthBatcherTest {

    private static int[] randomLengths(int n, long seed) {
        Random r = new Random(seed);
        return IntStream.range(0, n).map(i -> 3 + r.nextInt(40)).toArray();
    }

    @Test
    void everyIndexExactlyOncePerEpochAndOnlyTheLastBatchIsSmaller() {
        int[] lengths = randomLengths(1000, 1);
        List<int[]> batches = LengthBatcher.trainingBatches(lengths, 32, 4, 7, 0);
        int[] all = batches.stream().flatMapToInt(Arrays::stream).sorted().toArray();
        assertThat(all).isEqualTo(IntStream.range(0, 1000).toArray());
        assertThat(batches).hasSize(LengthBatcher.batchesPerEpoch(1000, 32)).hasSize(32);
        assertThat(batches.stream().filter(b -> b.length != 32).mapToInt(b -> b.length).toArray()).containsExactly(1000 % 32);
    }

    @Test
    void sameSeedAndEpochGiveTheSameBatchesOtherwiseDifferent() {
        int[] lengths = randomLengths(500, 2);
        List<int[]> a = LengthBatcher.trainingBatches(lengths, 16, 8, 42, 0);
        List<int[]> b = LengthBatcher.trainingBatches(lengths, 16, 8, 42, 0);
        assertThat(a).hasSameSizeAs(b);
        for (int i = 0; i < a.size(); i++) {
            assertThat(a.get(i)).isEqualTo(b.get(i));
        }
        assertThat(flatten(LengthBatcher.trainingBatches(lengths, 16, 8, 42, 1))).isNotEqualTo(flatten(a));
        assertThat(flatten(LengthBatcher.trainingBatches(lengths, 16, 8, 43, 0))).isNotEqualTo(flatten(a));
    }

    @Test
    void withinABucketBatchesHoldConsecutiveLengths() {
        // one bucket holding everything: the batches cut a length-sorted list, so their length ranges do not overlap
        int[] lengths = randomLengths(256, 9);
        List<int[]> batches = new ArrayList<>(LengthBatcher.trainingBatches(lengths, 16, 16, 3, 0));
        batches.sort((x, y) -> Integer.compare(min(x, lengths), min(y, lengths)));
        for (int i = 1; i < batches.size(); i++) {
            assertThat(max(batches.get(i - 1), lengths)).isLessThanOrEqualTo(min(batches.get(i), lengths));
        }
    }

    private static int min(int[] b, int[] lengths) {
        return Arrays.stream(b).map(i -> lengths[i]).min().orElseThrow();
    }

    private static int max(int[] b, int[] lengths) {
        return Arrays.stream(b).map(i -> lengths[i]).max().orElseThrow();
    }

    @Test
    void bucketsGroupSimilarLengthsSoPaddingShrinks() {
        int[] lengths = randomLengths(4096, 3);
        long paddedBucketed = padded(LengthBatcher.trainingBatches(lengths, 32, 16, 5, 0), lengths);
        long paddedRandom = padded(LengthBatcher.trainingBatches(lengths, 32, 1, 5, 0), lengths);
        long real = Arrays.stream(lengths).sum();
        assertThat(paddedBucketed).isLessThan(paddedRandom);
        assertThat((double) paddedBucketed / real).isLessThan(1.1);
        // with one batch per bucket each batch is a random draw: about max/mean of uniform 3..42 → ~1.7x
        assertThat((double) paddedRandom / real).isGreaterThan(1.4);
    }

    @Test
    void evaluationBatchesAreSortedByLengthAndCoverEverything() {
        int[] lengths = randomLengths(300, 4);
        List<int[]> batches = LengthBatcher.evaluationBatches(lengths, 64);
        assertThat(batches).hasSize(5);
        int prev = 0;
        for (int[] b : batches) {
            for (int i : b) {
                assertThat(lengths[i]).isGreaterThanOrEqualTo(prev);
                prev = lengths[i];
            }
        }
        assertThat(flatten(batches).stream().sorted().toList()).isEqualTo(IntStream.range(0, 300).boxed().toList());
    }

    @Test
    void padBuildsIdsTypesMaskAndOneHotLabels() {
        List<int[]> ids = List.of(new int[]{101, 7, 102}, new int[]{101, 102}, new int[]{101, 5, 6, 8, 102});
        int[] labels = {1, 0, 1};
        LengthBatcher.PaddedBatch b = LengthBatcher.pad(ids, labels, new int[]{1, 0});
        assertThat(b.paddedLength()).isEqualTo(3);
        assertThat(b.realTokens()).isEqualTo(5);
        assertThat(b.features().shape()).containsExactly(2, 2, 3);
        INDArray f = b.features();
        assertThat(f.getDouble(0, 0, 0)).isEqualTo(101);
        assertThat(f.getDouble(0, 0, 1)).isEqualTo(102);
        assertThat(f.getDouble(0, 0, 2)).isEqualTo(0);     // padding id 0, on the right
        assertThat(f.getDouble(1, 0, 1)).isEqualTo(7);
        assertThat(f.slice(0).getRow(1).sumNumber().doubleValue()).isZero(); // token types all 0
        assertThat(f.slice(1).getRow(1).sumNumber().doubleValue()).isZero();
        assertThat(b.mask().toFloatMatrix()).isEqualTo(new float[][]{{1, 1, 0}, {1, 1, 1}});
        assertThat(b.labels().toFloatMatrix()).isEqualTo(new float[][]{{1, 0}, {0, 1}});
        assertThat(b.indices()).containsExactly(1, 0);

        LengthBatcher.PaddedBatch noLabels = LengthBatcher.pad(ids, null, new int[]{2});
        assertThat(noLabels.labels()).isNull();
        assertThat(noLabels.features().shape()).containsExactly(1, 2, 5);
        assertThat(noLabels.mask().sumNumber().intValue()).isEqualTo(5);
    }

    @Test
    void rejectsBadArguments() {
        assertThatThrownBy(() -> LengthBatcher.trainingBatches(new int[]{1}, 0, 1, 1, 0))
                .hasMessageContaining("batchSize").hasMessageContaining("got 0");
        assertThatThrownBy(() -> LengthBatcher.trainingBatches(new int[]{1}, 1, 0, 1, 0))
                .hasMessageContaining("bucketBatches");
        assertThatThrownBy(() -> LengthBatcher.pad(List.of(new int[]{1}), null, new int[0]))
                .hasMessageContaining("at least one");
        assertThatThrownBy(() -> LengthBatcher.pad(List.of(new int[]{1}), new int[]{3}, new int[]{0}))
                .hasMessageContaining("expected 0 or 1, got 3");
    }

    private static List<Integer> flatten(List<int[]> batches) {
        List<Integer> out = new ArrayList<>();
        for (int[] b : batches) {
            for (int i : b) {
                out.add(i);
            }
        }
        return out;
    }

    private static long padded(List<int[]> batches, int[] lengths) {
        long n = 0;
        for (int[] b : batches) {
            int max = Arrays.stream(b).map(i -> lengths[i]).max().orElse(0);
            n += (long) max * b.length;
        }
        return n;
    }
}
