package org.prilora.serving;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.conf.layers.FeedForwardLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.PriLoraAdapters;
import org.prilora.layers.PriLoraLayer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;

/**
 * Many fine-tuned tasks served from one base model: PEFT's {@code load_adapter} / {@code delete_adapter} and mixed-batch
 * inference with {@code adapter_names}, for DL4J networks with PRILoRA adapters (dense layers, self-attention, BERT
 * blocks) and their saved layers (modules_to_save, e.g. a classifier head per task).
 *
 * <pre>{@code
 * AdapterRegistry registry = AdapterRegistry.builder(base).memoryBudgetBytes(256L << 20).build();
 * registry.register("sentiment", Path.of("sentiment.prilora"));      // checked against the base (CRC32 of W0)
 * registry.registerPeft("topic", Path.of("topic-peft"), null);
 * INDArray y = registry.predict("sentiment", features, mask);          // one adapter
 * INDArray z = registry.predict(List.of("sentiment", "topic", AdapterRegistry.BASE), features, mask); // one id per row
 * }</pre>
 *
 * <p>How a batch runs: rows that name the same adapter are grouped; every adapted dense layer and BERT block computes
 * the frozen product {@code x·W0 + b} once for the whole batch and adds only each group's low-rank term
 * {@code s·(x_g·(A⊙M)ᵀ)·Bᵀ} (the SGMV idea); saved layers run per group with that adapter's weights; the rest of the
 * network runs once. Adapted layers of other types (e.g. {@code PriLoraSelfAttention}) run per group through the
 * adapter's own copy of the layer. The answer for each row equals what that adapter's merged network
 * ({@code PriLora.merge}) computes, up to float rounding.
 *
 * <p>Thread safety: {@code register}, {@code unregister} and {@code predict} may be called from any threads at once.
 * The registered set is an immutable snapshot replaced atomically; a request resolves its adapters from one snapshot
 * and keeps their (immutable) weights to the end, so it never sees a half-loaded adapter, and an adapter unloaded
 * meanwhile still answers the requests that had already resolved it. Forward passes run one at a time (as DL4J's own
 * {@code output}); batch concurrent requests into one mixed batch for throughput.
 *
 * <p>Memory: each adapter's tensors count against a byte budget; when the resident adapters exceed it, the least
 * recently used are evicted and reload from their file or directory on their next request. The registry keeps its own
 * copy of the base network.
 */
public final class AdapterRegistry {
    /** The id that selects the base model (no adapter) for a row, as PEFT's {@code "__base__"}. */
    public static final String BASE = "__base__";

    private final Model base;
    private final GroupedForward forward;
    private final DataType dataType;
    private final long budget;
    private final ReentrantLock passLock = new ReentrantLock();
    private final Object writeLock = new Object();
    private final Object cacheLock = new Object();
    private volatile Map<String, Registration> snapshot = Map.of();
    /** Resident adapters in access order (eldest first), guarded by {@link #cacheLock}. */
    private final LinkedHashMap<Registration, LoadedAdapter> resident = new LinkedHashMap<>(16, 0.75f, true);
    private long residentBytes;

    /** One registration; a new one for every {@code register}, so a cached entry never outlives its id's registration. */
    private static final class Registration {
        final String id;
        final Path source;
        final boolean peft;
        final Function<String, String> nameMapping;
        int loads;
        long bytes;

        Registration(String id, Path source, boolean peft, Function<String, String> nameMapping) {
            this.id = id;
            this.source = source;
            this.peft = peft;
            this.nameMapping = nameMapping;
        }
    }

    private AdapterRegistry(Builder b) {
        this.base = b.base instanceof MultiLayerNetwork ? ((MultiLayerNetwork) b.base).clone() : ((ComputationGraph) b.base).clone();
        this.forward = new GroupedForward(base);
        this.dataType = base.params().dataType();
        this.budget = b.budget;
    }

    /** A builder for a registry over {@code base}, the plain pretrained network the adapters were trained on. */
    public static Builder builder(MultiLayerNetwork base) {
        return new Builder(base);
    }

    /** A builder for a registry over {@code base}, a plain pretrained single-output ComputationGraph. */
    public static Builder builder(ComputationGraph base) {
        return new Builder(base);
    }

