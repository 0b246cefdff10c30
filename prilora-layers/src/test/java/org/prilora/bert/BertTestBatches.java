package org.prilora.bert;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;

import java.util.HashSet;
import java.util.Set;

/** Shared inputs of the BERT layer tests: random right-padded token batches and the parameters a gradient check skips. */
final class BertTestBatches {

    private BertTestBatches() {
    }

    /**
     * Random token ids (type 0) {@code [mb, 2, t]} in double precision, example 0 full length, the others right-padded
     * to a random length in [2, t), with the matching mask and one-hot labels {@code b % classes}.
     */
    static DataSet tokenBatch(BertConfig config, int mb, int t, int classes, long seed) {
        java.util.Random r = new java.util.Random(seed);
        INDArray ids = Nd4j.zeros(DataType.DOUBLE, mb, t);
        INDArray mask = Nd4j.zeros(DataType.DOUBLE, mb, t);
        INDArray labels = Nd4j.zeros(DataType.DOUBLE, mb, classes);
        for (int b = 0; b < mb; b++) {
            int len = b == 0 ? t : 2 + r.nextInt(t - 2);
            for (int i = 0; i < len; i++) {
                ids.putScalar(b, i, 1 + r.nextInt(config.vocabSize() - 1));
                mask.putScalar(b, i, 1);
            }
            labels.putScalar(b, b % classes, 1);
        }
        return new DataSet(BertEncoderFactory.features(ids, Nd4j.zeros(DataType.DOUBLE, mb, t), DataType.DOUBLE), labels, mask, null);
    }

    /** Every parameter a gradient check must skip: all of the embeddings and every frozen block parameter. */
    static Set<String> frozenParams(MultiLayerNetwork net) {
        Set<String> ex = new HashSet<>();
        for (int i = 0; i < net.getLayers().length; i++) {
            Layer l = net.getLayer(i);
            for (String key : l.paramTable().keySet()) {
                boolean trainable = !(l.conf().getLayer() instanceof org.prilora.layers.GraphLayer)
                        || ((org.prilora.layers.GraphLayer) l.conf().getLayer()).isTrainableParam(key);
                if (!trainable) {
                    ex.add(i + "_" + key);
                }
            }
        }
        return ex;
    }
}
