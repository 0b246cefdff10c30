package org.prilora.samples.finetune;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** Accuracy and Matthews correlation against confusion matrices computed by hand. */
class BinaryConfusionTest {

    @Test
    void mccOfAGeneralMatrix() {
        // tp=5 tn=3 fp=2 fn=1: (15 - 2) / sqrt(7 * 6 * 5 * 4) = 13 / sqrt(840) = 0.448543...
        BinaryConfusion c = new BinaryConfusion(5, 3, 2, 1);
        assertThat(c.mcc()).isCloseTo(13 / Math.sqrt(840), within(1e-12));
        assertThat(c.mcc()).isCloseTo(0.4485426136, within(1e-9));
        assertThat(c.accuracy()).isCloseTo(8 / 11.0, within(1e-12));
        assertThat(c.total()).isEqualTo(11);
    }

    @Test
    void mccOfScikitLearnsDocumentationExample() {
        // sklearn.metrics.matthews_corrcoef([+1, +1, +1, -1], [+1, -1, +1, +1]) = -0.33...
        BinaryConfusion c = BinaryConfusion.of(new int[]{1, 0, 1, 1}, new int[]{1, 1, 1, 0});
        assertThat(c).isEqualTo(new BinaryConfusion(2, 0, 1, 1));
        assertThat(c.mcc()).isCloseTo(-1 / 3.0, within(1e-12));
        assertThat(c.accuracy()).isEqualTo(0.5);
    }

    @Test
    void mccOfAnUnbalancedMatrixLikeTheDevSplit() {
        // tp=1700 tn=300 fp=366 fn=139: num = 510000 - 50874 = 459126;
        // den = sqrt(2066 * 1839 * 666 * 439) = sqrt(1110838173876); MCC = 0.435619
        BinaryConfusion c = new BinaryConfusion(1700, 300, 366, 139);
        double expected = 459126 / Math.sqrt(2066.0 * 1839 * 666 * 439);
        assertThat(c.mcc()).isCloseTo(expected, within(1e-12));
        assertThat(c.mcc()).isCloseTo(0.435619, within(1e-6));
    }

    @Test
    void perfectInverseAndConstantClassifiers() {
        assertThat(new BinaryConfusion(10, 5, 0, 0).mcc()).isEqualTo(1.0);
        assertThat(new BinaryConfusion(0, 0, 5, 10).mcc()).isEqualTo(-1.0);
        // always "acceptable": a denominator factor is 0, MCC is 0 by convention (scikit-learn's)
        assertThat(new BinaryConfusion(7, 0, 3, 0).mcc()).isZero();
        assertThat(new BinaryConfusion(7, 0, 3, 0).accuracy()).isEqualTo(0.7);
        // only one class present in the labels
        assertThat(new BinaryConfusion(4, 0, 0, 2).mcc()).isZero();
        assertThat(new BinaryConfusion(0, 0, 0, 0).mcc()).isZero();
        assertThat(new BinaryConfusion(0, 0, 0, 0).accuracy()).isZero();
    }

    @Test
    void largeCountsDoNotOverflow() {
        long big = 1_000_000_000L;
        assertThat(new BinaryConfusion(big, big, 0, 0).mcc()).isEqualTo(1.0);
        assertThat(new BinaryConfusion(big, big, big, big).mcc()).isZero();
        assertThat(new BinaryConfusion(3 * big, big, big, big).mcc()).isCloseTo((3.0 - 1) / Math.sqrt(4 * 4 * 2 * 2), within(1e-12));
    }

    @Test
    void countsFromPredictions() {
        int[] predicted = {1, 1, 0, 0, 1, 0, 1};
        int[] actual = {1, 0, 0, 1, 1, 0, 0};
        assertThat(BinaryConfusion.of(predicted, actual)).isEqualTo(new BinaryConfusion(2, 2, 2, 1));
    }

    @Test
    void rejectsBadInput() {
        assertThatThrownBy(() -> BinaryConfusion.of(new int[]{1}, new int[]{1, 0}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("same length");
        assertThatThrownBy(() -> BinaryConfusion.of(new int[]{2}, new int[]{1}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("0 or 1");
        assertThatThrownBy(() -> new BinaryConfusion(-1, 0, 0, 0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("tp=-1");
    }
}
