package org.prilora.bert;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.prilora.PriLora;
import org.prilora.PriLoraSummary;
import org.prilora.config.AdapterSettings;
import org.prilora.config.PruningMode;
import org.prilora.config.RankSchedule;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The summary of a BERT encoder counts as adapter bytes exactly what an adapter file stores: each module's A, B,
 * statistics (and mask), plus the trained head. The frozen LayerNorm gains {@code ln1g}/{@code ln2g} are not adapter
 * tensors (the old key-suffix rule counted them because they end in neither W nor b).
 */
class BertSummaryTest {
    private static final BertConfig SMALL = new BertConfig(50, 16, 2, 4, 24, 12, 2, 1e-12);

    @Test
    void adapterBytesAreTheAdapterStateAndTheHeadOnly() {
        for (PruningMode mode : PruningMode.values()) {
            MultiLayerNetwork net = BertEncoderFactory.builder(SMALL).rankSchedule(RankSchedule.linear(2, 4))
                    .adapter(AdapterSettings.builder().pruningMode(mode).build()).classifier(3).build();
            PriLoraSummary s = PriLora.summary(net);
            // Independent count from the block shapes: six modules per block; ranks 2 and 4 by depth.
            long h = SMALL.hidden(), f = SMALL.intermediate();
            long[][] inOut = {{h, h}, {h, h}, {h, h}, {h, h}, {h, f}, {f, h}};
            long floats = 0;
            for (int r : new int[]{2, 4}) {
                for (long[] io : inOut) {
                    floats += r * (io[0] + io[1]) + (io[0] + 1) + (mode == PruningMode.PERSISTENT_MASK ? r * io[0] : 0);
                }
            }
            long head = h * 3 + 3;
            assertThat(s.adapterBytes()).as(mode.name()).isEqualTo(4 * (floats + head));
            long inPlusOut = 4 * 2 * h + 2 * (h + f);     // per block: q, k, v, attention output; intermediate; output
            assertThat(s.trainableParams()).isEqualTo((2 + 4) * inPlusOut + head);
            assertThat(s.rows()).hasSize(12);
        }
    }
}
