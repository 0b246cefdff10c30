package org.prilora.bert;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@link BertTokenizer} over the all-MiniLM-L6-v2 {@code tokenizer.json} shipped in the langchain4j jar. */
class BertTokenizerTest {

    static final String RESOURCE = "all-minilm-l6-v2-tokenizer.json";
    private static final long CLS = 101;
    private static final long SEP = 102;

    @Test
    void padsToTheLongestSentenceOnTheRight() throws Exception {
        try (BertTokenizer tok = BertTokenizer.fromClasspath(RESOURCE, 64, false)) {
            BertTokenizer.Batch b = tok.encode(List.of("Hello world.", "The cat sat on the mat today."));
            assertThat(b.batchSize()).isEqualTo(2);
            long[][] ids = b.ids();
            long[][] mask = b.attentionMask();
            int longest = Math.max(b.realLength(0), b.realLength(1));
            assertThat(b.length()).isEqualTo(longest);
            assertThat(ids[0][0]).isEqualTo(CLS);
            assertThat(ids[0][b.realLength(0) - 1]).isEqualTo(SEP);
            assertThat(b.realLength(0)).isEqualTo(5); // [CLS] hello world . [SEP]
            for (int t = b.realLength(0); t < b.length(); t++) {
                assertThat(ids[0][t]).isZero();
                assertThat(mask[0][t]).isZero();
            }
            assertThat(b.tokenTypeIds()[1]).containsOnly(0L);
            INDArray f = b.features(DataType.FLOAT, true);
            assertThat(f.shape()).containsExactly(2, 2, b.length());
            assertThat(f.getDouble(0, 0, 1)).isEqualTo((double) ids[0][1]);
            assertThat(b.maskArray(DataType.FLOAT).sumNumber().intValue()).isEqualTo(b.realLength(0) + b.realLength(1));
            assertThat(b.features(DataType.FLOAT, false).shape()).containsExactly(2, 1, b.length());
        }
    }

    @Test
    void truncatesToMaxLengthAndCanPadToIt() throws Exception {
        String longSentence = "one two three four five six seven eight nine ten eleven twelve";
        try (BertTokenizer tok = BertTokenizer.fromClasspath(RESOURCE, 8, false)) {
            BertTokenizer.Batch b = tok.encode(List.of(longSentence, "hi"));
            assertThat(b.length()).isEqualTo(8);
            assertThat(b.ids()[0][0]).isEqualTo(CLS);
            assertThat(b.ids()[0][7]).isEqualTo(SEP);
            assertThat(b.realLength(1)).isEqualTo(3);
        }
        try (BertTokenizer tok = BertTokenizer.fromClasspath(RESOURCE, 16, true)) {
            BertTokenizer.Batch b = tok.encode(List.of("hi"));
            assertThat(b.length()).isEqualTo(16);
            assertThat(b.realLength(0)).isEqualTo(3);
        }
    }

    @Test
    void rejectsBadArguments() {
        assertThatThrownBy(() -> BertTokenizer.fromClasspath("no-such-tokenizer.json", 8, false))
                .hasMessageContaining("no-such-tokenizer.json").hasMessageContaining("not found");
        assertThatThrownBy(() -> BertTokenizer.fromClasspath(RESOURCE, 1, false)).hasMessageContaining("maxLength");
    }

    // Pair encodings. The expected ids were looked up by hand in the vocabulary of all-minilm-l6-v2-tokenizer.json
    // (model.vocab: the 1996, cat 4937, sat 2938, . 1012, a 1037, dog 3899, ran 2743, ! 999, one 2028 ... ten 2702,
    // token 19204, ##ization 3989, hello 7592, world 2088); the truncation follows Hugging Face's fast tokenizer
    // (longest_first: budget b = maxLength - 3; the shorter sentence of n1 <= n2 keeps n1 when n1 + (b - n1) fits,
    // else the first gets b / 2 and the second b / 2 + b % 2 when they tie, the longer one the extra token otherwise).

    @Test
    void encodesAPairWithSegmentIdsAndPadsTheBatch() throws Exception {
        try (BertTokenizer tok = BertTokenizer.fromClasspath(RESOURCE, 32, false)) {
            assertThat(tok.pairSpecialTokens()).isEqualTo(3);
            BertTokenizer.Batch b = tok.encodePairs(List.of("The cat sat.", "Hello"), List.of("A dog ran!", "tokenization"));
            assertThat(b.length()).isEqualTo(11);
            assertThat(b.ids()[0]).containsExactly(CLS, 1996, 4937, 2938, 1012, SEP, 1037, 3899, 2743, 999, SEP);
            assertThat(b.tokenTypeIds()[0]).containsExactly(0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1);
            assertThat(b.attentionMask()[0]).containsOnly(1L);
            assertThat(b.ids()[1]).containsExactly(CLS, 7592, SEP, 19204, 3989, SEP, 0, 0, 0, 0, 0);
            assertThat(b.tokenTypeIds()[1]).containsExactly(0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0);
            assertThat(b.attentionMask()[1]).containsExactly(1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0);
            // words are numbered per sentence; special tokens and padding belong to none
            assertThat(b.wordIds()[1]).containsExactly(-1, 0, -1, 0, 0, -1, -1, -1, -1, -1, -1);
            assertThat(b.sequenceIds()[0]).containsExactly(-1, 0, 0, 0, 0, -1, 1, 1, 1, 1, -1);
            assertThat(b.isTextToken(1, 4)).isTrue();
            assertThat(b.isTextToken(1, 5)).isFalse();
            assertThat(b.charStart(1, 4)).isEqualTo(5);   // "token|ization"
            assertThat(b.charEnd(1, 4)).isEqualTo(12);
            assertThat(b.features(DataType.FLOAT, true).getDouble(0, 1, 6)).isEqualTo(1.0);
        }
    }

