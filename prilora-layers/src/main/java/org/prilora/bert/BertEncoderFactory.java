package org.prilora.bert;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.RNNFormat;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.GlobalPoolingLayer;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.PoolingType;
import org.deeplearning4j.nn.conf.layers.RnnOutputLayer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.nn.weights.WeightInit;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.lossfunctions.ILossFunction;
import org.nd4j.linalg.lossfunctions.impl.LossMCXENT;
import org.nd4j.linalg.lossfunctions.impl.LossMSE;
import org.prilora.bert.BertNaming.Norm;
import org.prilora.bert.BertNaming.Projection;
import org.prilora.config.AdapterSettings;
import org.prilora.config.RankSchedule;

import java.util.Arrays;
import java.util.Objects;

/**
 * Builds a BERT encoder with PRILoRA adapters as a standard DL4J {@link MultiLayerNetwork}:
 * <pre>
 *   [0]      "embeddings"       {@link BertEmbeddings}      input NCW [mb, 2 (or 1), T] ids, output [mb, H, T]
 *   [1..L]   "encoder.layer.N"  {@link PriLoraBertBlock}    rank of block N from the {@link RankSchedule} ({@link BertBlock} with {@link Builder#plain()})
 *   then, by {@link BertPooling} (sentence-level heads, or {@link Builder#pooling} without a head):
 *            "meanPooling"      GlobalPoolingLayer(AVG)     MEAN: mask-aware mean over real tokens (sentence-transformers)
 *            "clsPooling"       {@link ClsPooling}              CLS, CLS_POOLER: the [CLS] vector
 *            "pooler.dense"     DenseLayer(tanh)            CLS_POOLER: the checkpoint's pooler
 *   and the {@link BertHead}, named "classifier":
 *            OutputLayer(softmax, MCXENT)   sequence classification (optionally class-weighted)
 *            OutputLayer(identity, MSE)     regression
 *            RnnOutputLayer(softmax, MCXENT) token classification (on every token, no pooling)
 * </pre>
 * Without a head or pooling the network's output is BERT's {@code last_hidden_state} in NCW layout; with
 * {@link Builder#pooling} and no head it is the pooled sentence vector {@code [mb, hidden]}. Pass the attention mask
 * {@code [mb, T]} as the features mask.
 *
 * <pre>{@code
 * BertWeights w = OnnxBertReader.read(path);
 * MultiLayerNetwork net = BertEncoderFactory.builder(w.config())
 *         .rankSchedule(RankSchedule.linear(4, 12)).classifier(2).build(w);
 * }</pre>
 */
public final class BertEncoderFactory {

    /** Layer name of the embeddings. */
    public static final String EMBEDDINGS_NAME = "embeddings";
    /** Layer name of the mean pooling layer ({@link BertPooling#MEAN}). */
    public static final String POOLING_NAME = "meanPooling";
    /** Layer name of the {@code [CLS]} pooling layer ({@link BertPooling#CLS}, {@link BertPooling#CLS_POOLER}). */
    public static final String CLS_POOLING_NAME = "clsPooling";
    /** Layer name of the checkpoint's pooler ({@link BertPooling#CLS_POOLER}), its Hugging Face module name. */
    public static final String POOLER_NAME = BertNaming.POOLER;
    /** Layer name of every head ({@link BertHead}): Hugging Face's {@code classifier}. */
    public static final String CLASSIFIER_NAME = "classifier";

    private BertEncoderFactory() {
    }

    /** A builder for an encoder of this shape. */
    public static Builder builder(BertConfig config) {
        return new Builder(config);
    }

    /** Index in the network of block {@code n} (0-based): {@code n + 1}. */
    public static int blockLayerIndex(int n) {
        return n + 1;
    }

