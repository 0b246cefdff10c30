package org.prilora.samples.data;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Training subsets: stratified (the split's shares) or balanced, deterministic, in split order. */
class AcceptabilitySamplingTest {

    /** {@code n} examples, every {@code period}-th one unacceptable. */
    private static List<AcceptabilityExample> split(int n, int period) {
        List<AcceptabilityExample> l = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            l.add(new AcceptabilityExample("sentence " + i, i % period == period - 1 ? 0 : 1, "g" + i, "R"));
        }
        return List.copyOf(l);
    }

    @Test
    void stratifiedKeepsClassSharesOrderAndIsDeterministic() {
        List<AcceptabilityExample> in = split(1000, 4);
        List<AcceptabilityExample> a = AcceptabilitySampling.stratified(in, 100, 7);
        assertThat(a).hasSize(100).isEqualTo(AcceptabilitySampling.stratified(in, 100, 7));
        assertThat(AcceptabilityData.countAcceptable(a)).isEqualTo(75);
        assertThat(a).isSubsetOf(in).isSortedAccordingTo(Comparator.comparingInt(in::indexOf));
        assertThat(AcceptabilitySampling.stratified(in, 100, 8)).isNotEqualTo(a);
        assertThat(AcceptabilitySampling.stratified(in, 5000, 7)).isEqualTo(in);
        assertThat(AcceptabilitySampling.stratified(in, 0, 7)).isEmpty();
        assertThatThrownBy(() -> AcceptabilitySampling.stratified(in, -1, 7))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("-1");
    }

    @Test
    void balancedTakesHalfOfEachClassInSplitOrder() {
        List<AcceptabilityExample> in = split(400, 4);
        List<AcceptabilityExample> s = AcceptabilitySampling.balanced(in, 120, 5);
        assertThat(s).hasSize(120).isSortedAccordingTo(Comparator.comparingInt(in::indexOf));
        assertThat(AcceptabilityData.countAcceptable(s)).isEqualTo(60);
        assertThat(AcceptabilitySampling.balanced(in, 120, 5)).isEqualTo(s);
        assertThat(AcceptabilitySampling.balanced(in, 120, 6)).isNotEqualTo(s);
    }

    @Test
    void balancedIsLimitedByTheSmallerClass() {
        List<AcceptabilityExample> in = split(400, 4);
        List<AcceptabilityExample> s = AcceptabilitySampling.balanced(in, 1000, 1);
        assertThat(s).hasSize(200);
        assertThat(AcceptabilityData.countAcceptable(s)).isEqualTo(100);
        assertThat(AcceptabilitySampling.balanced(in, 0, 1)).hasSize(200);
    }
}
