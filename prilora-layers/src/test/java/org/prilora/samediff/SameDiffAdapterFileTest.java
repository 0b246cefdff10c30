package org.prilora.samediff;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.prilora.AdapterMismatchException;
import org.prilora.PriLoraAdapters;
import org.prilora.config.PruningMode;

import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** One adapter file format for DL4J networks and SameDiff graphs: save from a trained graph, load into a fresh base. */
class SameDiffAdapterFileTest {

    @Test
    void saveThenLoadIntoAFreshGraphGivesTheSameOutputs(@TempDir Path dir) throws Exception {
        for (PruningMode mode : PruningMode.values()) {
            SameDiff sd = SdGraphs.mlp(SdGraphs.Style.MMUL, 3);
            SameDiffPriLora.inject(sd, SameDiffPriLoraTest.cfg(mode), SameDiffPriLoraTest.MLP_WEIGHTS);
            PriLoraSameDiffListener listener = new PriLoraSameDiffListener();
            for (DataSet ds : SdGraphs.mlpBatches(5, 4)) {
                sd.fit(ds, listener);
            }
            Path file = dir.resolve("sd-" + mode + ".prilora");
            PriLoraAdapters.save(sd, file);
            assertThat(PriLoraAdapters.read(file).manifest().modules).extracting(e -> e.module)
                    .containsExactly("layer_0/W", "layer_1/W", "layer_2/W");

            SameDiff fresh = SdGraphs.mlp(SdGraphs.Style.MMUL, 3);
            SameDiff loaded = PriLoraAdapters.load(fresh, file);
            assertThat(SameDiffPriLora.isAdapted(fresh)).isFalse(); // the base is not modified
            INDArray x = SdGraphs.features(9, 6, (int) fresh.getVariable("in").getShape()[1]);
            Map<String, INDArray> a = sd.output(Map.of("in", x), "logits");
            Map<String, INDArray> b = loaded.output(Map.of("in", x), "logits");
            assertThat(b.get("logits").equalsWithEps(a.get("logits"), 1e-6)).as("mode %s", mode).isTrue();
            for (GraphModule s : SameDiffPriLora.modules(loaded)) {
                assertThat(s.inputNormState(loaded)).isEqualTo(SameDiffPriLora.report(sd).module(s.weightName()).inputNormState(sd));
            }
        }
    }

    @Test
    void anotherBaseGraphIsRejectedWithEveryMismatch(@TempDir Path dir) throws Exception {
        SameDiff sd = SdGraphs.mlp(SdGraphs.Style.MMUL, 3);
        SameDiffPriLora.inject(sd, SameDiffPriLoraTest.cfg(PruningMode.REGROW), SameDiffPriLoraTest.MLP_WEIGHTS);
        Path file = dir.resolve("a.prilora");
        PriLoraAdapters.save(sd, file);
        SameDiff other = SdGraphs.mlp(SdGraphs.Style.MMUL, 4);   // same shapes, other weights
        assertThatThrownBy(() -> PriLoraAdapters.load(other, file)).isInstanceOf(AdapterMismatchException.class)
                .hasMessageContaining("another base model").hasMessageContaining("layer_0/W").hasMessageContaining("layer_2/W");
        assertThat(SameDiffPriLora.isAdapted(other)).isFalse();
    }
}
