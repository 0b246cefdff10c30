package org.prilora.it.serving;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.prilora.PriLora;
import org.prilora.PriLoraAdapters;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.BertWeights;
import org.prilora.bert.OnnxBertExporter;
import org.prilora.bert.OnnxBertReader;
import org.prilora.bert.PriLoraBertBlock;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.RankSchedule;
import org.prilora.layers.AdapterModule;
import org.prilora.serving.AdapterRegistry;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * all-MiniLM-L6-v2 with a PRILoRA adapter (random non-zero A and B, a random classifier head): the merged encoder
 * exported to ONNX runs in ONNX Runtime and matches DL4J's merged output on real sentences within 1e-4
 * ({@code last_hidden_state} on real tokens and the head's probabilities), and the registry serving the unmerged
 * adapter next to the base in one mixed batch matches the merged network and the base row by row.
 */
class MiniLmServingAndExportTest {
    private static final String MODEL = "all-minilm-l6-v2.onnx";
    private static final String TOKENIZER = "all-minilm-l6-v2-tokenizer.json";
    private static final List<String> SENTENCES = List.of(
            "She don't like apples.",
            "The committee has approved the new budget for next year.",
            "Him and me went to the store yesterday.",
            "Could you please send me the report before Friday?",
            "A",
            "Transformers use self-attention; recurrent networks process tokens one at a time.");

    private static byte[] onnx;
    private static MultiLayerNetwork base;
    private static MultiLayerNetwork adapted;
    /** {@code PriLora.merge(adapted)}: the reference of both tests (building one costs seconds). */
    private static MultiLayerNetwork merged;
    private static BertTokenizer.Batch batch;

    @TempDir
    Path dir;

    @BeforeAll
    static void build() throws Exception {
        Nd4j.setDefaultDataTypes(DataType.FLOAT, DataType.FLOAT);
        try (InputStream in = MiniLmServingAndExportTest.class.getClassLoader().getResourceAsStream(MODEL)) {
            onnx = in.readAllBytes();
        }
        BertWeights w = OnnxBertReader.read(new ByteArrayInputStream(onnx));
        try (BertTokenizer tok = BertTokenizer.fromClasspath(TOKENIZER, 128, false)) {
            batch = tok.encode(SENTENCES);
        }
        base = BertEncoderFactory.builder(w.config()).plain().classifier(3).seed(5).build(w);
        adapted = PriLora.adapt(base, PriLoraConfig.builder().rankSchedule(RankSchedule.linear(4, 12)).alpha(16)
                .modulesToSave(BertEncoderFactory.CLASSIFIER_NAME).seed(7).build());
        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(11);
        for (Layer l : adapted.getLayers()) {
            if (l.conf().getLayer() instanceof PriLoraBertBlock) {
                for (AdapterModule m : ((PriLoraBertBlock) l.conf().getLayer()).adapterModules()) {
                    INDArray b = l.getParam(m.bKey());
                    b.assign(Nd4j.randn(b.shape(), rng).castTo(b.dataType()).muli(0.02));
                }
            }
        }
        INDArray head = adapted.getLayer(BertEncoderFactory.CLASSIFIER_NAME).params();
        head.assign(Nd4j.randn(head.shape(), rng).castTo(head.dataType()).muli(0.3));
        merged = PriLora.merge(adapted);
    }

    @AfterAll
    static void release() {
        onnx = null;
        base = null;
        adapted = null;
        merged = null;
    }

    private static INDArray features() {
        return batch.features(DataType.FLOAT, true);
    }

    private static INDArray mask() {
        return batch.maskArray(DataType.FLOAT);
    }

    @Test
    void exportedMergedModelRunsInOnnxRuntimeAndMatchesDl4j() throws Exception {
        Path original = dir.resolve("original.onnx");
        Files.write(original, onnx);
        Path exported = dir.resolve("merged.onnx");
        OnnxBertExporter.export(original, merged, exported);

        INDArray probs = merged.output(features(), false, mask(), null);
        List<INDArray> acts = merged.feedForward(features(), mask(), null);
        INDArray hidden = acts.get(1 + 6).permute(0, 2, 1).dup('c');            // after block 5: [mb, T, 384]
        float[][] ortProbs;
        float[][][] ortHidden;
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession s = env.createSession(exported.toString(), new OrtSession.SessionOptions());
             OnnxTensor ids = OnnxTensor.createTensor(env, batch.ids());
             OnnxTensor m = OnnxTensor.createTensor(env, batch.attentionMask());
             OnnxTensor types = OnnxTensor.createTensor(env, batch.tokenTypeIds())) {
            Map<String, OnnxTensor> in = new HashMap<>(Map.of("input_ids", ids, "attention_mask", m, "token_type_ids", types));
            try (OrtSession.Result r = s.run(in)) {
                ortProbs = (float[][]) r.get(OnnxBertExporter.PROBABILITIES).orElseThrow().getValue();
                ortHidden = (float[][][]) r.get("last_hidden_state").orElseThrow().getValue();
            }
        }
        double maxProb = 0;
        double maxHidden = 0;
        for (int b = 0; b < SENTENCES.size(); b++) {
            for (int c = 0; c < 3; c++) {
                maxProb = Math.max(maxProb, Math.abs(ortProbs[b][c] - probs.getDouble(b, c)));
            }
            for (int t = 0; t < batch.realLength(b); t++) {
                for (int h = 0; h < 384; h++) {
                    maxHidden = Math.max(maxHidden, Math.abs(ortHidden[b][t][h] - hidden.getDouble(b, t, h)));
                }
            }
        }
        System.out.printf("exported merged MiniLM: max |ORT - DL4J| probabilities %.3e, last_hidden_state %.3e%n", maxProb, maxHidden);
        assertThat(maxProb).isLessThanOrEqualTo(1e-4);
        assertThat(maxHidden).isLessThanOrEqualTo(1e-4);
        // the adapter changed the encoder: the export is not the original file's function
        INDArray baseHidden = base.feedForward(features(), mask(), null).get(1 + 6).permute(0, 2, 1).dup('c');
        assertThat(baseHidden.sub(hidden).amaxNumber().doubleValue()).isGreaterThan(1e-3);
    }

    @Test
    void registryServesTheUnmergedAdapterNextToTheBaseLikeTheMergedNetwork() throws Exception {
        Path file = dir.resolve("minilm.prilora");
        PriLoraAdapters.save(adapted, file);
        AdapterRegistry registry = AdapterRegistry.builder(base).build();
        registry.register("task", file);
        List<String> ids = List.of("task", AdapterRegistry.BASE, "task", AdapterRegistry.BASE, "task", AdapterRegistry.BASE);
        INDArray served = registry.predict(ids, features(), mask());
        INDArray refTask = merged.output(features(), false, mask(), null);
        INDArray refBase = base.output(features(), false, mask(), null);
        List<Double> rel = new ArrayList<>();
        for (int i = 0; i < ids.size(); i++) {
            INDArray ref = (ids.get(i).equals("task") ? refTask : refBase).get(NDArrayIndex.point(i), NDArrayIndex.all());
            INDArray got = served.get(NDArrayIndex.point(i), NDArrayIndex.all());
            rel.add(got.sub(ref).amaxNumber().doubleValue() / ref.amaxNumber().doubleValue());
        }
        System.out.println("MiniLM registry vs merged, relative max difference per row: " + rel);
        assertThat(rel).allSatisfy(r -> assertThat(r).isLessThanOrEqualTo(1e-5));
        assertThat(refTask.sub(refBase).amaxNumber().doubleValue()).isGreaterThan(1e-3);
    }
}