    /** Settings of an {@link AdapterRegistry}, validated by {@link #build()}. */
    public static final class Builder {
        private final Model base;
        private long budget = Long.MAX_VALUE;

        private Builder(Model base) {
            this.base = Objects.requireNonNull(base, "base");
        }

        /** Bytes the resident adapters may take together (default unlimited); must be positive. */
        public Builder memoryBudgetBytes(long bytes) {
            this.budget = bytes;
            return this;
        }

        /**
         * @throws IllegalArgumentException for a non-positive budget, a base with PRILoRA layers (merge it first) or a
         *                                  ComputationGraph with more than one input or output
         */
        public AdapterRegistry build() {
            if (budget <= 0) {
                throw new IllegalArgumentException("memoryBudgetBytes: expected > 0, got " + budget);
            }
            for (Map.Entry<String, Layer> e : LoadedAdapter.layers(base).entrySet()) {
                if (e.getValue().conf().getLayer() instanceof PriLoraLayer) {
                    throw new IllegalArgumentException("base: expected the plain pretrained network, but layer '" + e.getKey()
                            + "' is a PRILoRA layer (" + e.getValue().conf().getLayer().getClass().getSimpleName()
                            + "); pass the network the adapters were trained on, or PriLora.merge(...) of an adapted one");
                }
            }
            if (base instanceof ComputationGraph) {
                ComputationGraph g = (ComputationGraph) base;
                if (g.getConfiguration().getNetworkInputs().size() != 1 || g.getConfiguration().getNetworkOutputs().size() != 1) {
                    throw new IllegalArgumentException("base: expected a ComputationGraph with one input and one output, got inputs "
                            + g.getConfiguration().getNetworkInputs() + " and outputs " + g.getConfiguration().getNetworkOutputs());
                }
            }
            return new AdapterRegistry(this);
        }
    }

    /**
     * Registers a native adapter file ({@code PriLoraAdapters.save}) under {@code id}; it is read and checked against the
     * base now (every mismatch listed, e.g. base weights with another CRC32: an adapter trained on another base).
     *
     * @throws IllegalArgumentException for an invalid or already registered id, or an adapter larger than the budget
     * @throws org.prilora.AdapterFileException     for a missing, truncated or corrupted file
     * @throws org.prilora.AdapterMismatchException if the adapter does not fit the base
     */
    public void register(String id, Path adapterFile) throws IOException {
        add(new Registration(checkId(id), Objects.requireNonNull(adapterFile, "adapterFile"), false, null));
    }

    /**
     * Registers a PEFT LoRA directory ({@code adapter_config.json} + {@code adapter_model.safetensors}) under {@code id};
     * see {@link PriLoraAdapters#importPeft(MultiLayerNetwork, Path, Function)} for {@code nameMapping} (null: identity).
     *
     * @throws IllegalArgumentException for an invalid or already registered id, or an adapter larger than the budget
     * @throws org.prilora.AdapterFileException     for missing or malformed files
     * @throws org.prilora.AdapterMismatchException if the adapter does not fit the base
     */
    public void registerPeft(String id, Path peftDir, Function<String, String> nameMapping) throws IOException {
        add(new Registration(checkId(id), Objects.requireNonNull(peftDir, "peftDir"), true, nameMapping));
    }

    private String checkId(String id) {
        if (id == null || id.isBlank() || id.equals(BASE)) {
            throw new IllegalArgumentException("id: expected a non-blank adapter id other than \"" + BASE + "\" (the base model), got "
                    + (id == null ? "null" : "\"" + id + "\""));
        }
        return id;
    }

    private void add(Registration reg) throws IOException {
        requireAbsent(reg.id);
        LoadedAdapter a = load(reg);
        if (a.bytes > budget) {
            throw new IllegalArgumentException("adapter '" + reg.id + "' (" + reg.source + ") takes " + a.bytes
                    + " bytes, more than the whole memory budget of " + budget + " bytes");
        }
        synchronized (writeLock) {
            requireAbsent(reg.id);
            Map<String, Registration> next = new LinkedHashMap<>(snapshot);
            next.put(reg.id, reg);
            snapshot = Collections.unmodifiableMap(next);
        }
        keep(reg, a);
    }