    /**
     * Copies pretrained weights into the frozen parameters of a network built by this factory (layer 0 the
     * embeddings, layers 1..L the blocks, bottom first). Adapters, statistics and any head are left as they are.
     * The network's sizes must match the weights' config; a network with fewer blocks takes the bottom ones.
     */
    public static void loadPretrained(MultiLayerNetwork net, BertWeights w) {
        Objects.requireNonNull(net, "net");
        Objects.requireNonNull(w, "weights");
        Layer[] layers = net.getLayers();
        if (layers.length < 2 || !(layers[0].conf().getLayer() instanceof BertEmbeddings)) {
            throw new IllegalArgumentException("net: expected layer 0 to be BertEmbeddings followed by BertBlocks, got "
                    + (layers.length == 0 ? "no layers" : layers[0].conf().getLayer().getClass().getSimpleName()));
        }
        Layer emb = layers[0];
        copy(emb, BertEmbeddings.WORD, w, BertNaming.WORD_EMBEDDINGS);
        copy(emb, BertEmbeddings.POSITION, w, BertNaming.POSITION_EMBEDDINGS);
        copy(emb, BertEmbeddings.TOKEN_TYPE, w, BertNaming.TOKEN_TYPE_EMBEDDINGS);
        copy(emb, BertEmbeddings.LN_GAIN, w, BertNaming.EMBEDDINGS_LN_WEIGHT);
        copy(emb, BertEmbeddings.LN_BIAS, w, BertNaming.EMBEDDINGS_LN_BIAS);
        int n = 0;
        for (int i = 1; i < layers.length && layers[i].conf().getLayer() instanceof BertBlock; i++, n++) {
            if (n >= w.config().numLayers()) {
                throw new IllegalArgumentException("net: has more blocks than the weights (" + w.config().numLayers() + ")");
            }
            Layer b = layers[i];
            for (Projection p : Projection.values()) {
                copy(b, BertBlock.weightKey(p), w, p.weight(n));
                copy(b, BertBlock.biasKey(p), w, p.bias(n));
            }
            for (Norm nm : Norm.values()) {
                copy(b, nm.gainKey(), w, nm.weight(n));
                copy(b, nm.biasKey(), w, nm.bias(n));
            }
        }
        for (Layer l : layers) {
            if (POOLER_NAME.equals(l.conf().getLayer().getLayerName())) {
                requirePooler(w);
                copy(l, org.deeplearning4j.nn.params.DefaultParamInitializer.WEIGHT_KEY, w, BertNaming.POOLER_WEIGHT);
                copy(l, org.deeplearning4j.nn.params.DefaultParamInitializer.BIAS_KEY, w, BertNaming.POOLER_BIAS);
            }
        }
    }

    private static void requirePooler(BertWeights w) {
        if (!w.hasPooler()) {
            throw new IllegalArgumentException("pooling " + BertPooling.CLS_POOLER + ": the checkpoint has no pooler (no '"
                    + BertNaming.POOLER_WEIGHT + "' / '" + BertNaming.POOLER_BIAS + "' in its weights; sentence-embedding"
                    + " exports such as all-MiniLM-L6-v2 and bge-small-en-v1.5 leave it out); use BertPooling.CLS or"
                    + " BertPooling.MEAN");
        }
    }

    /** {@code getParam(key).assign(value)}: DL4J M2.1's SameDiff {@code setParam} checks the shape but assigns nothing. */
    private static void copy(Layer layer, String key, BertWeights w, String name) {
        INDArray dst = layer.getParam(key);
        INDArray src = w.get(name);
        if (dst.length() != src.length() || dst.size(-1) != src.size(-1)) {
            throw new IllegalArgumentException("layer '" + layer.conf().getLayer().getLayerName() + "' parameter '" + key
                    + "': expected shape " + Arrays.toString(dst.shape()) + ", got " + Arrays.toString(src.shape())
                    + " from '" + name + "'");
        }
        dst.assign(src.reshape(dst.shape()).castTo(dst.dataType()));
    }

    /**
     * Network input from token ids and (optionally) token type ids, both {@code [mb, T]}:
     * {@code [mb, 2, T]} (ids, types) or, when {@code typeIdsOrNull} is null, {@code [mb, 1, T]}.
     */
    public static INDArray features(INDArray ids, INDArray typeIdsOrNull, DataType dataType) {
        if (ids.rank() != 2) {
            throw new IllegalArgumentException("ids: expected [mb, T], got shape " + Arrays.toString(ids.shape()));
        }
        if (typeIdsOrNull == null) {
            return ids.castTo(dataType).reshape(ids.size(0), 1, ids.size(1));
        }
        if (!Arrays.equals(ids.shape(), typeIdsOrNull.shape())) {
            throw new IllegalArgumentException("typeIds: expected shape " + Arrays.toString(ids.shape()) + " like ids, got "
                    + Arrays.toString(typeIdsOrNull.shape()));
        }
        return Nd4j.stack(1, ids.castTo(dataType), typeIdsOrNull.castTo(dataType));
    }

