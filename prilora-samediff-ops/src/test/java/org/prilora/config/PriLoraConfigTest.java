package org.prilora.config;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PriLoraConfigTest {

    @Test
    void jsonRoundTripKeepsEveryField() {
        PriLoraConfig c = PriLoraConfig.builder().rankSchedule(RankSchedule.explicit(2, 3, 5)).alpha(7.5)
                .scalingMode(ScalingMode.ALPHA_OVER_SQRT_R).targetTypes("DenseLayer").targetModules("enc\\.\\d+\\..*")
                .modulesToSave("head", "pooler")
                .pruning(PruningSchedule.builder().fraction(0.3).interval(7).startStep(4).endStep(99).emaBeta(0.8).build())
                .pruningMode(PruningMode.PERSISTENT_MASK).init(AdapterInit.GAUSSIAN).seed(123).loraDropout(0.1).build();
        String json = c.toJson();
        assertThat(json).contains("\"loraAlpha\"").contains("\"modulesToSave\"");
        assertThat(PriLoraConfig.fromJson(json)).isEqualTo(c);
        PriLoraConfig d = PriLoraConfig.builder().build();
        assertThat(PriLoraConfig.fromJson(d.toJson())).isEqualTo(d);
    }

    @Test
    void targetSelectionByTypeAndRegex() {
        PriLoraConfig c = PriLoraConfig.builder().targetTypes("DenseLayer").targetModules("block\\d+").build();
        assertThat(c.isTarget("block3", "DenseLayer")).isTrue();
        assertThat(c.isTarget("block3", "OutputLayer")).isFalse();
        assertThat(c.isTarget("head", "DenseLayer")).isFalse();
        assertThat(c.isTarget("block3x", "DenseLayer")).isFalse(); // full match
        PriLoraConfig any = PriLoraConfig.builder().targetTypes(java.util.Set.of()).targetModules(".*q").build();
        assertThat(any.isTarget("att.q", "Whatever")).isTrue();
    }

    @Test
    void invalidValuesNameTheField() {
        assertThatThrownBy(() -> PriLoraConfig.builder().alpha(0).build()).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("alpha").hasMessageContaining("0.0");
        assertThatThrownBy(() -> PriLoraConfig.builder().rankSchedule(null).build()).hasMessageContaining("rankSchedule");
        assertThatThrownBy(() -> PriLoraConfig.builder().targetModules("(").build()).hasMessageContaining("targetModules").hasMessageContaining("'('");
        // No target types (the default) means every layer type that can be adapted, narrowed by targetModules if given.
        assertThat(PriLoraConfig.builder().targetTypes(java.util.Set.of()).build().isTarget("fc1", "DenseLayer")).isTrue();
        assertThatThrownBy(() -> PriLoraConfig.builder().modulesToSave(" ").build()).hasMessageContaining("modulesToSave");
        assertThatThrownBy(() -> PriLoraConfig.builder().pruning(null).build()).hasMessageContaining("pruning");
        assertThatThrownBy(() -> PriLoraConfig.builder().loraDropout(1).build()).hasMessageContaining("loraDropout");
        assertThatThrownBy(() -> PriLoraConfig.fromJson("{not json")).hasMessageContaining("json");
        assertThatThrownBy(() -> PriLoraConfig.fromJson("{\"rankSchedule\":\"4:12\",\"loraAlpha\":8,\"pruningFraction\":2,\"pruningInterval\":1,\"pruningStartStep\":1,\"pruningEndStep\":5}"))
                .hasMessageContaining("fraction");
    }
}
