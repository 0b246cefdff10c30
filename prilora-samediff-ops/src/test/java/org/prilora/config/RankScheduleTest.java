package org.prilora.config;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class RankScheduleTest {

    @Test
    void linearMatchesThePapersDebertaSetting() {
        // 12 blocks from 4 to 12: round(4 + 8*l/11)
        assertThat(RankSchedule.linear(4, 12).ranks(12)).containsExactly(4, 5, 5, 6, 7, 8, 8, 9, 10, 11, 11, 12);
        // 6 blocks (MiniLM): 4, 5.6, 7.2, 8.8, 10.4, 12
        assertThat(RankSchedule.linear(4, 12).ranks(6)).containsExactly(4, 6, 7, 9, 10, 12);
    }

    @Test
    void linearRoundsHalfUpAndHandlesOneBlockAndDecreasing() {
        assertThat(RankSchedule.linear(1, 2).ranks(3)).containsExactly(1, 2, 2); // 1.5 rounds up
        assertThat(RankSchedule.linear(4, 12).ranks(1)).containsExactly(8);
        assertThat(RankSchedule.linear(4, 5).ranks(1)).containsExactly(5);     // mean 4.5 rounds up
        assertThat(RankSchedule.linear(12, 4).ranks(3)).containsExactly(12, 8, 4);
    }

    @Test
    void uniformAndExplicit() {
        assertThat(RankSchedule.uniform(8).ranks(4)).containsExactly(8, 8, 8, 8);
        assertThat(RankSchedule.uniform(8).isUniform()).isTrue();
        assertThat(RankSchedule.linear(4, 12).isUniform()).isFalse();
        assertThat(RankSchedule.explicit(3, 1, 2).ranks(3)).containsExactly(3, 1, 2);
    }

    @Test
    void parseRoundTripsToString() {
        for (RankSchedule s : new RankSchedule[]{RankSchedule.linear(4, 12), RankSchedule.uniform(8), RankSchedule.explicit(1, 2, 3)}) {
            assertThat(RankSchedule.parse(s.toString())).isEqualTo(s);
        }
        assertThatThrownBy(() -> RankSchedule.parse("4-12")).hasMessageContaining("'4-12'");
    }

    @Test
    void rejectsBadValuesWithClearMessages() {
        assertThatThrownBy(() -> RankSchedule.linear(0, 12)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("rStart").hasMessageContaining(">= 1").hasMessageContaining("0");
        assertThatThrownBy(() -> RankSchedule.linear(4, -1)).hasMessageContaining("rEnd").hasMessageContaining("-1");
        assertThatThrownBy(() -> RankSchedule.uniform(0)).hasMessageContaining("r:");
        assertThatThrownBy(() -> RankSchedule.explicit(2, 0)).hasMessageContaining("ranks[1]");
        assertThatThrownBy(() -> RankSchedule.explicit()).hasMessageContaining("empty");
        assertThatThrownBy(() -> RankSchedule.explicit(1, 2).ranks(3)).hasMessageContaining("numBlocks").hasMessageContaining("3");
        assertThatThrownBy(() -> RankSchedule.uniform(2).rankFor(5, 5)).hasMessageContaining("block").hasMessageContaining("[0, 4]");
        assertThatThrownBy(() -> RankSchedule.uniform(2).ranks(0)).hasMessageContaining("numBlocks");
    }
}
