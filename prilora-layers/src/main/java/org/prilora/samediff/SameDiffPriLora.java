package org.prilora.samediff;

import org.nd4j.autodiff.samediff.NameScope;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.TrainingConfig;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.autodiff.samediff.internal.Variable;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.rng.Random;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.GradientUpdater;
import org.nd4j.linalg.learning.config.IUpdater;
import org.prilora.ops.LoraLinear;
import org.prilora.config.PriLoraConfig;
import org.prilora.ops.AdapterState;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * PRILoRA for plain SameDiff graphs trained with {@code sd.fit}: {@link #inject} adds LoRA adapters to selected
 * matrix multiplications, {@link #merge} folds them back into the weights.
 *
 * <pre>{@code
 * InjectionReport r = SameDiffPriLora.inject(sd, cfg, WeightSelector.regex("layer_(\\d+)/W"));
 * sd.fit(trainIter, epochs, new PriLoraSameDiffListener());   // statistics + pruning
 * sd.save(file, true);                                         // adapters, statistics, masks, Adam state
 * SameDiff deployable = SameDiffPriLora.merge(SameDiff.load(file, false));
 * }</pre>
 *
 * <h2>What injection does</h2>
 * For every {@code mmul}/{@code matmul} ({@code y = x·W}, or {@code x·Wᵀ} with transposeB) and
 * {@code xw_plus_b}/{@code nn.linear} ({@code y = x·W + b}) op whose second operand {@code W} is a VARIABLE or
 * CONSTANT selected by the {@link WeightSelector}:
 * <ul>
 *   <li>adds {@code <W>_lora_A [r, nIn]} (VARIABLE, initialised by the adapter's {@code init} from a generator
 *       seeded with {@link PriLoraConfig#seed()}, sites in graph order), {@code <W>_lora_B [nOut, r]} (VARIABLE,
 *       zero), {@code <W>_lora_state [nIn + 1]} (CONSTANT: x̄ then the batch count, see
 *       {@link org.prilora.ops.InputNormStats}) and, in PERSISTENT_MASK mode, {@code <W>_lora_mask [r, nIn]}
 *       (CONSTANT, ones). Constants are saved by {@code sd.save} and never trained;</li>
 *   <li>removes the op and builds the adapted projection of {@link LoraLinear#forward} in its place (from its
 *       parts {@link LoraLinear#frozenLinear} and {@link LoraLinear#delta}; ops named under the scope
 *       {@code <W>_lora/}); the new output is renamed to the old output's name, and the consumers' recorded
 *       inputs are restored, so every consumer, loss variable, requested output and placeholder mapping that
 *       names the output keeps working unchanged;</li>
 *   <li>freezes, as PEFT does, every floating-point VARIABLE of the graph (adapted weights and biases included)
 *       by turning it into a CONSTANT, except the variables named in {@link PriLoraConfig#modulesToSave()}.</li>
 * </ul>
 * Ranks come from {@link PriLoraConfig#rankSchedule()} by the selector's block index, the scale from
 * the adapter's {@code scalingMode}. A description of all this is stored in the graph as a string constant
 * ({@value GraphMetadata#VARIABLE}) so that the listener, {@link #report} and {@link #merge} also work on a graph
 * restored by {@code SameDiff.load}.
 *
 * <p>Not supported (rejected with an error that names the weight): transposeA or transposeResult, mmul alpha
 * ≠ 1, a weight that feeds more than one op, ops or outputs with control dependencies, non-2-D or integer
 * weights, an adapter {@code loraDropout} &gt; 0.
 */
public final class SameDiffPriLora {

    /**
     * Suffixes, after the weight variable's name, of what injection adds: the trainable A and B variables, the
     * input-norm statistics constant, the pruning mask constant (PERSISTENT_MASK mode) and the name scope of the ops.
     */
    public static final String A_SUFFIX = "_lora_A", B_SUFFIX = "_lora_B", STATE_SUFFIX = "_lora_state",
            MASK_SUFFIX = "_lora_mask", SCOPE_SUFFIX = "_lora";

    private SameDiffPriLora() {
    }

    // =================================================================== inject


    /**
     * Adds PRILoRA adapters to the matrix multiplications of {@code sd} whose weight {@code selector} selects, in
     * place (see the class comment). Must run before the first gradient computation.
     *
     * @return what was adapted; {@link #report(SameDiff)} returns the same later
     * @throws IllegalStateException    if {@code sd} already holds adapters or already has a gradient function
     * @throws IllegalArgumentException if the selector matches no weight, a matched op cannot be adapted, or
     *                                  {@code modulesToSave} names a variable that is not trainable
     */
    public static InjectionReport inject(SameDiff sd, PriLoraConfig cfg, WeightSelector selector) {
        Objects.requireNonNull(sd, "sd");
        Objects.requireNonNull(cfg, "cfg");
        Objects.requireNonNull(selector, "selector");
        if (GraphMetadata.isPresent(sd)) {
            InjectionReport existing = GraphMetadata.read(sd);
            throw new IllegalStateException("PRILoRA: this graph already holds adapters on "
                    + existing.modules().stream().map(GraphModule::weightName).toList()
                    + "; injecting twice is not supported (merge first, or inject into the original graph)");
        }
        if (sd.hasGradientFunction()) {
            throw new IllegalStateException("PRILoRA: this graph already has a gradient function (fit, calculateGradients"
                    + " or createGradFunction ran); inject adapters before the first gradient computation, e.g. into a"
                    + " graph freshly built or restored with SameDiff.load");
        }
        if (cfg.adapter().loraDropout() > 0) {
            throw new IllegalArgumentException("PRILoRA: loraDropout " + cfg.adapter().loraDropout() + " is not supported for SameDiff"
                    + " graphs (LoraLinear.forward has no dropout); use loraDropout(0)");
        }

        List<Candidate> all = Candidate.all(sd);
        List<Candidate> matched = new ArrayList<>();
        for (Candidate c : all) {
            if (selector.matches(c.weight)) {
                matched.add(c);
            }
        }
        if (matched.isEmpty()) {
            throw new IllegalArgumentException("PRILoRA: " + selector + " matched no weight. Weights of mmul/matmul/"
                    + "xw_plus_b ops in this graph (VARIABLE or CONSTANT second operands): "
                    + all.stream().map(c -> c.weight).distinct().toList());
        }
        Candidate.validate(sd, matched, cfg);

        List<String> names = matched.stream().map(c -> c.weight).toList();
        int[] blocks = selector.blocks(names);
        int numBlocks = Arrays.stream(blocks).max().orElse(0) + 1;
        int[] ranks = new int[blocks.length];
        for (int i = 0; i < blocks.length; i++) {
            ranks[i] = cfg.rankSchedule().rankFor(blocks[i], numBlocks);
        }

        // ---- from here on the graph changes
        List<String> frozen = freezeBaseModel(sd, cfg);
        boolean masked = cfg.adapter().hasMask();
        List<GraphModule> sites = new ArrayList<>();
        Random rng = Nd4j.getRandomFactory().getNewRandomInstance(cfg.seed());
        try {
            for (int i = 0; i < matched.size(); i++) {
                sites.add(adapt(sd, matched.get(i), blocks[i], ranks[i], cfg, masked, rng, frozen));
            }
        } finally {
            closeQuietly(rng);
        }
        InjectionReport report = new InjectionReport(cfg, sites, frozen, numBlocks);
        GraphMetadata.write(sd, report);
        sd.getSessions().clear();   // cached sessions hold the old structure
        return report;
    }


    /** Turns every floating-point VARIABLE not in modulesToSave into a CONSTANT; returns their names. */
    private static List<String> freezeBaseModel(SameDiff sd, PriLoraConfig cfg) {
        List<SDVariable> toFreeze = new ArrayList<>();
        List<String> names = new ArrayList<>();
        for (SDVariable v : sd.variables()) {
            if (v.getVariableType() == VariableType.VARIABLE && v.dataType().isFPType()
                    && !cfg.modulesToSave().contains(v.name())) {
                toFreeze.add(v);
                names.add(v.name());
            }
        }
        // Also drops their updater state when training was already initialised (a graph loaded with it).
        sd.convertToConstants(toFreeze);
        return names;
    }

    private static GraphModule adapt(SameDiff sd, Candidate c, int block, int rank, PriLoraConfig cfg, boolean masked,
                                     Random rng, List<String> frozen) {
        INDArray wArr = sd.getArrForVarName(c.weight);
        DataType dt = wArr.dataType();
        long nIn = c.transposeB ? wArr.size(1) : wArr.size(0);
        long nOut = c.transposeB ? wArr.size(0) : wArr.size(1);
        double scale = cfg.adapter().scale(rank);
        VariableType weightType = frozen.contains(c.weight) ? VariableType.VARIABLE : VariableType.CONSTANT;
        VariableType biasType = null;
        if (c.bias != null) {
            VariableType now = sd.getVariable(c.bias).getVariableType();
            biasType = frozen.contains(c.bias) ? VariableType.VARIABLE : now;
        }

        Set<String> opsBefore = new HashSet<>(sd.getOps().keySet());
        Set<String> varsBefore = new HashSet<>(sd.getVariables().keySet());

        INDArray aArr = Nd4j.create(dt, rank, nIn);
        INDArray bArr = Nd4j.create(dt, nOut, rank);
        INDArray stateArr = Nd4j.create(dt, nIn + 1);
        INDArray maskArr = masked ? Nd4j.create(dt, rank, nIn) : null;
        AdapterState.init(aArr, bArr, maskArr, stateArr, cfg.adapter().init(), rng);
        SDVariable a = sd.var(c.weight + A_SUFFIX, aArr);
        SDVariable b = sd.var(c.weight + B_SUFFIX, bArr);
        sd.constant(c.weight + STATE_SUFFIX, stateArr);
        SDVariable mask = masked ? sd.constant(c.weight + MASK_SUFFIX, maskArr) : null;
        addUpdaterState(sd, a);
        addUpdaterState(sd, b);

        // Take the old op and its output out of the graph, keeping the output's consumers.
        Variable y = sd.getVariables().get(c.output);
        List<String> consumers = y.getInputsForOp() == null ? null : new ArrayList<>(y.getInputsForOp());
        detachOp(sd, c.opName);
        sd.getVariables().remove(c.output);

        SDVariable x = sd.getVariable(c.input);
        SDVariable w = sd.getVariable(c.weight);
        SDVariable bias = c.bias == null ? null : sd.getVariable(c.bias);
        // A bias kept trainable (modulesToSave) is added after the product: frozenLinear stops the gradient of its bias.
        boolean trainableBias = bias != null && bias.getVariableType() == VariableType.VARIABLE;
        SDVariable out;
        try (NameScope ignored = sd.withNameScope(c.weight + SCOPE_SUFFIX)) {
            SDVariable wInOut = c.transposeB ? sd.transpose(w) : w;
            // LoraLinear.forward's sum, frozenLinear + delta, with the operands swapped. In ND4J M2.1 the output of
            // frozenLinear's xw_plus_b was seen to carry order flag 'f' with c strides, the sum inherits its first
            // operand's layout, and Java-side ops on such an array (castTo, mul, sub) read it wrongly, so users'
            // code on sd.output results would. The delta's layout is sound in every graph tested.
            SDVariable base = LoraLinear.frozenLinear(sd, x, wInOut, trainableBias ? null : bias);
            out = LoraLinear.delta(sd, x, a, b, mask, scale).add(base);
            if (trainableBias) {
                out = out.add(bias.reshape(-1));
            }
        }
        // The adapted output takes the old name: consumers' recorded inputs, losses and outputs stay valid.
        sd.renameVariable(out.name(), c.output);
        sd.getVariables().get(c.output).setInputsForOp(consumers);

        List<String> addedOps = new ArrayList<>();
        for (String o : sd.getOps().keySet()) {
            if (!opsBefore.contains(o)) {
                addedOps.add(o);
            }
        }
        List<String> addedVars = new ArrayList<>();
        for (String v : sd.getVariables().keySet()) {
            if (!varsBefore.contains(v)) {
                addedVars.add(v);
            }
        }
        addedVars.remove(c.output);
        return new GraphModule(c.weight, c.bias, c.input, c.output, c.kind, c.transposeB, nIn, nOut, block, rank, scale,
                a.name(), b.name(), c.weight + STATE_SUFFIX, mask == null ? null : mask.name(), weightType, biasType,
                addedOps, addedVars);
    }

    /**
     * A graph restored with its updater state is already "initialised for training" and would not create updater
     * state for new variables; add it the way SameDiff's own initialisation does.
     */
    private static void addUpdaterState(SameDiff sd, SDVariable v) {
        TrainingConfig tc = sd.getTrainingConfig();
        if (!sd.isInitializedTraining() || sd.getUpdaterMap() == null || tc == null) {
            return;
        }
        IUpdater u = tc.getUpdater();
        INDArray arr = v.getArr();
        long n = u.stateSize(arr.length());
        INDArray view = n == 0 ? null : Nd4j.zeros(arr.dataType(), 1, n);
        GradientUpdater gu = u.instantiate(view, false);
        gu.setStateViewArray(view, arr.shape(), arr.ordering(), true);
        sd.getUpdaterMap().put(v.name(), gu);
    }

    /** Removes an op, and its name from its inputs' consumer lists. Its outputs stay (the caller handles them). */
    static void detachOp(SameDiff sd, String opName) {
        SameDiffOp op = sd.getOps().remove(opName);
        if (op == null || op.getInputsToOp() == null) {
            return;
        }
        for (String in : new LinkedHashSet<>(op.getInputsToOp())) {
            Variable v = sd.getVariables().get(in);
            if (v != null && v.getInputsForOp() != null) {
                List<String> users = new ArrayList<>(v.getInputsForOp());
                users.removeIf(opName::equals);
                v.setInputsForOp(users);
            }
        }
    }

    private static void closeQuietly(Random rng) {
        try {
            rng.close();
        } catch (Exception e) {
            // a generator that cannot release its native state leaks a few bytes; nothing to recover
        }
    }

    // =================================================================== read back

    /** Whether {@code sd} holds PRILoRA adapters injected by {@link #inject}. */
    public static boolean isAdapted(SameDiff sd) {
        return GraphMetadata.isPresent(Objects.requireNonNull(sd, "sd"));
    }

    /**
     * The description of the adapters in {@code sd} (also of a graph restored by {@code SameDiff.load}).
     *
     * @throws IllegalArgumentException if {@code sd} holds no adapters
     */
    public static InjectionReport report(SameDiff sd) {
        InjectionReport r = GraphMetadata.read(Objects.requireNonNull(sd, "sd"));
        if (r == null) {
            throw new IllegalArgumentException("PRILoRA: this graph holds no adapters (no '" + GraphMetadata.VARIABLE
                    + "' constant); call SameDiffPriLora.inject first");
        }
        return r;
    }

    /** The adapted modules of {@code sd}, in graph order. */
    public static List<GraphModule> modules(SameDiff sd) {
        return report(sd).modules();
    }

    // =================================================================== merge

    /**
     * A new graph with the original structure and every adapter folded into its weight:
     * {@code W = LoraLinear.mergedWeight(W0, A, B, M, s)} (transposed back for {@code x·Wᵀ} weights), each weight,
     * bias and frozen variable restored to its original variable type, the adapter ops and variables removed and
     * the consumers wired to a plain {@code mmul}/{@code xw_plus_b} again. {@code sd} itself is not changed. The
     * copy carries the training configuration but no updater state (see {@link #mergeInPlace}).
     */
    public static SameDiff merge(SameDiff sd) {
        report(sd);   // fail early, before copying
        SameDiff copy;
        try {
            copy = SameDiff.fromFlatBuffers(sd.asFlatBuffers(false), false);
        } catch (IOException e) {
            throw new UncheckedIOException("PRILoRA: could not copy the graph for merging: " + e.getMessage(), e);
        }
        return mergeInPlace(copy);
    }

    /**
     * As {@link #merge}, but changes {@code sd} itself and returns it. Drops the gradient function and the adapters'
     * updater state; restored variables get fresh updater state if training was initialised.
     */
    public static SameDiff mergeInPlace(SameDiff sd) {
        return GraphMerge.mergeInPlace(sd, report(sd));
    }
}
