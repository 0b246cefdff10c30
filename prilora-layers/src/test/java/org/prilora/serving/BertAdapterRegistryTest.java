package org.prilora.serving;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.prilora.PriLora;
import org.prilora.PriLoraAdapters;
import org.prilora.bert.BertBlock;
import org.prilora.bert.BertConfig;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertNaming.Norm;
import org.prilora.bert.BertNaming.Projection;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.RankSchedule;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The registry on a small BERT encoder (embeddings, three plain blocks, mean pooling, a classifier head per adapter): a
 * mixed, padded batch equals each adapter's merged encoder row by row, the blocks sharing {@code x·W0} through the
 * block runtime's projection hook.
 */
class BertAdapterRegistryTest {
    /** hidden 16, 4 heads, 3 layers, FFN 24. */
    private static final BertConfig SMALL = new BertConfig(50, 16, 3, 4, 24, 12, 2, 1e-12);

    @TempDir
    Path dir;

    static MultiLayerNetwork base() {
        MultiLayerNetwork net = BertEncoderFactory.builder(SMALL).dataType(DataType.DOUBLE).seed(3).updater(new Adam(1e-2))
                .plain().classifier(3).build();
        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(4);
        for (Layer l : net.getLayers()) {
            if (l.conf().getLayer() instanceof BertBlock) {
                for (Norm n : Norm.values()) {
                    l.getParam(n.gainKey()).addi(Nd4j.randn(l.getParam(n.gainKey()).shape(), rng).muli(0.2));
                    l.getParam(n.biasKey()).assign(Nd4j.randn(l.getParam(n.biasKey()).shape(), rng).muli(0.2));
                }
                for (Projection p : Projection.values()) {
                    l.getParam(BertBlock.biasKey(p)).assign(Nd4j.randn(l.getParam(BertBlock.biasKey(p)).shape(), rng).muli(0.1));
                }
            }
        }
        return net;
    }

    /** Random token ids, example 0 full length, the others right-padded: features and mask. */
    static INDArray[] tokens(int mb, int t, long seed) {
        java.util.Random r = new java.util.Random(seed);
        INDArray ids = Nd4j.zeros(DataType.DOUBLE, mb, t);
        INDArray mask = Nd4j.zeros(DataType.DOUBLE, mb, t);
        for (int b = 0; b < mb; b++) {
            int len = b == 0 ? t : 2 + r.nextInt(t - 2);
            for (int i = 0; i < len; i++) {
                ids.putScalar(b, i, 1 + r.nextInt(SMALL.vocabSize() - 1));
                mask.putScalar(b, i, 1);
            }
        }
        return new INDArray[]{BertEncoderFactory.features(ids, Nd4j.zeros(DataType.DOUBLE, mb, t), DataType.DOUBLE), mask};
    }

    static PriLoraConfig config(long seed) {
        return PriLoraConfig.builder().rankSchedule(RankSchedule.linear(2, 6)).alpha(8)
                .modulesToSave(BertEncoderFactory.CLASSIFIER_NAME).seed(seed).build();
    }

    @Test
    void mixedPaddedBatchEqualsEachMergedEncoderRowByRow() throws Exception {
        MultiLayerNetwork base = base();
        AdapterRegistry registry = AdapterRegistry.builder(base).build();
        Map<String, Model> merged = new HashMap<>(Map.of(AdapterRegistry.BASE, base));
        for (int k = 0; k < 3; k++) {
            Path f = ServingFixtures.adapterFile(base, config(k), 50 + k, dir.resolve("bert" + k + ".prilora"));
            registry.register("bert" + k, f);
            merged.put("bert" + k, ServingFixtures.merged(base, f));
        }
        Model peft = ServingFixtures.adapted(base, config(9), 59);
        PriLoraAdapters.exportPeft(peft, dir.resolve("peft"), null);
        registry.registerPeft("peft", dir.resolve("peft"), null);
        merged.put("peft", PriLora.merge(PriLoraAdapters.importPeft(base, dir.resolve("peft"), null)));

        INDArray[] batch = tokens(8, 7, 1);
        List<String> ids = List.of("bert1", "bert0", "peft", AdapterRegistry.BASE, "bert1", "bert2", "bert0", "bert2");
        INDArray served = registry.predict(ids, batch[0], batch[1]);
        List<INDArray> refs = new ArrayList<>();
        for (String id : ids) {
            refs.add(ServingFixtures.output(merged.get(id), batch[0], batch[1]));
        }
        ServingFixtures.assertRows(served, refs, 1e-5, ids);
        assertThat(refs.get(0).sub(refs.get(1)).amaxNumber().doubleValue()).isGreaterThan(1e-3);
        // an adapter holds its low-rank factors (r·(in + out) per projection, ranks 2, 4, 6 by depth) and its head, in
        // double precision, not copies of the blocks
        long perRank = 4 * (16 + 16) + (16 + 24) + (24 + 16);
        long params = (2 + 4 + 6) * perRank + 16 * 3 + 3;
        assertThat(registry.adapters().get(0).bytes()).isEqualTo(params * Double.BYTES);
    }
}
