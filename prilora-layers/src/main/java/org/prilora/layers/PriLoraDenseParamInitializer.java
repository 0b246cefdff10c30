package org.prilora.layers;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.ParamInitializer;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Parameter layout of {@link PriLoraDense}, in flattened order: {@code W [nIn,nOut]} ('f' order, as DL4J's
 * DenseLayer), {@code b [1,nOut]}, {@code loraA [r,nIn]}, {@code loraB [nOut,r]}, {@code loraM [r,nIn]}
 * (PERSISTENT_MASK only), {@code xnorm [1,nIn+1]}.
 */
final class PriLoraDenseParamInitializer implements ParamInitializer {

    private static final PriLoraDenseParamInitializer INSTANCE = new PriLoraDenseParamInitializer();

    static PriLoraDenseParamInitializer getInstance() {
        return INSTANCE;
    }

    private static PriLoraDense conf(NeuralNetConfiguration conf) {
        return (PriLoraDense) conf.getLayer();
    }

    private static AdapterModule module(org.deeplearning4j.nn.conf.layers.Layer l) {
        return ((PriLoraDense) l).adapterModules().get(0);
    }

    @Override
    public long numParams(NeuralNetConfiguration conf) {
        return numParams(conf.getLayer());
    }

    @Override
    public long numParams(org.deeplearning4j.nn.conf.layers.Layer layer) {
        long n = 0;
        for (long[] shape : module(layer).paramShapes().values()) {
            n += shape[0] * shape[1];
        }
        return n;
    }

    @Override
    public List<String> paramKeys(org.deeplearning4j.nn.conf.layers.Layer layer) {
        return new ArrayList<>(module(layer).paramShapes().keySet());
    }

    @Override
    public List<String> weightKeys(org.deeplearning4j.nn.conf.layers.Layer layer) {
        AdapterModule s = module(layer);
        return List.of(s.weightKey(), s.aKey(), s.bKey());
    }

    @Override
    public List<String> biasKeys(org.deeplearning4j.nn.conf.layers.Layer layer) {
        AdapterModule s = module(layer);
        return s.biasKey() == null ? Collections.emptyList() : List.of(s.biasKey());
    }

    @Override
    public boolean isWeightParam(org.deeplearning4j.nn.conf.layers.Layer layer, String key) {
        return weightKeys(layer).contains(key);
    }

    @Override
    public boolean isBiasParam(org.deeplearning4j.nn.conf.layers.Layer layer, String key) {
        return biasKeys(layer).contains(key);
    }

    @Override
    public Map<String, INDArray> init(NeuralNetConfiguration conf, INDArray paramsView, boolean initializeParams) {
        PriLoraDense l = conf(conf);
        AdapterModule s = module(l);
        Map<String, INDArray> views = views(s, paramsView);
        if (initializeParams) {
            INDArray w = views.get(s.weightKey());
            org.deeplearning4j.nn.weights.IWeightInit wi = l.getWeightInitFn() == null
                    ? new org.deeplearning4j.nn.weights.WeightInitXavier() : l.getWeightInitFn();
            wi.init(s.nIn(), s.nOut(), w.shape(), 'f', w);
            if (s.biasKey() != null) {
                views.get(s.biasKey()).assign(l.getBiasInit());
            }
            s.initState(views::get, l.getAdapter().init(), Nd4j.getRandom());
        }
        for (String k : views.keySet()) {
            conf.addVariable(k);
        }
        return views;
    }

    @Override
    public Map<String, INDArray> getGradientsFromFlattened(NeuralNetConfiguration conf, INDArray gradientView) {
        return views(module(conf(conf)), gradientView);
    }

    private static Map<String, INDArray> views(AdapterModule s, INDArray flat) {
        INDArray f = flat.reshape(flat.length());
        Map<String, INDArray> out = Collections.synchronizedMap(new LinkedHashMap<>());
        long offset = 0;
        for (Map.Entry<String, long[]> e : s.paramShapes().entrySet()) {
            long[] shape = e.getValue();
            long len = shape[0] * shape[1];
            INDArray v = f.get(NDArrayIndex.interval(offset, offset + len));
            char order = e.getKey().equals(s.weightKey()) ? 'f' : 'c';
            out.put(e.getKey(), v.reshape(order, shape[0], shape[1]));
            offset += len;
        }
        if (offset != f.length()) {
            throw new IllegalStateException("params view: expected length " + offset + ", got " + f.length());
        }
        return out;
    }
}
