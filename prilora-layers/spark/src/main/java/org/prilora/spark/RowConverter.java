package org.prilora.spark;

import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.prilora.parallel.Batches;

import java.io.Serializable;

/**
 * Turns one row of an RDD into one training example (a MultiDataSet with one row: a DataSet's features, labels and
 * masks become its single input and output). Runs on the executors, so it must be serializable; a row it cannot
 * convert makes it throw, and the trainer reports that row by partition and index.
 *
 * @param <T> the row type
 */
@FunctionalInterface
public interface RowConverter<T> extends Serializable {

    /** The example for {@code row}: every array has one row (size 1 in dimension 0). */
    MultiDataSet toExample(T row);

    /** Rows that are one-example {@code DataSet}s already. */
    static RowConverter<org.nd4j.linalg.dataset.DataSet> dataSets() {
        return Batches::toMulti;
    }

    /**
     * Tokenized sentences for the BERT encoder of {@code org.prilora.bert.BertEncoderFactory}: token ids and padding
     * mask of a fixed length, one-hot labels over {@code numClasses}.
     *
     * @param withTokenTypes whether the encoder takes token type ids (its {@code tokenTypes(true)}, the default)
     */
    static RowConverter<TokenizedRow> tokenized(int numClasses, boolean withTokenTypes,
                                                org.nd4j.linalg.api.buffer.DataType dataType) {
        return new TokenizedRow.Converter(numClasses, withTokenTypes, dataType);
    }
}
