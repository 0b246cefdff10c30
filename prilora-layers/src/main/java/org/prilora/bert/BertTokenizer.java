package org.prilora.bert;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A BERT tokenizer: DJL's Hugging Face tokenizer (Rust core) over a {@code tokenizer.json}, returning padded
 * batches in the shapes {@link BertEncoderFactory} networks and ONNX Runtime take.
 *
 * <p>Padding and truncation are set here, overriding whatever the file says (the MiniLM file pads every
 * sentence to 128): sentences are truncated to {@code maxLength} tokens (special tokens included) and padded on
 * the right with id 0, to the longest sentence of the batch or, with {@code padToMaxLength}, to {@code maxLength}.
 */
public final class BertTokenizer implements AutoCloseable {

    private final HuggingFaceTokenizer tokenizer;
    private final int maxLength;

    private BertTokenizer(HuggingFaceTokenizer tokenizer, int maxLength) {
        this.tokenizer = tokenizer;
        this.maxLength = maxLength;
    }

    /** Loads {@code tokenizer.json} from a file; pads to the longest sentence of each batch. */
    public static BertTokenizer fromPath(Path tokenizerJson, int maxLength) throws IOException {
        return fromPath(tokenizerJson, maxLength, false);
    }

    /** Loads {@code tokenizer.json} from a file. */
    public static BertTokenizer fromPath(Path tokenizerJson, int maxLength, boolean padToMaxLength) throws IOException {
        return new BertTokenizer(HuggingFaceTokenizer.newInstance(tokenizerJson, options(maxLength, padToMaxLength)), maxLength);
    }

    /** Loads {@code tokenizer.json} from a stream (not closed). */
    public static BertTokenizer fromStream(InputStream tokenizerJson, int maxLength, boolean padToMaxLength) throws IOException {
        return new BertTokenizer(HuggingFaceTokenizer.newInstance(tokenizerJson, options(maxLength, padToMaxLength)), maxLength);
    }

    /**
     * Loads {@code tokenizer.json} from a classpath resource (e.g. {@code "all-minilm-l6-v2-tokenizer.json"}, at
     * the root of the langchain4j MiniLM jar), via the context class loader.
     */
    public static BertTokenizer fromClasspath(String resource, int maxLength, boolean padToMaxLength) throws IOException {
        ClassLoader cl = Thread.currentThread().getContextClassLoader();
        if (cl == null) {
            cl = BertTokenizer.class.getClassLoader();
        }
        try (InputStream in = cl.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IOException("tokenizer resource '" + resource + "' not found on the classpath");
            }
            return fromStream(in, maxLength, padToMaxLength);
        }
    }

    private static Map<String, String> options(int maxLength, boolean padToMaxLength) {
        if (maxLength < 2) {
            throw new IllegalArgumentException("maxLength: expected >= 2 (room for [CLS] and [SEP]), got " + maxLength);
        }
        return Map.of("padding", padToMaxLength ? "max_length" : "true",
                "truncation", "true",
                "maxLength", Integer.toString(maxLength),
                "addSpecialTokens", "true");
    }

    /** Maximum tokens per sentence, special tokens included. */
    public int maxLength() {
        return maxLength;
    }

    /** Tokenizes a batch of single sentences ({@code [CLS] s [SEP]}, token types all 0). */
    public Batch encode(List<String> sentences) {
        Objects.requireNonNull(sentences, "sentences");
        if (sentences.isEmpty()) {
            throw new IllegalArgumentException("sentences: expected at least one sentence, got an empty list");
        }
        Encoding[] enc = tokenizer.batchEncode(sentences);
        int mb = enc.length;
        int t = enc[0].getIds().length;
        long[][] ids = new long[mb][];
        long[][] mask = new long[mb][];
        long[][] types = new long[mb][];
        for (int i = 0; i < mb; i++) {
            ids[i] = enc[i].getIds();
            mask[i] = enc[i].getAttentionMask();
            types[i] = enc[i].getTypeIds();
            if (ids[i].length != t || mask[i].length != t || types[i].length != t) {
                throw new IllegalStateException("tokenizer: expected every encoding padded to " + t + " tokens, got "
                        + ids[i].length + " for sentence " + i);
            }
        }
        return new Batch(ids, mask, types);
    }

    @Override
    public void close() {
        tokenizer.close();
    }

    /**
     * One tokenized batch: token ids, attention mask (1 = real token) and token type ids, each {@code [mb, T]},
     * as {@code long[][]} (ONNX Runtime's int64 inputs) and as ND4J arrays (DL4J's float inputs and masks).
     */
    public static final class Batch {
        private final long[][] ids;
        private final long[][] attentionMask;
        private final long[][] tokenTypeIds;

        Batch(long[][] ids, long[][] attentionMask, long[][] tokenTypeIds) {
            this.ids = ids;
            this.attentionMask = attentionMask;
            this.tokenTypeIds = tokenTypeIds;
        }

        public int batchSize() {
            return ids.length;
        }

        /** Padded length T. */
        public int length() {
            return ids[0].length;
        }

        /** Real tokens of sentence {@code i} (the attention mask's sum). */
        public int realLength(int i) {
            int n = 0;
            for (long m : attentionMask[i]) {
                n += (int) m;
            }
            return n;
        }

        /** Token ids {@code [mb][T]} (a copy). */
        public long[][] ids() {
            return copy(ids);
        }

        /** Attention mask {@code [mb][T]} (a copy). */
        public long[][] attentionMask() {
            return copy(attentionMask);
        }

        /** Token type ids {@code [mb][T]} (a copy). */
        public long[][] tokenTypeIds() {
            return copy(tokenTypeIds);
        }

        public INDArray idsArray(DataType dt) {
            return Nd4j.createFromArray(ids).castTo(dt);
        }

        public INDArray maskArray(DataType dt) {
            return Nd4j.createFromArray(attentionMask).castTo(dt);
        }

        public INDArray tokenTypeIdsArray(DataType dt) {
            return Nd4j.createFromArray(tokenTypeIds).castTo(dt);
        }

        /** Network input for {@link BertEncoderFactory}: {@code [mb, 2, T]} with types, else {@code [mb, 1, T]}. */
        public INDArray features(DataType dt, boolean withTokenTypes) {
            return BertEncoderFactory.features(idsArray(dt), withTokenTypes ? tokenTypeIdsArray(dt) : null, dt);
        }

        private static long[][] copy(long[][] a) {
            long[][] c = new long[a.length][];
            for (int i = 0; i < a.length; i++) {
                c[i] = a[i].clone();
            }
            return c;
        }
    }
}
