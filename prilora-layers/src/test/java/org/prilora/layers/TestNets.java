package org.prilora.layers;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Small helpers shared by the layer tests. */
public final class TestNets {
    private TestNets() {
    }

    public static MultiLayerNetwork init(MultiLayerConfiguration conf) {
        MultiLayerNetwork net = new MultiLayerNetwork(conf);
        net.init();
        return net;
    }

    /** Fills every A and B of every PRILoRA layer with seeded random values (so the adapter path is non-zero). */
    public static void randomizeAdapters(Layer[] layers, long seed) {
        org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(seed);
        for (Layer l : layers) {
            if (l.conf().getLayer() instanceof PriLoraLayer) {
                for (AdapterModule s : ((PriLoraLayer) l.conf().getLayer()).adapterModules()) {
                    INDArray a = l.getParam(s.aKey());
                    a.assign(Nd4j.randn(a.shape(), rng).castTo(a.dataType()).muli(0.5));
                    INDArray b = l.getParam(s.bKey());
                    b.assign(Nd4j.randn(b.shape(), rng).castTo(b.dataType()).muli(0.5));
                }
            }
        }
    }

    /** Random 0/1 mask [mb, T] with at least the first step of each example real. */
    public static INDArray randomMask(int mb, int t, long seed, DataType dt) {
        java.util.Random r = new java.util.Random(seed);
        INDArray m = Nd4j.zeros(dt, mb, t);
        for (int b = 0; b < mb; b++) {
            int len = 1 + r.nextInt(t);
            for (int i = 0; i < len; i++) {
                m.putScalar(b, i, 1.0);
            }
        }
        return m;
    }

    public static NeuralNetConfiguration.Builder base(DataType dt) {
        return new NeuralNetConfiguration.Builder().seed(12345).dataType(dt);
    }
}
