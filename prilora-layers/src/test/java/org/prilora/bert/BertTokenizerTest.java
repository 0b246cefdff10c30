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
}