    private void requireAbsent(String id) {
        if (snapshot.containsKey(id)) {
            throw new IllegalArgumentException("id: adapter '" + id + "' is already registered (from " + snapshot.get(id).source
                    + "); unregister it first");
        }
    }

    /**
     * Removes an adapter; requests that already resolved it still complete with it.
     *
     * @return whether {@code id} was registered
     */
    public boolean unregister(String id) {
        Registration removed;
        synchronized (writeLock) {
            if (!snapshot.containsKey(id)) {
                return false;
            }
            Map<String, Registration> next = new LinkedHashMap<>(snapshot);
            removed = next.remove(id);
            snapshot = Collections.unmodifiableMap(next);
        }
        synchronized (cacheLock) {
            LoadedAdapter a = resident.remove(removed);
            if (a != null) {
                residentBytes -= a.bytes;
            }
        }
        return true;
    }

    /** The registered ids, in registration order. */
    public List<String> ids() {
        return List.copyOf(snapshot.keySet());
    }

    /** Every registered adapter with its source, residency, bytes and load count, in registration order. */
    public List<AdapterInfo> adapters() {
        List<AdapterInfo> out = new ArrayList<>();
        synchronized (cacheLock) {
            for (Registration r : snapshot.values()) {
                out.add(new AdapterInfo(r.id, r.source, r.peft ? "peft" : "prilora", resident.containsKey(r), r.bytes, r.loads));
            }
        }
        return out;
    }

    /** Bytes of the resident adapters' tensors together. */
    public long residentAdapterBytes() {
        synchronized (cacheLock) {
            return residentBytes;
        }
    }

    /** Bytes of the base network's parameters (the registry's copy). */
    public long baseBytes() {
        return base.params().length() * base.params().dataType().width();
    }

    /** The memory budget for resident adapters, in bytes. */
    public long memoryBudgetBytes() {
        return budget;
    }

    /** The output of adapter {@code adapterId} ({@link #BASE} for the base model) for every example of {@code features}. */
    public INDArray predict(String adapterId, INDArray features) {
        return predict(adapterId, features, null);
    }

    /** As {@link #predict(String, INDArray)}, with a features mask (e.g. {@code [mb, T]} for token sequences). */
    public INDArray predict(String adapterId, INDArray features, INDArray featuresMask) {
        Objects.requireNonNull(features, "features");
        return predict(Collections.nCopies((int) features.size(0), adapterId), features, featuresMask);
    }

    /**
     * A mixed batch: example {@code i} of {@code features} (dimension 0) uses adapter {@code rowAdapters.get(i)}
     * ({@link #BASE} or null: the base model). The output has the examples in the request's order.
     *
     * @throws UnknownAdapterException  if an id is not registered
     * @throws IllegalArgumentException for a malformed request: one id per example expected, a feature width or mask
     *                                  shape the base does not take
     */
    public INDArray predict(List<String> rowAdapters, INDArray features, INDArray featuresMask) {
        Objects.requireNonNull(rowAdapters, "rowAdapters");
        checkRequest(rowAdapters, features, featuresMask);
        Map<String, Registration> snap = snapshot;
        List<String> ids = new ArrayList<>(rowAdapters.size());
        Map<String, LoadedAdapter> weights = new HashMap<>();
        for (int i = 0; i < rowAdapters.size(); i++) {
            String id = rowAdapters.get(i) == null ? BASE : rowAdapters.get(i);
            ids.add(id);
            if (id.equals(BASE) || weights.containsKey(id)) {
                continue;
            }
            Registration reg = snap.get(id);
            if (reg == null) {
                throw new UnknownAdapterException(id, "adapter '" + id + "' (row " + i + ") is not registered; registered: "
                        + snap.keySet() + ", or \"" + BASE + "\" for the base model");
            }
            weights.put(id, acquire(reg));
        }
        RowGroups groups = RowGroups.of(ids, weights);
        INDArray x = groups.permute(features.castTo(dataType));
        INDArray m = featuresMask == null ? null : groups.permute(featuresMask.castTo(dataType));
        INDArray y;
        passLock.lock();
        try {
            y = forward.run(x, m, groups);
        } finally {
            passLock.unlock();
        }
        return groups.restore(y);
    }

