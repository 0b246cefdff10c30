package org.prilora.samples.finetune;

import org.junit.jupiter.api.Test;
import org.prilora.samples.data.AcceptabilityData;
import org.prilora.samples.data.AcceptabilityExample;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** The training sample: stratified (the split's shares) or balanced, deterministic, in split order. */
class TrainExamplesTest {

    /** 300 acceptable and 100 unacceptable examples, interleaved 3:1. */
    private static List<AcceptabilityExample> split() {
        List<AcceptabilityExample> l = new ArrayList<>();
        for (int i = 0; i < 400; i++) {
            l.add(new AcceptabilityExample("sentence " + i, i % 4 == 3 ? 0 : 1, "g" + i, "R"));
        }
        return List.copyOf(l);
    }

    @Test
    void balancedTakesHalfOfEachClassInSplitOrder() {
        List<AcceptabilityExample> s = FineTuneRunner.trainExamples(split(), 120, true, 5);
        assertThat(s).hasSize(120);
        assertThat(AcceptabilityData.countAcceptable(s)).isEqualTo(60);
        assertThat(s).isSortedAccordingTo((a, b) -> Integer.compare(index(a), index(b)));
        assertThat(FineTuneRunner.trainExamples(split(), 120, true, 5)).isEqualTo(s);
        assertThat(FineTuneRunner.trainExamples(split(), 120, true, 6)).isNotEqualTo(s);
    }

    @Test
    void balancedIsLimitedByTheSmallerClass() {
        List<AcceptabilityExample> s = FineTuneRunner.trainExamples(split(), 1000, true, 1);
        assertThat(s).hasSize(200);
        assertThat(AcceptabilityData.countAcceptable(s)).isEqualTo(100);
        assertThat(FineTuneRunner.trainExamples(split(), 0, true, 1)).hasSize(200);
    }

    @Test
    void stratifiedKeepsTheSplitsShares() {
        List<AcceptabilityExample> s = FineTuneRunner.trainExamples(split(), 100, false, 5);
        assertThat(s).hasSize(100);
        assertThat(AcceptabilityData.countAcceptable(s)).isEqualTo(75);
        assertThat(FineTuneRunner.trainExamples(split(), 0, false, 5)).hasSize(400);
    }

    private static int index(AcceptabilityExample e) {
        return Integer.parseInt(e.sentence().substring("sentence ".length()));
    }
}
