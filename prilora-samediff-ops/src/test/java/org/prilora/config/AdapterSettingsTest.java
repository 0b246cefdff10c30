package org.prilora.config;

import org.junit.jupiter.api.Test;
import org.nd4j.shade.jackson.databind.ObjectMapper;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class AdapterSettingsTest {

    @Test
    void defaultsAreThePaperAndPeftDefaults() {
        AdapterSettings d = AdapterSettings.defaults();
        assertThat(d.alpha()).isEqualTo(16);
        assertThat(d.scalingMode()).isEqualTo(ScalingMode.ALPHA_OVER_R);
        assertThat(d.pruningMode()).isEqualTo(PruningMode.REGROW);
        assertThat(d.init()).isEqualTo(AdapterInit.KAIMING_UNIFORM);
        assertThat(d.loraDropout()).isZero();
        assertThat(d.hasMask()).isFalse();
        assertThat(d.scale(8)).isEqualTo(2.0);
        assertThat(PriLoraConfig.builder().build().adapter()).isEqualTo(d);
    }

    @Test
    void toBuilderAndJacksonRoundTripKeepEveryField() throws Exception {
        AdapterSettings s = AdapterSettings.builder().alpha(7).scalingMode(ScalingMode.ALPHA_OVER_SQRT_R)
                .pruningMode(PruningMode.PERSISTENT_MASK).init(AdapterInit.GAUSSIAN).loraDropout(0.2).build();
        assertThat(s.toBuilder().build()).isEqualTo(s);
        assertThat(s.hasMask()).isTrue();
        assertThat(s.scale(4)).isEqualTo(3.5);
        ObjectMapper m = new ObjectMapper();
        assertThat(m.readValue(m.writeValueAsString(s), AdapterSettings.class)).isEqualTo(s);
    }

    @Test
    void rejectsEveryInvalidValueNamingFieldAndValue() {
        assertThatThrownBy(() -> AdapterSettings.builder().alpha(0).build()).hasMessageContaining("alpha").hasMessageContaining("0.0");
        assertThatThrownBy(() -> AdapterSettings.builder().alpha(Double.POSITIVE_INFINITY).build()).hasMessageContaining("alpha");
        assertThatThrownBy(() -> AdapterSettings.builder().scalingMode(null).build()).hasMessageContaining("scalingMode");
        assertThatThrownBy(() -> AdapterSettings.builder().pruningMode(null).build()).hasMessageContaining("pruningMode")
                .hasMessageContaining("REGROW or PERSISTENT_MASK");
        assertThatThrownBy(() -> AdapterSettings.builder().init(null).build()).hasMessageContaining("init");
        assertThatThrownBy(() -> AdapterSettings.builder().loraDropout(1.0).build()).hasMessageContaining("loraDropout")
                .hasMessageContaining("[0, 1)").hasMessageContaining("1.0");
        assertThatThrownBy(() -> PriLoraConfig.builder().alpha(-1).build()).hasMessageContaining("alpha").hasMessageContaining("-1.0");
    }
}