    /** Builder of the network; every adapter setting applies to every block except the rank (from the schedule). */
    public static final class Builder {
        private final BertConfig config;
        private RankSchedule rankSchedule = RankSchedule.uniform(8);
        private boolean plain;
        private boolean graphRuntime;
        private AdapterSettings adapter = AdapterSettings.defaults();
        private DataType dataType = DataType.FLOAT;
        private long seed = 12345;
        private IUpdater updater = new Adam(1e-3);
        private boolean tokenTypes = true;
        private BertHead head;
        private BertPooling pooling = BertPooling.DEFAULT;
        private boolean poolingSet;

        private Builder(BertConfig config) {
            this.config = Objects.requireNonNull(config, "config");
        }

        /**
         * The plain model: {@link BertBlock}s, every weight of the encoder blocks trainable (the embeddings stay
         * frozen), no adapters. The base model that {@code PriLora.adapt} converts, and the model of full fine-tuning.
         */
        public Builder plain() {
            this.plain = true;
            return this;
        }

        /** Run the blocks as SameDiff graphs instead of the native runtime (see {@link BertBlock.AbstractBuilder#graphRuntime}). */
        public Builder graphRuntime(boolean graph) {
            this.graphRuntime = graph;
            return this;
        }

        /** Ranks of the blocks, bottom to top ({@code schedule.ranks(numLayers)}). Default: uniform 8. */
        public Builder rankSchedule(RankSchedule s) {
            this.rankSchedule = Objects.requireNonNull(s, "rankSchedule");
            return this;
        }

        /** Alpha, scaling, pruning mode and A init of every adapted block (default {@link AdapterSettings#defaults()}). */
        public Builder adapter(AdapterSettings adapter) {
            this.adapter = Objects.requireNonNull(adapter, "adapter");
            return this;
        }

        /** FLOAT (default) or DOUBLE (gradient checks). */
        public Builder dataType(DataType dt) {
            if (dt != DataType.FLOAT && dt != DataType.DOUBLE) {
                throw new IllegalArgumentException("dataType: expected FLOAT or DOUBLE, got " + dt);
            }
            this.dataType = dt;
            return this;
        }

        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** Updater of the trainable parameters (adapters and head). Default Adam(1e-3). */
        public Builder updater(IUpdater u) {
            this.updater = Objects.requireNonNull(u, "updater");
            return this;
        }

        /** true (default): input {@code [mb, 2, T]} with token type ids; false: {@code [mb, 1, T]}, all types 0. */
        public Builder tokenTypes(boolean withTokenTypes) {
            this.tokenTypes = withTokenTypes;
            return this;
        }

        /** Adds a sequence-classification head (pooling + softmax output) with {@code nClasses >= 2}. */
        public Builder classifier(int nClasses) {
            if (nClasses < 2) {
                throw new IllegalArgumentException("nClasses: expected >= 2, got " + nClasses);
            }
            return head(BertHead.sequenceClassification(nClasses));
        }

        /** The task head (see {@link BertHead}); replaces any earlier one. */
        public Builder head(BertHead head) {
            this.head = Objects.requireNonNull(head, "head");
            return this;
        }

        /**
         * How sentence-level heads pool the tokens (default {@link BertPooling#DEFAULT}, mean). Without a head the
         * network then outputs the pooled vector {@code [mb, hidden]}; a token-classification head takes no pooling.
         */
        public Builder pooling(BertPooling pooling) {
            this.pooling = Objects.requireNonNull(pooling, "pooling");
            this.poolingSet = true;
            return this;
        }

