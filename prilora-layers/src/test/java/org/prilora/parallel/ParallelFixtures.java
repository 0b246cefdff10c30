package org.prilora.parallel;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.lossfunctions.LossFunctions;
import org.prilora.PriLora;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.PruningMode;
import org.prilora.config.PruningSchedule;
import org.prilora.config.RankSchedule;
import org.prilora.layers.AdapterModule;
import org.prilora.layers.PriLoraLayer;
import org.prilora.layers.TestNets;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** Small double-precision networks, data and comparisons shared by the data-parallel tests (and the Spark module's). */
public final class ParallelFixtures {
    private ParallelFixtures() {
    }

    public static final PruningSchedule SCHEDULE = PruningSchedule.builder().fraction(0.25).interval(2).startStep(2).build();

    public static PriLoraConfig config(PruningMode mode, String targets) {
        return PriLoraConfig.builder().rankSchedule(RankSchedule.linear(2, 6)).alpha(8).pruningMode(mode)
                .targetTypes("DenseLayer").targetModules(targets).modulesToSave("head").pruning(SCHEDULE).seed(7).build();
    }

    /** A plain MLP 10 → 16 → 16 → 12 → 3 in double precision, adapted on fc2 and fc3 (fc1 frozen, head trained). */
    public static MultiLayerNetwork adaptedMlp(PruningMode mode) {
        MultiLayerNetwork plain = TestNets.init(TestNets.base(DataType.DOUBLE).updater(new Adam(1e-2)).list()
                .layer(new DenseLayer.Builder().name("fc1").nIn(10).nOut(16).activation(Activation.RELU).build())
                .layer(new DenseLayer.Builder().name("fc2").nIn(16).nOut(16).activation(Activation.TANH).build())
                .layer(new DenseLayer.Builder().name("fc3").nIn(16).nOut(12).activation(Activation.TANH).build())
                .layer(new OutputLayer.Builder().name("head").nIn(12).nOut(3).activation(Activation.SOFTMAX)
                        .lossFunction(LossFunctions.LossFunction.MCXENT).build())
                .build());
        MultiLayerNetwork net = PriLora.adapt(plain, config(mode, "fc[23]"));
        TestNets.randomizeAdapters(net.getLayers(), 5);   // B ≠ 0, so A gets gradients from the first step
        return net;
    }

    /** A ComputationGraph in → fc1 → fc2 → head in double precision, adapted on fc1 and fc2. */
    public static ComputationGraph adaptedGraph(PruningMode mode) {
        ComputationGraphConfiguration conf = new NeuralNetConfiguration.Builder().seed(3).dataType(DataType.DOUBLE)
                .updater(new Adam(1e-2)).graphBuilder().addInputs("in")
                .addLayer("fc1", new DenseLayer.Builder().nOut(16).activation(Activation.TANH).build(), "in")
                .addLayer("fc2", new DenseLayer.Builder().nOut(12).activation(Activation.TANH).build(), "fc1")
                .addLayer("head", new OutputLayer.Builder().nOut(3).activation(Activation.SOFTMAX)
                        .lossFunction(LossFunctions.LossFunction.MCXENT).build(), "fc2")
                .setOutputs("head").setInputTypes(InputType.feedForward(10)).build();
        ComputationGraph plain = new ComputationGraph(conf);
        plain.init();
        ComputationGraph net = PriLora.adapt(plain, config(mode, "fc[12]"));
        TestNets.randomizeAdapters(net.getLayers(), 5);
        return net;
    }

    /** {@code n} rows of 10 features with a learnable 3-class label. */
    public static DataSet data(int n, long seed) {
        Random r = new Random(seed);
        INDArray x = Nd4j.zeros(DataType.DOUBLE, n, 10);
        INDArray y = Nd4j.zeros(DataType.DOUBLE, n, 3);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < 10; j++) {
                x.putScalar(i, j, r.nextGaussian() * (1 + j % 3));
            }
            y.putScalar(i, (int) Math.floorMod((long) Math.floor(x.getDouble(i, 0) + x.getDouble(i, 1)), 3L), 1.0);
        }
        return new DataSet(x, y);
    }

    /** Global batches of {@code batch} rows from {@code ds}, the last one short. */
    public static List<DataSet> batches(DataSet ds, int batch) {
        List<DataSet> out = new ArrayList<>();
        int n = ds.numExamples();
        for (int from = 0; from < n; from += batch) {
            int to = Math.min(n, from + batch);
            out.add(new DataSet(rows(ds.getFeatures(), from, to), rows(ds.getLabels(), from, to),
                    ds.getFeaturesMaskArray() == null ? null : rows(ds.getFeaturesMaskArray(), from, to),
                    ds.getLabelsMaskArray() == null ? null : rows(ds.getLabelsMaskArray(), from, to)));
        }
        return out;
    }

    private static INDArray rows(INDArray a, int from, int to) {
        org.nd4j.linalg.indexing.INDArrayIndex[] idx = new org.nd4j.linalg.indexing.INDArrayIndex[a.rank()];
        idx[0] = org.nd4j.linalg.indexing.NDArrayIndex.interval(from, to);
        for (int i = 1; i < idx.length; i++) {
            idx[i] = org.nd4j.linalg.indexing.NDArrayIndex.all();
        }
        return a.get(idx).dup();
    }

    /** max |a - b| / max(max |a|, 1e-12). */
    public static double relDiff(INDArray a, INDArray b) {
        double scale = Math.max(a.amaxNumber().doubleValue(), 1e-12);
        return a.sub(b).amaxNumber().doubleValue() / scale;
    }

    /**
     * Asserts the data-parallel result equals the single-JVM one: every trainable parameter (A, B, head) within
     * {@code tol} relative, masks and the positions of zeros in A identical, frozen parameters bit for bit, x̄ within
     * 1e-6 relative.
     */
    public static void assertSameTraining(Model single, Model parallel, double tol) {
        Map<String, Layer> a = ParamLayout.layers(single);
        Map<String, Layer> b = ParamLayout.layers(parallel);
        assertThat(b.keySet()).isEqualTo(a.keySet());
        int trainableCompared = 0;
        for (String name : a.keySet()) {
            Layer la = a.get(name);
            Layer lb = b.get(name);
            java.util.Set<String> masks = new java.util.HashSet<>();
            java.util.Set<String> stats = new java.util.HashSet<>();
            java.util.Set<String> as = new java.util.HashSet<>();
            if (la.conf().getLayer() instanceof PriLoraLayer) {
                for (AdapterModule m : ((PriLoraLayer) la.conf().getLayer()).adapterModules()) {
                    if (m.maskKey() != null) {
                        masks.add(m.maskKey());
                    }
                    stats.add(m.statsKey());
                    as.add(m.aKey());
                }
            }
            for (String key : la.paramTable().keySet()) {
                INDArray pa = la.getParam(key);
                INDArray pb = lb.getParam(key);
                String what = name + "." + key;
                if (ParamLayout.isTrainable(la, key)) {
                    assertThat(relDiff(pa, pb)).as(what).isLessThanOrEqualTo(tol);
                    trainableCompared++;
                    if (as.contains(key)) {
                        assertThat(pb.eq(0.0)).as(what + " zeros").isEqualTo(pa.eq(0.0));
                    }
                } else if (masks.contains(key)) {
                    assertThat(pb).as(what).isEqualTo(pa);
                } else if (stats.contains(key)) {
                    assertThat(relDiff(pa, pb)).as(what).isLessThanOrEqualTo(1e-6);
                } else {
                    assertThat(pb).as(what + " (frozen)").isEqualTo(pa);
                }
            }
        }
        assertThat(trainableCompared).isPositive();
    }

    /** How many entries of A are zero over every adapted module (pruning happened when positive). */
    public static long zerosInA(Model net) {
        long z = 0;
        for (Layer l : ParamLayout.layers(net).values()) {
            if (l.conf().getLayer() instanceof PriLoraLayer) {
                for (AdapterModule m : ((PriLoraLayer) l.conf().getLayer()).adapterModules()) {
                    z += l.getParam(m.aKey()).eq(0.0).castTo(DataType.INT32).sumNumber().longValue();
                }
            }
        }
        return z;
    }
}
