package org.prilora.bert;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.CharSpan;
import ai.djl.util.PairList;
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
 *
 * <p>Sentence pairs ({@link #encodePairs}) follow the file's post-processor, {@code [CLS] a [SEP] b [SEP]} with token
 * type 0 up to the first {@code [SEP]} and 1 after it for BERT, and are truncated like Hugging Face's
 * {@code truncation="longest_first"}: the budget {@code maxLength} minus the special tokens is shared, the longer
 * sentence loses tokens from its end first (DJL runs Hugging Face's own Rust implementation).
 */
public final class BertTokenizer implements AutoCloseable {

    private final HuggingFaceTokenizer tokenizer;
    private final int maxLength;
    /** Special tokens the post-processor adds to a pair ({@code [CLS] [SEP] [SEP]}: 3 for BERT). */
    private final int pairSpecialTokens;

    private BertTokenizer(HuggingFaceTokenizer tokenizer, int maxLength) {
        this.tokenizer = tokenizer;
        this.maxLength = maxLength;
        this.pairSpecialTokens = tokenizer.encode("", "").getIds().length;
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
        return toBatch(tokenizer.batchEncode(sentences), maxLength);
    }

    /**
     * Tokenizes a batch of sentences given as words (Hugging Face's {@code is_split_into_words}, as CoNLL-style tagging
     * data comes): each word is split into pieces but never merged with or split at punctuation into other words, so
     * {@link Batch#wordIds()} index exactly into each sentence's word list (for {@code org.prilora.heads.TokenLabels}).
     * Truncated to {@code maxLength}, padded like {@link #encode}.
     *
     * @throws IllegalArgumentException when the list or a sentence is empty
     */
    public Batch encodeWords(List<List<String>> sentences) {
        Objects.requireNonNull(sentences, "sentences");
        if (sentences.isEmpty()) {
            throw new IllegalArgumentException("sentences: expected at least one sentence, got an empty list");
        }
        Encoding[] enc = new Encoding[sentences.size()];
        for (int i = 0; i < enc.length; i++) {
            List<String> words = Objects.requireNonNull(sentences.get(i), "sentences[" + i + "]");
            if (words.isEmpty()) {
                throw new IllegalArgumentException("sentences[" + i + "]: expected at least one word, got none");
            }
            enc[i] = tokenizer.encode(words.toArray(new String[0]));   // DJL passes a word array as pre-tokenized input
        }
        return toBatch(enc, maxLength);
    }

    /**
     * Tokenizes a batch of sentence pairs: {@code [CLS] a [SEP] b [SEP]}, token type ids 0 for the first segment
     * (its {@code [CLS]} and {@code [SEP]} included) and 1 for the second, truncated as Hugging Face's
     * {@code longest_first} (see the class comment).
     *
     * @param first  the first sentence of each pair
     * @param second the second sentence of each pair, as many as {@code first}
     * @throws IllegalArgumentException when the lists differ in size or are empty, or when {@code maxLength} leaves
     *                                  no room for one token of each sentence besides the special tokens
     */
    public Batch encodePairs(List<String> first, List<String> second) {
        Objects.requireNonNull(first, "first");
        Objects.requireNonNull(second, "second");
        if (first.isEmpty() || first.size() != second.size()) {
            throw new IllegalArgumentException("pairs: expected as many second sentences as first ones (at least one), got "
                    + first.size() + " first and " + second.size() + " second");
        }
        PairList<String, String> pairs = new PairList<>(first, second);
        if (maxLength < pairSpecialTokens + 2) {
            // Hugging Face would silently drop a whole sentence (or fail in Rust); say why instead
            int i = 0;
            int a = tokenCount(first.get(i));
            int b = tokenCount(second.get(i));
            throw new IllegalArgumentException("pair " + i + " (" + a + " + " + b + " tokens) cannot be truncated to maxLength "
                    + maxLength + ": a pair needs " + pairSpecialTokens + " special tokens plus at least one token of each"
                    + " sentence, so maxLength >= " + (pairSpecialTokens + 2) + " (got " + maxLength + ")");
        }
        return toBatch(tokenizer.batchEncode(pairs), maxLength);
    }

    /** Tokens of a text without special tokens and without truncation (the overflow pieces counted back in). */
    private int tokenCount(String text) {
        Encoding e = tokenizer.encode(text, false, true);
        int n = e.getIds().length;
        if (e.getOverflowing() != null) {
            for (Encoding o : e.getOverflowing()) {
                n += o.getIds().length;
            }
        }
        return n;
    }

    /** Special tokens added to a sentence pair (3 for BERT: {@code [CLS]}, {@code [SEP]}, {@code [SEP]}). */
    public int pairSpecialTokens() {
        return pairSpecialTokens;
    }

    /** Arrays of every encoding, right-padded with id 0 to the longest where the tokenizer did not pad them itself. */
    private static Batch toBatch(Encoding[] enc, int maxLength) {
        int mb = enc.length;
        int t = 0;
        for (Encoding e : enc) {
            t = Math.max(t, e.getIds().length);
        }
        long[][] ids = new long[mb][t];
        long[][] mask = new long[mb][t];
        long[][] types = new long[mb][t];
        long[][] words = new long[mb][t];
        long[][] sequences = new long[mb][t];
        int[][] charStart = new int[mb][t];
        int[][] charEnd = new int[mb][t];
        for (int i = 0; i < mb; i++) {
            int n = enc[i].getIds().length;
            long[][] from = {enc[i].getIds(), enc[i].getAttentionMask(), enc[i].getTypeIds(), enc[i].getWordIds(),
                    enc[i].getSequenceIds()};
            long[][][] to = {ids, mask, types, words, sequences};
            for (int a = 0; a < from.length; a++) {
                if (from[a].length != n) {
                    throw new IllegalStateException("tokenizer: encoding " + i + " has " + n + " ids but " + from[a].length
                            + " entries in another field");
                }
                System.arraycopy(from[a], 0, to[a][i], 0, n);
            }
            long[] special = enc[i].getSpecialTokenMask();
            CharSpan[] spans = enc[i].getCharTokenSpans();
            for (int k = 0; k < t; k++) {
                boolean real = k < n && mask[i][k] == 1 && special[k] == 0 && spans != null && k < spans.length && spans[k] != null;
                charStart[i][k] = real ? spans[k].getStart() : -1;
                charEnd[i][k] = real ? spans[k].getEnd() : -1;
                if (!real) {
                    words[i][k] = -1;     // DJL reports special and padding tokens as word -1 too; make it certain
                    sequences[i][k] = k < n && mask[i][k] == 1 ? sequences[i][k] : -1;
                }
            }
        }
        return new Batch(ids, mask, types, words, sequences, charStart, charEnd, maxLength);
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
        private final long[][] wordIds;
        private final long[][] sequenceIds;
        private final int[][] charStart;
        private final int[][] charEnd;
        private final int maxLength;

        Batch(long[][] ids, long[][] attentionMask, long[][] tokenTypeIds, long[][] wordIds, long[][] sequenceIds,
              int[][] charStart, int[][] charEnd, int maxLength) {
            this.maxLength = maxLength;
            this.ids = ids;
            this.attentionMask = attentionMask;
            this.tokenTypeIds = tokenTypeIds;
            this.wordIds = wordIds;
            this.sequenceIds = sequenceIds;
            this.charStart = charStart;
            this.charEnd = charEnd;
        }

        public int batchSize() {
            return ids.length;
        }

        /** Padded length T. */
        public int length() {
            return ids[0].length;
        }

        /** The tokenizer's maximum length: an example with this many real tokens may have been truncated. */
        public int maxLength() {
            return maxLength;
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

        /**
         * Word index of each token within its sentence (the tokenizer's pre-tokenizer words: split at white space and
         * punctuation; the pieces of one word share it), -1 for special and padding tokens. {@code [mb][T]}, a copy.
         * In a pair each sentence numbers its words from 0 ({@link #sequenceIds()} tells which sentence).
         */
        public long[][] wordIds() {
            return copy(wordIds);
        }

        /** Which sentence of a pair each token belongs to (0 or 1; 0 for single sentences), -1 for padding. A copy. */
        public long[][] sequenceIds() {
            return copy(sequenceIds);
        }

        /**
         * Whether token {@code t} of example {@code i} is a real text token: neither padding nor a special token
         * ({@code [CLS]}, {@code [SEP]}).
         */
        public boolean isTextToken(int i, int t) {
            return charStart[i][t] >= 0;
        }

        /** Start of token {@code t}'s characters in its sentence (Unicode code points), -1 for special and padding tokens. */
        public int charStart(int i, int t) {
            return charStart[i][t];
        }

        /** End (exclusive) of token {@code t}'s characters in its sentence, -1 for special and padding tokens. */
        public int charEnd(int i, int t) {
            return charEnd[i][t];
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
