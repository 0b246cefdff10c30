package org.prilora.heads;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** {@link SpanMetrics} and {@link Correlation} on small cases worked out by hand. */
class SpanMetricsAndCorrelationTest {

    // BIO tags: O = 0, B-PER = 1, I-PER = 2, B-LOC = 3, I-LOC = 4
    private static final String[] TAGS = {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"};

    @Test
    void bioSpansAreExactMatchesOfStartEndAndType() {
        SpanMetrics m = SpanMetrics.bio(TAGS);
        //            Ada  Lovelace lived in  London  and Paris
        int[] gold = {1, 2, 0, 0, 3, 0, 3};           // PER[0,2) LOC[4,5) LOC[6,7)
        int[] pred = {1, 0, 0, 0, 3, 0, 1};           // PER[0,1) (wrong end) LOC[4,5) (right) PER[6,7) (wrong type)
        m.add(gold, pred);
        assertThat(m.spans()).isEqualTo(new SpanMetrics.Scores(1, 2, 2));
        assertThat(m.spans().precision()).isCloseTo(1 / 3.0, within(1e-12));
        assertThat(m.spans().recall()).isCloseTo(1 / 3.0, within(1e-12));
        assertThat(m.spans().f1()).isCloseTo(1 / 3.0, within(1e-12));
        // tokens: Ada PER/PER tp; Lovelace PER/O fn; London tp; Paris LOC/PER fp + fn
        assertThat(m.tokens()).isEqualTo(new SpanMetrics.Scores(2, 1, 2));
        assertThat(m.wordAccuracy()).isCloseTo(5 / 7.0, within(1e-12));
        // an I- after O starts a span (conlleval); B- after B- of one type starts a new one
        assertThat(m.spansOf(new int[]{0, 2, 2, 1, 1})).containsExactlyInAnyOrder(List.of(1, 3, "PER"), List.of(3, 4, "PER"),
                List.of(4, 5, "PER"));
    }

    @Test
    void simpleSpansAreRunsOfOneLabelAndTheMajorityBaselineScoresZero() {
        SpanMetrics m = SpanMetrics.simple(0);
        int[] gold = {0, 1, 1, 0, 1};
        m.add(gold, new int[]{0, 1, 1, 1, 1});        // one run [1,5) against [1,3) and [4,5)
        assertThat(m.spans()).isEqualTo(new SpanMetrics.Scores(0, 1, 2));
        assertThat(m.tokens()).isEqualTo(new SpanMetrics.Scores(3, 1, 0));
        SpanMetrics majority = SpanMetrics.simple(0).add(gold, SpanMetrics.allOutside(5, 0));
        assertThat(majority.spans().f1()).isZero();
        assertThat(majority.tokens().f1()).isZero();
        assertThat(majority.wordAccuracy()).isCloseTo(0.4, within(1e-12));
        // IGNORE words count nowhere
        SpanMetrics ignoring = SpanMetrics.simple(0).add(new int[]{1, TokenLabels.IGNORE, 1}, new int[]{1, 1, 1});
        assertThat(ignoring.spans()).isEqualTo(new SpanMetrics.Scores(2, 0, 0));
        assertThat(ignoring.words()).isEqualTo(2);
    }

    @Test
    void badInputIsNamed() {
        assertThatThrownBy(() -> SpanMetrics.simple(0).add(new int[]{0, 1}, new int[]{0})).hasMessageContaining("expected 2 labels");
        assertThatThrownBy(() -> SpanMetrics.bio("O", "PER")).hasMessageContaining("tags[1]").hasMessageContaining("PER");
        assertThatThrownBy(() -> SpanMetrics.bio("B-X", "I-X")).hasMessageContaining("expected one \"O\" tag");
        assertThatThrownBy(() -> SpanMetrics.bio(TAGS).add(new int[]{5}, new int[]{0})).hasMessageContaining("got 5");
    }

    @Test
    void pearsonAndSpearmanAgreeWithHandComputedValues() {
        // x = 1..5, y = 2,4,5,4,5: mean y 4, sxy = 6, sxx = 10, syy = 6 -> r = 6 / sqrt(60)
        double[] x = {1, 2, 3, 4, 5};
        double[] y = {2, 4, 5, 4, 5};
        assertThat(Correlation.pearson(x, y)).isCloseTo(6 / Math.sqrt(60), within(1e-12));
        // ranks of y with ties: 1, 2.5, 4.5, 2.5, 4.5; Pearson of x and these ranks:
        // mean 3; deviations x -2..2, y -2, -0.5, 1.5, -0.5, 1.5: sxy = 4 + 0.5 + 0 - 0.5 + 3 = 7, syy = 4 + .25 + 2.25 + .25 + 2.25 = 9
        assertThat(Correlation.spearman(x, y)).isCloseTo(7 / Math.sqrt(10 * 9), within(1e-12));
        assertThat(Correlation.spearman(x, new double[]{10, 20, 30, 40, 1000})).isCloseTo(1.0, within(1e-12));
        assertThatThrownBy(() -> Correlation.pearson(x, new double[]{1, 1, 1, 1, 1})).hasMessageContaining("constant");
        assertThatThrownBy(() -> Correlation.pearson(x, new double[]{1})).hasMessageContaining("5 and 1");
    }
}