    private void checkRequest(List<String> rowAdapters, INDArray features, INDArray mask) {
        Objects.requireNonNull(features, "features");
        if (features.rank() < 2) {
            throw new IllegalArgumentException("features: expected [examples, ...] of rank >= 2, got shape " + Arrays.toString(features.shape()));
        }
        long mb = features.size(0);
        if (rowAdapters.size() != mb) {
            throw new IllegalArgumentException("rowAdapters: " + rowAdapters.size() + " adapter ids for a batch of " + mb
                    + " examples (features " + Arrays.toString(features.shape()) + "); expected one id per example");
        }
        Map.Entry<String, Layer> first = forward.baseLayers().entrySet().iterator().next();
        org.deeplearning4j.nn.conf.layers.Layer conf = first.getValue().conf().getLayer();
        if (features.rank() == 2 && conf instanceof FeedForwardLayer && ((FeedForwardLayer) conf).getNIn() > 0
                && features.size(1) != ((FeedForwardLayer) conf).getNIn()) {
            throw new IllegalArgumentException("features: width " + features.size(1) + " (shape " + Arrays.toString(features.shape())
                    + "), the base network's first layer '" + first.getKey() + "' expects " + ((FeedForwardLayer) conf).getNIn());
        }
        if (mask != null) {
            long t = features.size(features.rank() - 1);
            boolean ok = mask.rank() == 2 && mask.size(0) == mb && (features.rank() == 2 || mask.size(1) == t);
            if (!ok) {
                throw new IllegalArgumentException("featuresMask: shape " + Arrays.toString(mask.shape()) + ", expected [examples, T] = ["
                        + mb + ", " + (features.rank() == 2 ? "T" : String.valueOf(t)) + "] for features " + Arrays.toString(features.shape()));
            }
        }
    }

    /** The resident weights of {@code reg}, reloading them from the source after an eviction. */
    private LoadedAdapter acquire(Registration reg) {
        synchronized (cacheLock) {
            LoadedAdapter a = resident.get(reg);
            if (a != null) {
                return a;
            }
        }
        synchronized (reg) {
            synchronized (cacheLock) {
                LoadedAdapter a = resident.get(reg);
                if (a != null) {
                    return a;
                }
            }
            try {
                LoadedAdapter a = load(reg);
                keep(reg, a);
                return a;
            } catch (IOException e) {
                throw new UncheckedIOException("adapter '" + reg.id + "': reloading " + reg.source + " failed: " + e.getMessage(), e);
            }
        }
    }

    /** Makes {@code a} resident (if {@code reg} is still registered), then evicts least recently used adapters over budget. */
    private void keep(Registration reg, LoadedAdapter a) {
        synchronized (cacheLock) {
            if (snapshot.get(reg.id) != reg || resident.containsKey(reg)) {
                return;
            }
            resident.put(reg, a);
            residentBytes += a.bytes;
            var it = resident.entrySet().iterator();
            while (residentBytes > budget && it.hasNext()) {
                Map.Entry<Registration, LoadedAdapter> eldest = it.next();
                if (eldest.getKey() == reg) {
                    continue;
                }
                residentBytes -= eldest.getValue().bytes;
                it.remove();
            }
        }
    }

    /** Reads and checks {@code reg}'s source into a copy of the base and extracts its tensors. */
    private LoadedAdapter load(Registration reg) throws IOException {
        Model adapted;
        if (base instanceof MultiLayerNetwork) {
            MultiLayerNetwork b = (MultiLayerNetwork) base;
            adapted = reg.peft ? PriLoraAdapters.importPeft(b, reg.source, reg.nameMapping) : PriLoraAdapters.load(b, reg.source);
        } else {
            ComputationGraph b = (ComputationGraph) base;
            adapted = reg.peft ? PriLoraAdapters.importPeft(b, reg.source, reg.nameMapping) : PriLoraAdapters.load(b, reg.source);
        }
        LoadedAdapter a = LoadedAdapter.from(adapted, forward.baseLayers(), dataType);
        synchronized (cacheLock) {
            reg.loads++;
            reg.bytes = a.bytes;
        }
        return a;
    }
}
