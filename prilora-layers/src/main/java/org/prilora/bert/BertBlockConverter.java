package org.prilora.bert;

import org.deeplearning4j.nn.conf.layers.Layer;
import org.prilora.config.AdapterSettings;
import org.prilora.layers.ExactTypeConverter;
import org.prilora.layers.LayerConverter;

/**
 * {@link BertBlock} ↔ {@link PriLoraBertBlock}: the adapted block keeps every key of the plain one (weights, biases,
 * LayerNorms) and adds the adapters', so the default copy and merge of {@link LayerConverter} apply.
 */
public final class BertBlockConverter extends ExactTypeConverter {

    public BertBlockConverter() {
        super(BertBlock.class, PriLoraBertBlock.class);
    }

    @Override
    public Layer adapt(Layer plain, int rank, AdapterSettings settings) {
        if (settings.loraDropout() > 0) {
            throw new IllegalArgumentException("layer '" + plain.getLayerName() + "' is a BertBlock, whose adapted form has no "
                    + "adapter dropout; expected loraDropout 0, got " + settings.loraDropout());
        }
        return new PriLoraBertBlock.Builder().like((BertBlock) plain).rank(rank).adapter(settings).build();
    }

    @Override
    public Layer plain(Layer adapted) {
        return new BertBlock.Builder().like((BertBlock) adapted).build();
    }
}