        /** No head: the output is {@code last_hidden_state} {@code [mb, hidden, T]} (the default), or the pooled vector. */
        public Builder noHead() {
            this.head = null;
            return this;
        }

        /** The network configuration. */
        public MultiLayerConfiguration configuration() {
            int[] ranks = rankSchedule.ranks(config.numLayers());
            NeuralNetConfiguration.ListBuilder lb = new NeuralNetConfiguration.Builder()
                    .seed(seed)
                    .dataType(dataType)
                    .updater(updater)
                    .weightInit(WeightInit.XAVIER)
                    .list();
            lb.layer(new BertEmbeddings.Builder().config(config).inputChannels(tokenTypes ? 2 : 1).name(EMBEDDINGS_NAME).build());
            for (int n = 0; n < config.numLayers(); n++) {
                String name = BertNaming.layerName(n);
                lb.layer(plain ? new BertBlock.Builder().config(config).graphRuntime(graphRuntime).name(name).build()
                        : new PriLoraBertBlock.Builder().config(config).rank(ranks[n]).adapter(adapter)
                        .graphRuntime(graphRuntime).name(name).build());
            }
            if (head != null && !head.pooled() && poolingSet) {
                throw new IllegalArgumentException("pooling: a " + head.kind() + " head labels every token and takes no pooling,"
                        + " got pooling " + pooling);
            }
            if (head != null ? head.pooled() : poolingSet) {
                switch (pooling) {
                    case MEAN -> lb.layer(new GlobalPoolingLayer.Builder(PoolingType.AVG).name(POOLING_NAME).build());
                    case CLS -> lb.layer(new ClsPooling.Builder().name(CLS_POOLING_NAME).build());
                    case CLS_POOLER -> {
                        lb.layer(new ClsPooling.Builder().name(CLS_POOLING_NAME).build());
                        lb.layer(new DenseLayer.Builder().nOut(config.hidden()).activation(Activation.TANH).name(POOLER_NAME).build());
                    }
                }
            }
            if (head != null) {
                lb.layer(headLayer());
            }
            lb.setInputType(InputType.recurrent(tokenTypes ? 2 : 1));
            return lb.build();
        }

        private org.deeplearning4j.nn.conf.layers.Layer headLayer() {
            double[] w = head.classWeights();
            ILossFunction xent = w == null ? new LossMCXENT() : new LossMCXENT(Nd4j.create(w, new long[]{1, w.length}, dataType));
            return switch (head.kind()) {
                case SEQUENCE_CLASSIFICATION -> new OutputLayer.Builder(xent).activation(Activation.SOFTMAX)
                        .nOut(head.numLabels()).name(CLASSIFIER_NAME).build();
                case REGRESSION -> new OutputLayer.Builder(new LossMSE()).activation(Activation.IDENTITY)
                        .nOut(1).name(CLASSIFIER_NAME).build();
                case TOKEN_CLASSIFICATION -> new RnnOutputLayer.Builder(xent).activation(Activation.SOFTMAX)
                        .dataFormat(RNNFormat.NCW).nOut(head.numLabels()).name(CLASSIFIER_NAME).build();
            };
        }

        /** An initialized network with random (not pretrained) base weights. */
        public MultiLayerNetwork build() {
            MultiLayerNetwork net = new MultiLayerNetwork(configuration());
            net.init();
            return net;
        }

        /** An initialized network with the pretrained weights copied in (config must match {@code weights.config()}). */
        public MultiLayerNetwork build(BertWeights weights) {
            BertConfig wc = weights.config();
            if (wc.hidden() != config.hidden() || wc.vocabSize() != config.vocabSize() || wc.intermediate() != config.intermediate()
                    || wc.maxPositions() != config.maxPositions() || wc.typeVocabSize() != config.typeVocabSize()
                    || config.numLayers() > wc.numLayers()) {
                throw new IllegalArgumentException("weights: expected a config compatible with " + config + ", got " + wc);
            }
            if (pooling == BertPooling.CLS_POOLER && (head != null ? head.pooled() : poolingSet)) {
                requirePooler(weights);   // before the network is built
            }
            MultiLayerNetwork net = build();
            loadPretrained(net, weights);
            return net;
        }
    }
}
