package org.prilora;

import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.LossLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.weights.WeightInit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.TrainingConfig;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.longer.CountNonZero;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.PruningMode;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;
import org.prilora.samediff.GraphModule;
import org.prilora.samediff.PriLoraSameDiffListener;
import org.prilora.samediff.SameDiffPriLora;
import org.prilora.samediff.WeightSelector;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The DL4J path (a converted MultiLayerNetwork with {@link PriLoraListener}) and the SameDiff path (an injected graph
 * with {@link PriLoraSameDiffListener}) share one statistics-and-pruning core: the same small model, from the same
 * weights and A, trained on the same batches with the same optimizer, ends with the same A, mask and x̄ in both pruning
 * modes, and PERSISTENT_MASK keeps pruned entries of the stored A at exactly zero in both.
 */
class DenseAndGraphPathsTrainAlikeTest {
    private static final int NIN = 6, NOUT = 4, MB = 5, STEPS = 8;

    private static PriLoraConfig config(PruningMode mode) {
        return PriLoraConfig.builder().rankSchedule(RankSchedule.uniform(3)).alpha(6).pruningMode(mode)
                .pruning(PruningSchedule.builder().fraction(0.4).interval(2).startStep(2).emaBeta(0.5).build()).build();
    }

    private static List<DataSet> batches() {
        Random r = new Random(11);
        List<DataSet> out = new ArrayList<>();
        for (int i = 0; i < STEPS; i++) {
            double[][] x = new double[MB][NIN];
            double[][] y = new double[MB][NOUT];
            for (int b = 0; b < MB; b++) {
                for (int j = 0; j < NIN; j++) {
                    x[b][j] = r.nextGaussian() * (1 + j);   // features of different scales: x̄ decides what is pruned
                }
                for (int j = 0; j < NOUT; j++) {
                    y[b][j] = r.nextGaussian();
                }
            }
            out.add(new DataSet(Nd4j.create(x), Nd4j.create(y)));
        }
        return out;
    }

    private static MultiLayerNetwork dl4jBase() {
        MultiLayerNetwork net = new MultiLayerNetwork(new NeuralNetConfiguration.Builder().seed(5).dataType(DataType.DOUBLE)
                .updater(new Adam(0.05)).weightInit(WeightInit.XAVIER).list()
                .layer(new DenseLayer.Builder().nIn(NIN).nOut(NOUT).activation(Activation.IDENTITY).name("proj").build())
                .layer(new LossLayer.Builder(LossFunctions.LossFunction.MSE).activation(Activation.IDENTITY).build())
                .build());
        net.init();
        return net;
    }

    /** The same model as a SameDiff graph: {@code xw_plus_b} then a mean squared error over every element. */
    private static SameDiff graph(INDArray w, INDArray b) {
        SameDiff sd = SameDiff.create();
        SDVariable in = sd.placeHolder("in", DataType.DOUBLE, -1, NIN);
        SDVariable label = sd.placeHolder("label", DataType.DOUBLE, -1, NOUT);
        SDVariable out = sd.nn.linear("out", in, sd.var("W", w.dup()), sd.var("b", b.reshape(NOUT).dup()));
        sd.loss.meanSquaredError("loss", label, out, null);
        sd.setTrainingConfig(TrainingConfig.builder().updater(new Adam(0.05)).dataSetFeatureMapping("in")
                .dataSetLabelMapping("label").minimize("loss").build());
        return sd;
    }

    @ParameterizedTest
    @EnumSource(PruningMode.class)
    void sameModelSameBatchesGiveTheSameAMaskAndStatistics(PruningMode mode) {
        PriLoraConfig cfg = config(mode);
        MultiLayerNetwork base = dl4jBase();
        MultiLayerNetwork net = PriLora.adapt(base, cfg);
        SameDiff sd = graph(base.getLayer(0).getParam("W"), base.getLayer(0).getParam("b"));
        GraphModule m = SameDiffPriLora.inject(sd, cfg, WeightSelector.names("W")).module("W");
        m.a(sd).assign(net.getLayer(0).getParam("loraA"));      // the paths draw A from different streams

        net.setListeners(new PriLoraListener(cfg.pruning()));
        PriLoraSameDiffListener graphListener = new PriLoraSameDiffListener();
        for (DataSet ds : batches()) {
            net.fit(ds);
            sd.fit(ds, graphListener);
        }

        INDArray a = net.getLayer(0).getParam("loraA");
        INDArray x = net.getLayer(0).getParam("xnorm");
        assertThat(relDiff(a, m.a(sd))).as("A").isLessThan(1e-9);
        assertThat(relDiff(x.reshape(NIN + 1), m.inputNormState(sd).reshape(NIN + 1))).as("x̄ and batch count").isLessThan(1e-12);
        assertThat(x.getDouble(NIN)).as("batches seen").isEqualTo(STEPS);
        assertThat(graphListener.getPruningStepsDone()).isEqualTo(4).isEqualTo(((PriLoraListener) net.getListeners().iterator().next())
                .getPruningStepsDone());
        int pruned = (int) Math.floor(0.4 * NIN);
        if (mode == PruningMode.PERSISTENT_MASK) {
            INDArray mask = net.getLayer(0).getParam("loraM");
            assertThat(mask).isEqualTo(m.mask(sd));
            // One meaning of the mask in both paths: the stored A is exactly zero wherever the mask is.
            assertThat(a.mul(mask.rsub(1)).amaxNumber().doubleValue()).isZero();
            assertThat(m.a(sd).mul(m.mask(sd).rsub(1)).amaxNumber().doubleValue()).isZero();
            assertThat(zeros(mask)).isEqualTo(3L * pruned);
        } else {
            assertThat(m.mask(sd)).isNull();
            assertThat(zeros(a)).as("the last step, 8, prunes: A holds exactly its pruned zeros").isEqualTo(3L * pruned);
        }
    }

    private static double relDiff(INDArray x, INDArray y) {
        return x.sub(y).amaxNumber().doubleValue() / Math.max(1e-30, y.amaxNumber().doubleValue());
    }

    private static long zeros(INDArray a) {
        return a.length() - Nd4j.getExecutioner().exec(new CountNonZero(a)).getInt(0);
    }
}
