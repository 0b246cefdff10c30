package org.prilora.bert;

import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.Sgd;
import org.prilora.config.AdapterSettings;
import org.prilora.config.PruningMode;

import static org.assertj.core.api.Assertions.assertThat;

/** Block configurations compare every field: their own, the adapter's, and DL4J's (updater, name …). */
class BertBlockEqualityTest {
    private static final BertConfig SMALL = new BertConfig(50, 16, 2, 4, 24, 12, 2, 1e-12);

    private static PriLoraBertBlock.Builder adapted() {
        return new PriLoraBertBlock.Builder().config(SMALL).rank(2).name("encoder.layer.0");
    }

    @Test
    void equalBlocksAreEqualAndEveryFieldCounts() {
        assertThat(adapted().build()).isEqualTo(adapted().build()).hasSameHashCodeAs(adapted().build());
        // DL4J's own fields (updater, layer name): the old equals skipped super.equals and called these equal.
        assertThat(adapted().updater(new Adam(1e-3)).build()).isNotEqualTo(adapted().updater(new Sgd(1e-3)).build());
        assertThat(adapted().build()).isNotEqualTo(adapted().name("encoder.layer.1").build());
        assertThat(adapted().build()).isNotEqualTo(adapted().rank(3).build());
        assertThat(adapted().build()).isNotEqualTo(adapted().adapter(AdapterSettings.builder().pruningMode(PruningMode.PERSISTENT_MASK)
                .build()).build());
        assertThat(adapted().build()).isNotEqualTo(adapted().graphRuntime(true).build());
        // The plain block (what the old full-fine-tuning flag stood for) is another type, never equal to an adapted one.
        BertBlock plain = new BertBlock.Builder().config(SMALL).name("encoder.layer.0").build();
        assertThat(plain).isNotEqualTo(adapted().build());
        assertThat(adapted().build()).isNotEqualTo(plain);
        assertThat(plain).isEqualTo(new BertBlock.Builder().like(adapted().build()).build());
    }

    @Test
    void jsonRoundTripKeepsBothBlockTypes() {
        MultiLayerConfiguration conf = new NeuralNetConfiguration.Builder().updater(new Adam(1e-2)).list()
                .layer(new BertBlock.Builder().config(SMALL).name("encoder.layer.0").build())
                .layer(adapted().name("encoder.layer.1").adapter(AdapterSettings.builder().alpha(3)
                        .pruningMode(PruningMode.PERSISTENT_MASK).build()).build())
                .setInputType(InputType.recurrent(SMALL.hidden())).build();
        MultiLayerConfiguration back = MultiLayerConfiguration.fromJson(conf.toJson());
        assertThat(back).isEqualTo(conf);
        assertThat(back.getConf(0).getLayer()).isExactlyInstanceOf(BertBlock.class);
        PriLoraBertBlock b = (PriLoraBertBlock) back.getConf(1).getLayer();
        assertThat(b.getAdapter().alpha()).isEqualTo(3.0);
        assertThat(b.getAdapter().pruningMode()).isEqualTo(PruningMode.PERSISTENT_MASK);
    }
}
