package org.prilora;

import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.GlobalPoolingLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.PoolingType;
import org.deeplearning4j.nn.conf.layers.SelfAttentionLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.util.ModelSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.prilora.config.PriLoraConfig;
import org.prilora.io.SafeTensors;
import org.prilora.layers.TestNets;
import org.prilora.config.PruningMode;
import org.prilora.config.RankSchedule;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PriLoraAdaptersTest {

    private static MultiLayerNetwork trained(MultiLayerNetwork base, PruningMode mode) {
        MultiLayerNetwork adapted = PriLora.adapt(base, TestModels.config(mode));
        adapted.setListeners(PriLora.listener(TestModels.config(mode)));
        for (int i = 0; i < 5; i++) {
            adapted.fit(TestModels.data(i));
        }
        return adapted;
    }

    @Test
    void saveThenLoadIntoAFreshBaseGivesIdenticalOutputs(@TempDir Path dir) throws Exception {
        for (PruningMode mode : PruningMode.values()) {
            MultiLayerNetwork base = TestModels.pretrainedMlp();
            MultiLayerNetwork adapted = trained(base, mode);
            Path file = dir.resolve("adapter-" + mode + ".prilora");
            PriLoraAdapters.save(adapted, file, TestModels.config(mode));

            // a fresh copy of the base, as a user would have it: restored from its own model file
            File baseFile = dir.resolve("base.zip").toFile();
            ModelSerializer.writeModel(base, baseFile, false);
            MultiLayerNetwork freshBase = ModelSerializer.restoreMultiLayerNetwork(baseFile, false);
            INDArray before = freshBase.params().dup();
            MultiLayerNetwork loaded = PriLoraAdapters.load(freshBase, file);
            assertThat(freshBase.params()).isEqualTo(before);
            INDArray x = TestModels.data(77).getFeatures();
            assertThat(loaded.output(x)).isEqualTo(adapted.output(x));
            assertThat(loaded.getLayer(1).getParam("xnorm")).isEqualTo(adapted.getLayer(1).getParam("xnorm"));
            assertThat(PriLoraAdapters.read(file).config()).isEqualTo(TestModels.config(mode));
            // the adapter file is a small fraction of the model file
            File full = dir.resolve("full.zip").toFile();
            ModelSerializer.writeModel(adapted, full, true);
            assertThat(Files.size(file)).isLessThan(full.length() / 2);
        }
        try (var files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString())).noneMatch(n -> n.endsWith(".tmp"));
        }
    }

    @Test
    void graphWithAttentionRoundTripsToo(@TempDir Path dir) throws Exception {
        ComputationGraph base = attentionGraph();
        PriLoraConfig cfg = PriLoraConfig.builder().rankSchedule(RankSchedule.linear(2, 4)).modulesToSave("out").build();
        ComputationGraph adapted = PriLora.adapt(base, cfg);
        TestNets.randomizeAdapters(adapted.getLayers(), 3);
        Path file = dir.resolve("g.prilora");
        PriLoraAdapters.save(adapted, file);
        ComputationGraph loaded = PriLoraAdapters.load(base, file);
        INDArray x = Nd4j.rand(DataType.FLOAT, 3, 8, 5);
        assertThat(loaded.outputSingle(x)).isEqualTo(adapted.outputSingle(x));
    }

    static ComputationGraph attentionGraph() {
        ComputationGraphConfiguration conf = TestNets.base(DataType.FLOAT).updater(new Adam(1e-2)).graphBuilder()
                .addInputs("in").setInputTypes(InputType.recurrent(8))
                .addLayer("att", new SelfAttentionLayer.Builder().nIn(8).nOut(8).nHeads(2).projectInput(true).build(), "in")
                .addLayer("pool", new GlobalPoolingLayer.Builder(PoolingType.AVG).build(), "att")
                .addLayer("ff", new DenseLayer.Builder().nIn(8).nOut(8).activation(Activation.TANH).build(), "pool")
                .addLayer("out", new OutputLayer.Builder().nIn(8).nOut(2).activation(Activation.SOFTMAX).lossFunction(LossFunctions.LossFunction.MCXENT).build(), "ff")
                .setOutputs("out").build();
        ComputationGraph g = new ComputationGraph(conf);
        g.init();
        return g;
    }

    @Test
    void everyMismatchIsListedAndTheBaseIsLeftUntouched(@TempDir Path dir) throws Exception {
        MultiLayerNetwork adapted = trained(TestModels.pretrainedMlp(), PruningMode.REGROW);
        Path file = dir.resolve("a.prilora");
        PriLoraAdapters.save(adapted, file);

        // another base model: same architecture, other weights
        MultiLayerNetwork other = TestModels.pretrainedMlp();
        other.getLayer(1).getParam("W").addi(0.01);
        other.getLayer(2).getParam("W").addi(0.01);
        INDArray before = other.params().dup();
        assertThatThrownBy(() -> PriLoraAdapters.load(other, file)).isInstanceOf(AdapterMismatchException.class)
                .hasMessageContaining("module 'fc2'").hasMessageContaining("module 'fc3'").hasMessageContaining("another base model")
                .satisfies(e -> assertThat(((AdapterMismatchException) e).mismatches()).hasSize(2));
        assertThat(other.params()).isEqualTo(before);

        // missing layers and other shapes
        MultiLayerNetwork renamed = TestNets.init(TestNets.base(DataType.FLOAT).list()
                .layer(new DenseLayer.Builder().name("fc1").nIn(10).nOut(32).build())
                .layer(new DenseLayer.Builder().name("fc2").nIn(32).nOut(24).build())
                .layer(new DenseLayer.Builder().name("other").nIn(24).nOut(16).build())
                .layer(new OutputLayer.Builder().name("head").nIn(16).nOut(3).lossFunction(LossFunctions.LossFunction.MCXENT).build()).build());
        assertThatThrownBy(() -> PriLoraAdapters.load(renamed, file)).isInstanceOf(AdapterMismatchException.class)
                .hasMessageContaining("module 'fc2': base weight has shape [32, 24], the adapter expects [32, 32]")
                .hasMessageContaining("no layer 'fc3'");
    }

    @Test
    void truncatedCorruptedOrForeignFilesGiveClearErrors(@TempDir Path dir) throws Exception {
        MultiLayerNetwork base = TestModels.pretrainedMlp();
        MultiLayerNetwork adapted = trained(base, PruningMode.REGROW);
        Path file = dir.resolve("a.prilora");
        PriLoraAdapters.save(adapted, file);
        byte[] bytes = Files.readAllBytes(file);

        for (int cut : new int[]{10, bytes.length / 3, bytes.length - 30}) {
            Path t = dir.resolve("cut" + cut);
            Files.write(t, Arrays.copyOf(bytes, cut));
            assertThatThrownBy(() -> PriLoraAdapters.load(base, t)).isInstanceOf(AdapterFileException.class)
                    .hasMessageContaining(t.toString()).hasMessageMatching("(?s).*(truncated|corrupted).*");
        }
        byte[] flipped = bytes.clone();
        for (int i = bytes.length / 2; i < bytes.length / 2 + 64; i++) {
            flipped[i] ^= 0x5A;
        }
        Path bad = dir.resolve("flipped");
        Files.write(bad, flipped);
        assertThatThrownBy(() -> PriLoraAdapters.load(base, bad)).isInstanceOf(AdapterFileException.class).hasMessageContaining("corrupted");
        Path text = dir.resolve("text");
        Files.writeString(text, "not an adapter");
        assertThatThrownBy(() -> PriLoraAdapters.load(base, text)).isInstanceOf(AdapterFileException.class)
                .hasMessageContaining("not a PRILoRA adapter file");
        assertThatThrownBy(() -> PriLoraAdapters.load(base, dir.resolve("missing"))).hasMessageContaining("does not exist");
    }

    @Test
    void peftExportImportRoundTripsAndFollowsPeftNaming(@TempDir Path dir) throws Exception {
        MultiLayerNetwork base = TestModels.pretrainedMlp();
        MultiLayerNetwork adapted = trained(base, PruningMode.PERSISTENT_MASK);
        Path peft = dir.resolve("peft");
        PriLoraAdapters.exportPeft(adapted, peft, n -> "model." + n);

        Map<String, Object> cfg = new org.nd4j.shade.jackson.databind.ObjectMapper().readValue(peft.resolve("adapter_config.json").toFile(), Map.class);
        assertThat(cfg).containsEntry("peft_type", "LORA").containsEntry("lora_alpha", 8.0)
                .containsEntry("target_modules", java.util.List.of("model.fc2", "model.fc3"))
                .containsEntry("rank_pattern", Map.of("model.fc2", 2, "model.fc3", 6))
                .containsEntry("modules_to_save", java.util.List.of("model.head"));
        Map<String, INDArray> t = SafeTensors.read(peft.resolve("adapter_model.safetensors"));
        assertThat(t.keySet()).containsExactlyInAnyOrder("base_model.model.model.fc2.lora_A.weight", "base_model.model.model.fc2.lora_B.weight",
                "base_model.model.model.fc3.lora_A.weight", "base_model.model.model.fc3.lora_B.weight",
                "base_model.model.model.head.weight", "base_model.model.model.head.bias");
        assertThat(t.get("base_model.model.model.fc3.lora_A.weight").shape()).containsExactly(6, 32);
        assertThat(t.get("base_model.model.model.fc3.lora_B.weight").shape()).containsExactly(16, 6);
        assertThat(t.get("base_model.model.model.head.weight").shape()).containsExactly(3, 16); // torch [out, in]

        MultiLayerNetwork imported = PriLoraAdapters.importPeft(base, peft, n -> "model." + n);
        INDArray x = TestModels.data(5).getFeatures();
        INDArray a = adapted.output(x);
        INDArray b = imported.output(x);
        assertThat(a.sub(b).norm2Number().doubleValue() / a.norm2Number().doubleValue()).isLessThan(1e-6);
    }

    @Test
    void peftRegexTargetModulesSelectTheSameModulesAsTheList(@TempDir Path dir) throws Exception {
        MultiLayerNetwork base = TestModels.pretrainedMlp();
        MultiLayerNetwork adapted = trained(base, PruningMode.REGROW);
        Path listed = dir.resolve("listed");
        PriLoraAdapters.exportPeft(adapted, listed, n -> "model." + n);
        // PEFT's string form: re.fullmatch against every module name (here the mapped ones)
        Path regex = withConfig(listed, dir.resolve("regex"), cfg -> cfg.put("target_modules", "model\\.fc[23]"));
        MultiLayerNetwork fromList = PriLoraAdapters.importPeft(base, listed, n -> "model." + n);
        MultiLayerNetwork fromRegex = PriLoraAdapters.importPeft(base, regex, n -> "model." + n);
        assertThat(fromRegex.getLayerWiseConfigurations().toJson()).isEqualTo(fromList.getLayerWiseConfigurations().toJson());
        assertThat(fromRegex.params()).isEqualTo(fromList.params());
        assertThat(NetworkModules.modules(fromRegex).stream().map(NetworkModules.Entry::name)).containsExactly("fc2", "fc3");

        // a full match is needed: "fc[23]" matches no mapped name, "model\\.fc" only a prefix
        for (String partial : new String[]{"fc[23]", "model\\.fc"}) {
            Path p = withConfig(listed, dir.resolve("partial"), cfg -> cfg.put("target_modules", partial));
            assertThatThrownBy(() -> PriLoraAdapters.importPeft(base, p, n -> "model." + n)).isInstanceOf(AdapterMismatchException.class)
                    .hasMessageContaining("target_modules regex '" + partial + "' fully matches none of this network's adaptable modules");
        }
        Path invalid = withConfig(listed, dir.resolve("invalid"), cfg -> cfg.put("target_modules", "model\\.fc[23"));
        assertThatThrownBy(() -> PriLoraAdapters.importPeft(base, invalid, n -> "model." + n)).isInstanceOf(AdapterFileException.class)
                .hasMessageContaining("target_modules 'model\\.fc[23' is not a valid regular expression");
        Path number = withConfig(listed, dir.resolve("number"), cfg -> cfg.put("target_modules", 3));
        assertThatThrownBy(() -> PriLoraAdapters.importPeft(base, number, n -> "model." + n)).isInstanceOf(AdapterFileException.class)
                .hasMessageContaining("target_modules must be a list of module names or a regex string, found 3");
    }

    /** A copy of a PEFT directory whose adapter_config.json is edited by {@code edit}. */
    private static Path withConfig(Path from, Path to, java.util.function.Consumer<org.nd4j.shade.jackson.databind.node.ObjectNode> edit)
            throws Exception {
        Files.createDirectories(to);
        Files.copy(from.resolve("adapter_model.safetensors"), to.resolve("adapter_model.safetensors"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        org.nd4j.shade.jackson.databind.ObjectMapper json = new org.nd4j.shade.jackson.databind.ObjectMapper();
        org.nd4j.shade.jackson.databind.node.ObjectNode cfg =
                (org.nd4j.shade.jackson.databind.node.ObjectNode) json.readTree(from.resolve("adapter_config.json").toFile());
        edit.accept(cfg);
        json.writeValue(to.resolve("adapter_config.json").toFile(), cfg);
        return to;
    }

    @Test
    void peftFilesThatAreNotUsableGiveAdapterFileExceptions(@TempDir Path dir) throws Exception {
        MultiLayerNetwork base = TestModels.pretrainedMlp();
        Path peft = dir.resolve("peft");
        PriLoraAdapters.exportPeft(trained(base, PruningMode.REGROW), peft, null);
        Path alpha = withConfig(peft, dir.resolve("alpha"), cfg -> cfg.put("lora_alpha", -1.0));
        assertThatThrownBy(() -> PriLoraAdapters.importPeft(base, alpha, null)).isInstanceOf(AdapterFileException.class)
                .hasMessageContaining("lora_alpha -1.0 is not usable");
        Path rank = withConfig(peft, dir.resolve("rank"), cfg -> ((org.nd4j.shade.jackson.databind.node.ObjectNode) cfg.get("rank_pattern"))
                .putNull("fc2"));
        assertThatThrownBy(() -> PriLoraAdapters.importPeft(base, rank, null)).isInstanceOf(AdapterMismatchException.class)
                .hasMessageContaining("module 'fc2' has rank null (from rank_pattern); expected a rank >= 1");
        Path huge = withConfig(peft, dir.resolve("huge"), cfg -> cfg.put("r", 2_000_000_000).remove("rank_pattern"));
        assertThatThrownBy(() -> PriLoraAdapters.importPeft(base, huge, null)).isInstanceOf(AdapterMismatchException.class)
                .hasMessageContaining("'base_model.model.fc2.lora_A.weight' has shape [2, 32], expected [2000000000, 32]");
        Files.write(peft.resolve("adapter_model.safetensors"), new byte[]{1, 2, 3});
        assertThatThrownBy(() -> PriLoraAdapters.importPeft(base, peft, null)).isInstanceOf(AdapterFileException.class)
                .hasMessageContaining("adapter_model.safetensors").hasMessageContaining("truncated");
    }

    @Test
    void peftDirectoryWithMissingOrExtraKeysIsRejected(@TempDir Path dir) throws Exception {
        MultiLayerNetwork base = TestModels.pretrainedMlp();
        MultiLayerNetwork adapted = trained(base, PruningMode.REGROW);
        Path peft = dir.resolve("peft");
        PriLoraAdapters.exportPeft(adapted, peft, null);
        Map<String, INDArray> t = new LinkedHashMap<>(SafeTensors.read(peft.resolve("adapter_model.safetensors")));
        t.remove("base_model.model.fc2.lora_B.weight");
        t.put("base_model.model.fc9.lora_A.weight", Nd4j.ones(DataType.FLOAT, 2, 2));
        SafeTensors.write(peft.resolve("adapter_model.safetensors"), t, null);
        assertThatThrownBy(() -> PriLoraAdapters.importPeft(base, peft, null)).isInstanceOf(AdapterMismatchException.class)
                .hasMessageContaining("'base_model.model.fc2.lora_B.weight' is missing")
                .hasMessageContaining("'base_model.model.fc9.lora_A.weight'");
        Files.delete(peft.resolve("adapter_config.json"));
        assertThatThrownBy(() -> PriLoraAdapters.importPeft(base, peft, null)).isInstanceOf(AdapterFileException.class)
                .hasMessageContaining("adapter_config.json is missing");
    }
}