    @Test
    void truncatesPairsLongestFirstSharingTheBudget() throws Exception {
        String five = "one two three four five";
        String other = "six seven eight nine ten";
        try (BertTokenizer tok = BertTokenizer.fromClasspath(RESOURCE, 10, false)) {
            // 5 + 2 tokens fit the budget of 7: nothing is cut
            assertThat(tok.encodePairs(List.of(five), List.of("hello world")).ids()[0])
                    .containsExactly(CLS, 2028, 2048, 2093, 2176, 2274, SEP, 7592, 2088, SEP);
            // 7 + 2 tokens: only the longer first sentence is cut, to 7 - 2 = 5
            assertThat(tok.encodePairs(List.of(five + " six seven"), List.of("hello world")).ids()[0])
                    .containsExactly(CLS, 2028, 2048, 2093, 2176, 2274, SEP, 7592, 2088, SEP);
            // 2 + 7 tokens: the longer second one is cut to 5
            assertThat(tok.encodePairs(List.of("hello world"), List.of(five + " six seven")).ids()[0])
                    .containsExactly(CLS, 7592, 2088, SEP, 2028, 2048, 2093, 2176, 2274, SEP);
            // 5 + 5 tokens: both cut, 3 for the first and 4 for the second
            BertTokenizer.Batch tie = tok.encodePairs(List.of(five), List.of(other));
            assertThat(tie.ids()[0]).containsExactly(CLS, 2028, 2048, 2093, SEP, 2416, 2698, 2809, 3157, SEP);
            assertThat(tie.tokenTypeIds()[0]).containsExactly(0, 0, 0, 0, 0, 1, 1, 1, 1, 1);
            // 6 + 5 tokens: both cut, the longer first one keeps the extra token
            assertThat(tok.encodePairs(List.of(five + " six"), List.of(other)).ids()[0])
                    .containsExactly(CLS, 2028, 2048, 2093, 2176, SEP, 2416, 2698, 2809, SEP);
        }
    }

    @Test
    void rejectsPairsThatCannotBeTruncatedAndMismatchedLists() throws Exception {
        try (BertTokenizer tok = BertTokenizer.fromClasspath(RESOURCE, 4, false)) {
            assertThatThrownBy(() -> tok.encodePairs(List.of("one two three"), List.of("four five")))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("3 + 2 tokens").hasMessageContaining("maxLength 4")
                    .hasMessageContaining("maxLength >= 5");
            assertThat(tok.encode(List.of("one two three")).length()).isEqualTo(4); // single sentences still fit
        }
        try (BertTokenizer tok = BertTokenizer.fromClasspath(RESOURCE, 5, false)) {
            assertThat(tok.encodePairs(List.of("one two three"), List.of("four five")).ids()[0])
                    .containsExactly(CLS, 2028, SEP, 2176, SEP);
            assertThatThrownBy(() -> tok.encodePairs(List.of("a", "b"), List.of("c")))
                    .hasMessageContaining("2 first and 1 second");
        }
    }

    @Test
    void encodesPreSplitWordsKeepingEachWordWhole() throws Exception {
        try (BertTokenizer tok = BertTokenizer.fromClasspath(RESOURCE, 16, false)) {
            // "U.S." is one word here although BERT's pre-tokenizer would make four of it: u . s . (1057 1012 1055 1012)
            BertTokenizer.Batch b = tok.encodeWords(List.of(List.of("U.S.", "troops"), List.of("hi")));
            assertThat(b.length()).isEqualTo(7);
            assertThat(b.ids()[0]).containsExactly(CLS, 1057, 1012, 1055, 1012, 3629, SEP);
            assertThat(b.wordIds()[0]).containsExactly(-1, 0, 0, 0, 0, 1, -1);
            assertThat(b.ids()[1]).containsExactly(CLS, 7632, SEP, 0, 0, 0, 0);
            assertThat(b.attentionMask()[1]).containsExactly(1, 1, 1, 0, 0, 0, 0);
            assertThat(b.wordIds()[1]).containsExactly(-1, 0, -1, -1, -1, -1, -1);
            assertThatThrownBy(() -> tok.encodeWords(List.of(List.of()))).hasMessageContaining("sentences[0]: expected at least one word");
        }
    }
}
