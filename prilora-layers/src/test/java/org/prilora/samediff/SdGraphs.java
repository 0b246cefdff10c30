package org.prilora.samediff;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.TrainingConfig;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Small hand-built SameDiff graphs and deterministic data for the SameDiff PRILoRA tests. */
final class SdGraphs {

    static final int NIN = 8, HID = 8, NOUT = 3, MB = 6;
    static final int T = 5, D = 8;

    /** How the MLP writes its affine maps. */
    enum Style { MMUL, LINEAR }

    private SdGraphs() {
    }

    /** Values from java.util.Random, so graphs are identical however ND4J's generator was used before. */
    static INDArray rand(Random r, double scale, long... shape) {
        long n = 1;
        for (long s : shape) {
            n *= s;
        }
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
        }
        return Nd4j.create(v, shape, 'c');
    }

    static TrainingConfig trainingConfig(String features, String labels) {
        return TrainingConfig.builder().updater(new Adam(0.02)).dataSetFeatureMapping(features)
                .dataSetLabelMapping(labels).build();
    }

    /**
     * A 3-layer MLP {@code in → tanh → tanh → logits}, softmax cross-entropy loss. Weights {@code layer_l/W}
     * {@code [in, out]}, biases {@code layer_l/b}; layer outputs {@code layer_l/out} (tanh) and {@code logits}.
     */
    static SameDiff mlp(Style style, long seed) {
        Random r = new Random(seed);
        SameDiff sd = SameDiff.create();
        SDVariable in = sd.placeHolder("in", DataType.FLOAT, -1, NIN);
        SDVariable label = sd.placeHolder("label", DataType.FLOAT, -1, NOUT);
        int[] dims = {NIN, HID, HID, NOUT};
        SDVariable h = in;
        for (int l = 0; l < 3; l++) {
            SDVariable w = sd.var("layer_" + l + "/W", rand(r, 0.6, dims[l], dims[l + 1]));
            SDVariable b = sd.var("layer_" + l + "/b", rand(r, 0.1, dims[l + 1]));
            String pre = l == 2 ? "logits" : "layer_" + l + "/pre";
            SDVariable z = style == Style.MMUL
                    ? sd.mmul("layer_" + l + "/z", h, w).add(pre, b)
                    : sd.nn.linear(pre, h, w, b);
            h = l == 2 ? z : sd.math.tanh("layer_" + l + "/out", z);
        }
        sd.loss.softmaxCrossEntropy("loss", label, h, null);
        sd.setLossVariables("loss");
        sd.setTrainingConfig(trainingConfig("in", "label"));
        return sd;
    }

    /**
     * {@code in → nn.linear → h → mmul(top/W) → logits}: the adapted top weight's input is the raw output of an
     * {@code xw_plus_b} op (whose ND4J M2.1 output carries order flag 'f' with c strides).
     */
    static SameDiff linearChain(long seed) {
        Random r = new Random(seed);
        SameDiff sd = SameDiff.create();
        SDVariable in = sd.placeHolder("in", DataType.FLOAT, -1, NIN);
        SDVariable label = sd.placeHolder("label", DataType.FLOAT, -1, NOUT);
        SDVariable h = sd.nn.linear("h", in, sd.var("bottom/W", rand(r, 0.6, NIN, HID)), sd.var("bottom/b", rand(r, 0.1, HID)));
        SDVariable logits = sd.mmul("logits", h, sd.var("top/W", rand(r, 0.6, HID, NOUT)));
        sd.loss.softmaxCrossEntropy("loss", label, logits, null);
        sd.setLossVariables("loss");
        sd.setTrainingConfig(trainingConfig("in", "label"));
        return sd;
    }

    /**
     * Single-head self-attention on one sequence {@code x [T, D]}: {@code q/k/v = x·W}, {@code ctx =
     * softmax(q·kᵀ/√D)·v}, {@code out = ctx·Wo}, mean-squared-error loss. Weights {@code attn/{q,k,v,o}/W}.
     */
    static SameDiff attention(long seed) {
        Random r = new Random(seed);
        SameDiff sd = SameDiff.create();
        SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, D);
        SDVariable label = sd.placeHolder("label", DataType.FLOAT, -1, D);
        SDVariable q = sd.mmul("q", x, sd.var("attn/q/W", rand(r, 0.5, D, D)));
        SDVariable k = sd.mmul("k", x, sd.var("attn/k/W", rand(r, 0.5, D, D)));
        SDVariable v = sd.mmul("v", x, sd.var("attn/v/W", rand(r, 0.5, D, D)));
        SDVariable scores = sd.mmul("scores", q, k, false, true, false).div(Math.sqrt(D));
        SDVariable att = sd.nn.softmax("att", scores, 1);
        SDVariable ctx = sd.mmul("ctx", att, v);
        SDVariable out = sd.mmul("out", ctx, sd.var("attn/o/W", rand(r, 0.5, D, D)));
        sd.loss.meanSquaredError("loss", label, out, null);
        sd.setLossVariables("loss");
        sd.setTrainingConfig(trainingConfig("x", "label"));
        return sd;
    }

    /** Classification batches for {@link #mlp}: features in [-1, 1], one-hot labels. */
    static List<DataSet> mlpBatches(int n, long seed) {
        Random r = new Random(seed);
        List<DataSet> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            INDArray x = rand(r, 1.0, MB, NIN);
            INDArray y = Nd4j.zeros(DataType.FLOAT, MB, NOUT);
            for (int row = 0; row < MB; row++) {
                y.putScalar(row, r.nextInt(NOUT), 1.0);
            }
            out.add(new DataSet(x, y));
        }
        return out;
    }

    /** Regression batches for {@link #attention}: one sequence of T rows per batch. */
    static List<DataSet> attentionBatches(int n, long seed) {
        Random r = new Random(seed);
        List<DataSet> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(new DataSet(rand(r, 1.0, T, D), rand(r, 1.0, T, D)));
        }
        return out;
    }

    /** Test inputs for output comparisons. */
    static INDArray features(long seed, int rows, int cols) {
        return rand(new Random(seed), 1.0, rows, cols);
    }
}
