package org.prilora.serving;

import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.GlobalPoolingLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.PoolingType;
import org.deeplearning4j.nn.conf.layers.SelfAttentionLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.prilora.AdapterMismatchException;
import org.prilora.PriLora;
import org.prilora.PriLoraAdapters;
import org.prilora.TestModels;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.PruningMode;
import org.prilora.config.RankSchedule;
import org.prilora.layers.TestNets;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The registry on MultiLayerNetworks and ComputationGraphs with PRILoRA dense and self-attention layers: mixed batches
 * equal each adapter's merged network row by row, LRU eviction reloads from the file, and malformed requests fail
 * naming the bad value.
 */
class AdapterRegistryTest {
    private static final double REL = 1e-5;

    @TempDir
    Path dir;

    @Test
    void mixedBatchOverSeveralAdaptersEqualsEachMergedNetworkRowByRow() throws Exception {
        MultiLayerNetwork base = TestModels.pretrainedMlp();
        Map<String, Model> merged = new HashMap<>();
        AdapterRegistry registry = AdapterRegistry.builder(base).build();
        for (int k = 0; k < 3; k++) {
            PruningMode mode = k == 1 ? PruningMode.PERSISTENT_MASK : PruningMode.REGROW;
            Path f = ServingFixtures.adapterFile(base, TestModels.config(mode), 10 + k, dir.resolve("a" + k + ".prilora"));
            registry.register("task" + k, f);
            merged.put("task" + k, ServingFixtures.merged(base, f));
        }
        // one adapter exported to PEFT and registered from the directory
        Model peftSource = ServingFixtures.adapted(base, TestModels.config(PruningMode.REGROW), 99);
        PriLoraAdapters.exportPeft(peftSource, dir.resolve("peft"), null);
        registry.registerPeft("peft", dir.resolve("peft"), null);
        merged.put("peft", PriLora.merge(PriLoraAdapters.importPeft(base, dir.resolve("peft"), null)));
        merged.put(AdapterRegistry.BASE, base);

        INDArray x = TestModels.data(5).getFeatures().get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 9),
                org.nd4j.linalg.indexing.NDArrayIndex.all()).dup();
        List<String> ids = List.of("task2", "task0", AdapterRegistry.BASE, "task0", "peft", "task1", "task2", "task1", "task0");
        INDArray served = registry.predict(ids, x, null);
        List<INDArray> refs = new ArrayList<>();
        for (String id : ids) {
            refs.add(ServingFixtures.output(merged.get(id), x, null));
        }
        ServingFixtures.assertRows(served, refs, REL, ids);
        // the adapters really differ, so equality per row is not trivially met by one network
        assertThat(refs.get(0).sub(refs.get(1)).amaxNumber().doubleValue()).isGreaterThan(1e-3);
        // one adapter for the whole batch
        ServingFixtures.assertRows(registry.predict("task1", x), java.util.Collections.nCopies(9, ServingFixtures.output(merged.get("task1"), x, null)),
                REL, java.util.Collections.nCopies(9, "task1"));
        assertThat(registry.ids()).containsExactly("task0", "task1", "task2", "peft");
        assertThat(registry.adapters()).extracting(AdapterInfo::format).containsExactly("prilora", "prilora", "prilora", "peft");
    }

    @Test
    void computationGraphWithSelfAttentionAndDenseAdaptersEqualsMergedGraphs() throws Exception {
        ComputationGraphConfiguration conf = TestNets.base(DataType.DOUBLE).updater(new Adam(1e-2)).graphBuilder()
                .addInputs("in").setInputTypes(InputType.recurrent(8))
                .addLayer("att", new SelfAttentionLayer.Builder().nIn(8).nOut(8).nHeads(2).projectInput(true).build(), "in")
                .addLayer("pool", new GlobalPoolingLayer.Builder(PoolingType.AVG).build(), "att")
                .addLayer("ff", new DenseLayer.Builder().nIn(8).nOut(8).activation(Activation.TANH).build(), "pool")
                .addLayer("out", new OutputLayer.Builder().nIn(8).nOut(3).activation(Activation.SOFTMAX)
                        .lossFunction(LossFunctions.LossFunction.MCXENT).build(), "ff")
                .setOutputs("out").build();
        ComputationGraph base = new ComputationGraph(conf);
        base.init();
        PriLoraConfig cfg = PriLoraConfig.builder().rankSchedule(RankSchedule.linear(2, 4)).modulesToSave("out").build();
        AdapterRegistry registry = AdapterRegistry.builder(base).build();
        Map<String, Model> merged = new HashMap<>(Map.of(AdapterRegistry.BASE, base));
        for (int k = 0; k < 3; k++) {
            Path f = ServingFixtures.adapterFile(base, cfg, 20 + k, dir.resolve("g" + k + ".prilora"));
            registry.register("g" + k, f);
            merged.put("g" + k, ServingFixtures.merged(base, f));
        }
        Nd4j.getRandom().setSeed(3);
        INDArray x = Nd4j.rand(DataType.DOUBLE, 7, 8, 5);
        INDArray mask = TestNets.randomMask(7, 5, 4, DataType.DOUBLE);
        List<String> ids = List.of("g1", "g0", "g1", AdapterRegistry.BASE, "g2", "g0", "g2");
        INDArray served = registry.predict(ids, x, mask);
        List<INDArray> refs = new ArrayList<>();
        for (String id : ids) {
            refs.add(ServingFixtures.output(merged.get(id), x, mask));
        }
        ServingFixtures.assertRows(served, refs, REL, ids);
        assertThat(refs.get(0).sub(refs.get(1)).amaxNumber().doubleValue()).isGreaterThan(1e-3);
    }

    @Test
    void leastRecentlyUsedAdaptersAreEvictedAndReloadFromTheirFile() throws Exception {
        MultiLayerNetwork base = TestModels.pretrainedMlp();
        Path[] files = new Path[3];
        for (int k = 0; k < 3; k++) {
            files[k] = ServingFixtures.adapterFile(base, TestModels.config(PruningMode.REGROW), 30 + k, dir.resolve("l" + k + ".prilora"));
        }
        long one;
        AdapterRegistry probe = AdapterRegistry.builder(base).build();
        probe.register("p", files[0]);
        one = probe.residentAdapterBytes();
        assertThat(one).isEqualTo(probe.adapters().get(0).bytes()).isPositive();

        AdapterRegistry registry = AdapterRegistry.builder(base).memoryBudgetBytes(one * 5 / 2).build();
        registry.register("a", files[0]);
        registry.register("b", files[1]);
        INDArray x = TestModels.data(7).getFeatures();
        registry.predict("a", x);                         // a is now more recently used than b
        registry.register("c", files[2]);                 // over budget: b goes
        assertThat(registry.adapters()).extracting(AdapterInfo::id, AdapterInfo::resident, AdapterInfo::loads)
                .containsExactly(org.assertj.core.groups.Tuple.tuple("a", true, 1), org.assertj.core.groups.Tuple.tuple("b", false, 1),
                        org.assertj.core.groups.Tuple.tuple("c", true, 1));
        assertThat(registry.residentAdapterBytes()).isLessThanOrEqualTo(registry.memoryBudgetBytes());

        INDArray served = registry.predict("b", x);       // reloads b from its file, evicts a (least recently used)
        INDArray ref = ServingFixtures.output(ServingFixtures.merged(base, files[1]), x, null);
        for (int i = 0; i < x.size(0); i++) {
            ServingFixtures.assertRowEquals(served, ref, i, REL, "b after reload");
        }
        assertThat(registry.adapters()).extracting(AdapterInfo::id, AdapterInfo::resident, AdapterInfo::loads)
                .containsExactly(org.assertj.core.groups.Tuple.tuple("a", false, 1), org.assertj.core.groups.Tuple.tuple("b", true, 2),
                        org.assertj.core.groups.Tuple.tuple("c", true, 1));
        // a mixed batch over all three fits no budget of two: every adapter is still answered correctly
        INDArray mixed = registry.predict(List.of("a", "b", "c", "a"), x.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 4),
                org.nd4j.linalg.indexing.NDArrayIndex.all()).dup(), null);
        INDArray refA = ServingFixtures.output(ServingFixtures.merged(base, files[0]), x, null);
        ServingFixtures.assertRowEquals(mixed, refA, 0, REL, "a");
        ServingFixtures.assertRowEquals(mixed, refA, 3, REL, "a");
        assertThat(registry.residentAdapterBytes()).isLessThanOrEqualTo(registry.memoryBudgetBytes());

        assertThat(registry.unregister("c")).isTrue();
        assertThat(registry.unregister("c")).isFalse();
        assertThat(registry.ids()).containsExactly("a", "b");
    }

    @Test
    void errorsNameTheBadValueAndWhatWasExpected() throws Exception {
        MultiLayerNetwork base = TestModels.pretrainedMlp();
        Path f = ServingFixtures.adapterFile(base, TestModels.config(PruningMode.REGROW), 40, dir.resolve("e.prilora"));
        AdapterRegistry registry = AdapterRegistry.builder(base).build();
        registry.register("ok", f);
        INDArray x = TestModels.data(1).getFeatures();

        assertThatThrownBy(() -> registry.predict("nope", x)).isInstanceOf(UnknownAdapterException.class)
                .hasMessageContaining("'nope'").hasMessageContaining("[ok]").hasMessageContaining(AdapterRegistry.BASE);
        assertThatThrownBy(() -> registry.predict(List.of("ok", "ok"), x, null)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("2 adapter ids for a batch of 32 examples");
        assertThatThrownBy(() -> registry.predict("ok", Nd4j.zeros(DataType.FLOAT, 4, 7)))
                .hasMessageContaining("width 7").hasMessageContaining("'fc1' expects 10");
        assertThatThrownBy(() -> registry.predict("ok", x, Nd4j.ones(DataType.FLOAT, 3, 1)))
                .hasMessageContaining("featuresMask: shape [3, 1]");
        assertThatThrownBy(() -> registry.register("ok", f)).hasMessageContaining("'ok' is already registered");
        assertThatThrownBy(() -> registry.register(AdapterRegistry.BASE, f)).hasMessageContaining("other than \"__base__\"");
        assertThatThrownBy(() -> registry.register("missing", dir.resolve("missing.prilora"))).hasMessageContaining("does not exist");
        // an adapter trained on another base: the CRC32 of the base weights differs
        MultiLayerNetwork other = TestModels.pretrainedMlp();
        other.getLayer("fc2").getParam("W").addi(0.01);
        Path foreign = ServingFixtures.adapterFile(other, TestModels.config(PruningMode.REGROW), 41, dir.resolve("foreign.prilora"));
        assertThatThrownBy(() -> registry.register("foreign", foreign)).isInstanceOf(AdapterMismatchException.class)
                .hasMessageContaining("module 'fc2'").hasMessageContaining("CRC32").hasMessageContaining("another base model");
        assertThat(registry.ids()).containsExactly("ok");
        // the base must be the plain network
        assertThatThrownBy(() -> AdapterRegistry.builder(PriLora.adapt(base, TestModels.config(PruningMode.REGROW))).build())
                .hasMessageContaining("layer 'fc2' is a PRILoRA layer");
        assertThatThrownBy(() -> AdapterRegistry.builder(base).memoryBudgetBytes(0).build()).hasMessageContaining("memoryBudgetBytes");
        AdapterRegistry tiny = AdapterRegistry.builder(base).memoryBudgetBytes(100).build();
        assertThatThrownBy(() -> tiny.register("big", f)).hasMessageContaining("more than the whole memory budget of 100 bytes");
    }
}
