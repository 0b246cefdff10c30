package org.prilora.samples.finetune;

import org.junit.jupiter.api.Test;
import org.prilora.samples.data.AcceptabilityExample;
import org.prilora.samples.data.AcceptabilitySampling;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** Which subset {@code --train-size} and {@code --[no-]balanced} draw (the sampling itself: AcceptabilitySamplingTest). */
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
    void balancedOrStratifiedAndZeroMeansTheWholeSplit() {
        List<AcceptabilityExample> in = split();
        assertThat(FineTuneRunner.trainExamples(in, 120, true, 5)).isEqualTo(AcceptabilitySampling.balanced(in, 120, 5));
        assertThat(FineTuneRunner.trainExamples(in, 100, false, 5)).isEqualTo(AcceptabilitySampling.stratified(in, 100, 5));
        assertThat(FineTuneRunner.trainExamples(in, 0, false, 5)).isEqualTo(in);
        assertThat(FineTuneRunner.trainExamples(in, 0, true, 5)).hasSize(200);
    }
}
