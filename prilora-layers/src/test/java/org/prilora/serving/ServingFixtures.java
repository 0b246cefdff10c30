package org.prilora.serving;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.PriLora;
import org.prilora.PriLoraAdapters;
import org.prilora.config.PriLoraConfig;
import org.prilora.layers.PriLoraLayer;
import org.prilora.layers.TestNets;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** Real adapters for the serving tests: adapted, A/B and saved layers set to seeded random values, saved to files. */
final class ServingFixtures {
    private ServingFixtures() {
    }

    /** Adapts {@code base}, randomises A, B and every saved (non-adapted, trainable) layer from {@code seed}, saves it. */
    static Path adapterFile(Model base, PriLoraConfig cfg, long seed, Path file) throws IOException {
        Model adapted = adapted(base, cfg, seed);
        PriLoraAdapters.save(adapted, file, cfg);
        return file;
    }

    static Model adapted(Model base, PriLoraConfig cfg, long seed) {
        Model adapted = base instanceof MultiLayerNetwork ? PriLora.adapt((MultiLayerNetwork) base, cfg)
                : PriLora.adapt((ComputationGraph) base, cfg);
        Layer[] layers = adapted instanceof MultiLayerNetwork ? ((MultiLayerNetwork) adapted).getLayers() : ((ComputationGraph) adapted).getLayers();
        TestNets.randomizeAdapters(layers, seed);
        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(seed + 1000);
        for (Layer l : layers) {
            String name = l.conf().getLayer().getLayerName();
            if (!(l.conf().getLayer() instanceof PriLoraLayer) && cfg.modulesToSave().contains(name)) {
                INDArray p = l.params();
                p.addi(Nd4j.randn(p.shape(), rng).castTo(p.dataType()).muli(0.5));
            }
        }
        return adapted;
    }

    /** The merged network of an adapter file: the reference every served answer must equal. */
    static Model merged(Model base, Path file) throws IOException {
        if (base instanceof MultiLayerNetwork) {
            return PriLora.merge(PriLoraAdapters.load((MultiLayerNetwork) base, file));
        }
        return PriLora.merge(PriLoraAdapters.load((ComputationGraph) base, file));
    }

    static INDArray output(Model net, INDArray x, INDArray mask) {
        if (net instanceof MultiLayerNetwork) {
            return ((MultiLayerNetwork) net).output(x, false, mask, null);
        }
        return ((ComputationGraph) net).output(false, new INDArray[]{x}, mask == null ? null : new INDArray[]{mask})[0];
    }

    /**
     * Asserts row {@code i} of {@code served} equals row {@code i} of {@code reference}: max |Δ| within {@code rel} of the
     * reference row's max |value|.
     */
    static void assertRowEquals(INDArray served, INDArray reference, int i, double rel, String what) {
        assertRowEquals(served, i, reference, i, rel, what);
    }

    /** Asserts row {@code i} of {@code served} equals row {@code refRow} of {@code reference} (as above). */
    static void assertRowEquals(INDArray served, int i, INDArray reference, int refRow, double rel, String what) {
        INDArray a = RowGroups.rows(served, i, i + 1);
        INDArray b = RowGroups.rows(reference, refRow, refRow + 1);
        double diff = a.castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE).sub(b.castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE))
                .amaxNumber().doubleValue();
        double scale = Math.max(b.amaxNumber().doubleValue(), 1e-12);
        assertThat(diff / scale).as("%s, row %d: max |served - merged| = %s, reference max %s", what, i, diff, scale).isLessThanOrEqualTo(rel);
    }

    /** Asserts every row of {@code served} against the reference output of that row's adapter ({@code references.get(i)}). */
    static void assertRows(INDArray served, List<INDArray> referencePerRow, double rel, List<String> ids) {
        assertThat(served.size(0)).isEqualTo(referencePerRow.size());
        for (int i = 0; i < referencePerRow.size(); i++) {
            assertRowEquals(served, referencePerRow.get(i), i, rel, "adapter " + ids.get(i));
        }
    }
}
