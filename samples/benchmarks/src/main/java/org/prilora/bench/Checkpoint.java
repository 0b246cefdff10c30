package org.prilora.bench;

import org.prilora.bert.BertPooling;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.BertWeights;
import org.prilora.bert.OnnxBertReader;
import org.prilora.samples.data.AcceptabilityExample;
import org.prilora.samples.data.LanguageToolAcceptability;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * The real BERT-family checkpoints the benchmarks run, each an ONNX file and a {@code tokenizer.json} inside a
 * langchain4j Maven artifact (a dependency of this module, so nothing is downloaded at run time).
 */
enum Checkpoint {
    /** all-MiniLM-L6-v2: 6 blocks × 384, mean pooling (how sentence-transformers embeds with it). */
    MINILM("all-MiniLM-L6-v2", "all-minilm-l6-v2.onnx", "all-minilm-l6-v2-tokenizer.json", BertPooling.MEAN),
    /** bge-small-en-v1.5: 12 blocks × 384, [CLS] pooling (how bge embeds). */
    BGE("bge-small-en-v1.5", "bge-small-en-v1.5.onnx", "bge-small-en-v1.5-tokenizer.json", BertPooling.CLS);

    final String displayName;
    final String onnxResource;
    final String tokenizerResource;
    final BertPooling pooling;

    Checkpoint(String displayName, String onnxResource, String tokenizerResource, BertPooling pooling) {
        this.displayName = displayName;
        this.onnxResource = onnxResource;
        this.tokenizerResource = tokenizerResource;
        this.pooling = pooling;
    }

    /** The ONNX file's bytes, from the classpath. */
    byte[] onnxBytes() throws IOException {
        try (InputStream in = Checkpoint.class.getClassLoader().getResourceAsStream(onnxResource)) {
            if (in == null) {
                throw new IOException(onnxResource + " is not on the classpath (its langchain4j artifact is a dependency of samples/benchmarks)");
            }
            return in.readAllBytes();
        }
    }

    /** The weights, read with the project's {@link OnnxBertReader}. */
    static BertWeights weights(byte[] onnx) throws IOException {
        return OnnxBertReader.read(new ByteArrayInputStream(onnx));
    }

    /**
     * A batch of real text: LanguageTool's English example sentences (test split, shuffled with seed 1), tokenized
     * with this checkpoint's tokenizer to exactly {@code seq} tokens per row. {@code passages}: consecutive
     * sentences joined until the row has at least {@code seq} tokens, then truncated, so every token is real (the
     * shape of {@link EncoderBenchmark}'s random batch); otherwise one sentence per row, padded with the mask.
     *
     * @param labels filled with the acceptability label of each row's first sentence (length {@code batch})
     */
    BertTokenizer.Batch realText(int batch, int seq, boolean passages, int[] labels) throws IOException {
        List<AcceptabilityExample> test = new ArrayList<>(LanguageToolAcceptability.load().test());
        Collections.shuffle(test, new Random(1));
        List<String> rows = new ArrayList<>();
        int next = 0;
        try (BertTokenizer counter = BertTokenizer.fromClasspath(tokenizerResource, 512, false)) {
            for (int i = 0; i < batch; i++) {
                labels[i] = test.get(next % test.size()).label();
                StringBuilder row = new StringBuilder(test.get(next++ % test.size()).sentence());
                while (passages && counter.encode(List.of(row.toString())).realLength(0) < seq) {
                    row.append(' ').append(test.get(next++ % test.size()).sentence());
                }
                rows.add(row.toString());
            }
        }
        try (BertTokenizer tok = BertTokenizer.fromClasspath(tokenizerResource, seq, true)) {
            return tok.encode(rows);
        }
    }

    /** Mean number of real (unpadded) tokens per row. */
    static double meanRealLength(BertTokenizer.Batch b) {
        double sum = 0;
        for (int i = 0; i < b.batchSize(); i++) {
            sum += b.realLength(i);
        }
        return sum / b.batchSize();
    }
}
