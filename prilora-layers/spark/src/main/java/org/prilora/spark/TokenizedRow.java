package org.prilora.spark;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.bert.BertEncoderFactory;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Objects;

/**
 * One tokenized sentence with its label, as a plain serializable row: token ids and the padding mask (1 for real
 * tokens, 0 for padding), both of the batch's fixed length (what {@code BertTokenizer} produces with padding), and
 * the class index.
 */
public record TokenizedRow(int[] ids, int[] mask, int label) implements Serializable {
    public TokenizedRow {
        Objects.requireNonNull(ids, "ids");
        Objects.requireNonNull(mask, "mask");
        if (ids.length != mask.length) {
            throw new IllegalArgumentException("mask: expected length " + ids.length + " like ids, got " + mask.length);
        }
    }

    @Override
    public String toString() {
        return "TokenizedRow{ids=" + Arrays.toString(ids) + ", mask=" + Arrays.toString(mask) + ", label=" + label + "}";
    }

    /** {@link RowConverter#tokenized}. */
    static final class Converter implements RowConverter<TokenizedRow> {
        private static final long serialVersionUID = 1L;
        private final int numClasses;
        private final boolean withTokenTypes;
        private final DataType dataType;

        Converter(int numClasses, boolean withTokenTypes, DataType dataType) {
            if (numClasses < 2) {
                throw new IllegalArgumentException("numClasses: expected >= 2, got " + numClasses);
            }
            this.numClasses = numClasses;
            this.withTokenTypes = withTokenTypes;
            this.dataType = Objects.requireNonNull(dataType, "dataType");
        }

        @Override
        public MultiDataSet toExample(TokenizedRow row) {
            if (row.label() < 0 || row.label() >= numClasses) {
                throw new IllegalArgumentException("label: expected 0 to " + (numClasses - 1) + ", got " + row.label());
            }
            int t = row.ids().length;
            INDArray ids = Nd4j.createFromArray(new int[][]{row.ids()}).castTo(dataType);
            INDArray mask = Nd4j.createFromArray(new int[][]{row.mask()}).castTo(dataType);
            INDArray features = BertEncoderFactory.features(ids, withTokenTypes ? Nd4j.zeros(dataType, 1, t) : null, dataType);
            INDArray labels = Nd4j.zeros(dataType, 1, numClasses);
            labels.putScalar(0, row.label(), 1.0);
            return new org.nd4j.linalg.dataset.MultiDataSet(new INDArray[]{features}, new INDArray[]{labels},
                    new INDArray[]{mask}, null);
        }
    }
}
