package org.prilora.config;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PruningScheduleTest {

    @Test
    void pruningStepsFollowStartIntervalAndEnd() {
        PruningSchedule s = PruningSchedule.builder().fraction(0.3).interval(5).startStep(10).endStep(30).build();
        StringBuilder steps = new StringBuilder();
        for (long t = 1; t <= 40; t++) {
            if (s.isPruningStep(t)) {
                steps.append(t).append(' ');
            }
        }
        assertThat(steps.toString().trim()).isEqualTo("10 15 20 25 30");
    }

    @Test
    void zeroFractionNeverPrunes() {
        PruningSchedule s = PruningSchedule.none();
        for (long t = 1; t <= 100; t++) {
            assertThat(s.isPruningStep(t)).isFalse();
        }
    }

    @Test
    void prunedPerRowIsFloorAndRobustToBinaryRounding() {
        assertThat(PruningSchedule.builder().fraction(0.29).build().prunedPerRow(100)).isEqualTo(29);
        assertThat(PruningSchedule.builder().fraction(0.5).build().prunedPerRow(7)).isEqualTo(3);
        assertThat(PruningSchedule.builder().fraction(0.99).build().prunedPerRow(1)).isEqualTo(0);
    }

    @Test
    void toBuilderKeepsEveryField() {
        PruningSchedule s = PruningSchedule.builder().fraction(0.4).interval(3).startStep(2).endStep(9).emaBeta(0.5).build();
        assertThat(s.toBuilder().build()).isEqualTo(s);
    }

    @Test
    void rejectsEveryInvalidValueNamingFieldValueAndRange() {
        assertThatThrownBy(() -> PruningSchedule.builder().fraction(1.0).build())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("fraction").hasMessageContaining("[0, 1)").hasMessageContaining("1.0");
        assertThatThrownBy(() -> PruningSchedule.builder().fraction(-0.1).build()).hasMessageContaining("fraction").hasMessageContaining("-0.1");
        assertThatThrownBy(() -> PruningSchedule.builder().fraction(Double.NaN).build()).hasMessageContaining("NaN");
        assertThatThrownBy(() -> PruningSchedule.builder().interval(0).build()).hasMessageContaining("interval").hasMessageContaining(">= 1").hasMessageContaining("0");
        assertThatThrownBy(() -> PruningSchedule.builder().startStep(0).build()).hasMessageContaining("startStep");
        assertThatThrownBy(() -> PruningSchedule.builder().startStep(10).endStep(5).build()).hasMessageContaining("endStep").hasMessageContaining("5");
        assertThatThrownBy(() -> PruningSchedule.builder().emaBeta(1.0).build()).hasMessageContaining("emaBeta").hasMessageContaining("[0, 1)");
    }
}
