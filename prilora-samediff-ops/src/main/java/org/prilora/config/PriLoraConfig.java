package org.prilora.config;

import org.nd4j.shade.jackson.annotation.JsonInclude;
import org.nd4j.shade.jackson.databind.DeserializationFeature;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.nd4j.shade.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Everything that defines a PRILoRA adaptation of a model, in PEFT's terms ({@code LoraConfig}): which modules to
 * adapt ({@code targetTypes} and/or the {@code targetModules} regex on layer names), the ranks by depth
 * ({@link RankSchedule}), the per-module {@link AdapterSettings} (alpha, scaling, pruning mode, A init, dropout),
 * the pruning schedule, which other modules stay trainable ({@code modulesToSave}) and the seed of A's
 * initialisation. Immutable; build with {@link #builder()}, which validates every field (its adapter knobs are
 * flat, as in PEFT, and fill one {@link AdapterSettings}). Round-trips through JSON ({@link #toJson()},
 * {@link #fromJson}).
 *
 * @param rankSchedule  ranks by depth
 * @param adapter       what every adapted module gets (alpha, scaling, pruning mode, A init, dropout)
 * @param targetTypes   simple class names of the layer types to adapt; empty means every type that can be adapted
 * @param targetModules regex that layer (vertex) names must fully match, or null for any name
 * @param modulesToSave layers (by name) that stay fully trainable, e.g. the classifier head
 * @param pruning       when and how much of A is pruned
 * @param seed          seed of A's initialisation
 */
public record PriLoraConfig(RankSchedule rankSchedule, AdapterSettings adapter, Set<String> targetTypes, String targetModules,
                            List<String> modulesToSave, PruningSchedule pruning, long seed) implements Serializable {

    public PriLoraConfig {
        if (rankSchedule == null) {
            throw new IllegalArgumentException("rankSchedule: expected a RankSchedule, got null");
        }
        if (adapter == null) {
            throw new IllegalArgumentException("adapter: expected AdapterSettings, got null");
        }
        if (targetModules != null) {
            try {
                Pattern.compile(targetModules);
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException("targetModules: expected a valid regular expression, got '" + targetModules
                        + "': " + e.getDescription());
            }
        }
        for (String m : modulesToSave) {
            if (m == null || m.isBlank()) {
                throw new IllegalArgumentException("modulesToSave: expected layer names, got a blank entry in " + modulesToSave);
            }
        }
        if (pruning == null) {
            throw new IllegalArgumentException("pruning: expected a PruningSchedule (PruningSchedule.none() for plain LoRA), got null");
        }
        targetTypes = Collections.unmodifiableSet(new LinkedHashSet<>(targetTypes));
        modulesToSave = Collections.unmodifiableList(new ArrayList<>(modulesToSave));
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        return new Builder().rankSchedule(rankSchedule).adapter(adapter).targetTypes(targetTypes)
                .targetModules(targetModules).modulesToSave(modulesToSave).pruning(pruning).seed(seed);
    }

    /**
     * Whether a layer is a target: its type's simple class name is in {@code targetTypes} (when that set is
     * not empty) and its name fully matches {@code targetModules} (when given).
     */
    public boolean isTarget(String layerName, String layerTypeSimpleName) {
        boolean typeOk = targetTypes.isEmpty() || targetTypes.contains(layerTypeSimpleName);
        boolean nameOk = targetModules == null || (layerName != null && Pattern.compile(targetModules).matcher(layerName).matches());
        return typeOk && nameOk;
    }

    // ---------------------------------------------------------------- JSON

    private static final ObjectMapper MAPPER = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .setSerializationInclusion(JsonInclude.Include.NON_NULL);

    /** Plain JSON view of the configuration (field names follow PEFT where a counterpart exists). */
    public static final class Json {
        public String peftType = "PRILORA";
        public String rankSchedule;
        public double loraAlpha;
        public boolean useRslora;
        public List<String> targetTypes;
        public String targetModules;
        public List<String> modulesToSave;
        public double pruningFraction;
        public int pruningInterval;
        public long pruningStartStep;
        public long pruningEndStep;
        public double emaBeta;
        public String pruningMode;
        public String initLoraWeights;
        public long seed;
        public double loraDropout;
    }

    public String toJson() {
        Json j = new Json();
        j.rankSchedule = rankSchedule.toString();
        j.loraAlpha = adapter.alpha();
        j.useRslora = adapter.scalingMode() == ScalingMode.ALPHA_OVER_SQRT_R;
        j.targetTypes = new ArrayList<>(targetTypes);
        j.targetModules = targetModules;
        j.modulesToSave = new ArrayList<>(modulesToSave);
        j.pruningFraction = pruning.fraction();
        j.pruningInterval = pruning.interval();
        j.pruningStartStep = pruning.startStep();
        j.pruningEndStep = pruning.endStep();
        j.emaBeta = pruning.emaBeta();
        j.pruningMode = adapter.pruningMode().name();
        j.initLoraWeights = adapter.init().name();
        j.seed = seed;
        j.loraDropout = adapter.loraDropout();
        try {
            return MAPPER.writeValueAsString(j);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Parses {@link #toJson()} output; every field is validated as by the builder. */
    public static PriLoraConfig fromJson(String json) {
        Json j;
        try {
            j = MAPPER.readValue(json, Json.class);
        } catch (IOException e) {
            throw new IllegalArgumentException("json: expected a PRILoRA configuration object, could not parse it: " + e.getMessage(), e);
        }
        if (j == null || j.rankSchedule == null) {
            throw new IllegalArgumentException("json: expected a PRILoRA configuration with a rankSchedule, got " + json);
        }
        PruningMode mode;
        AdapterInit in;
        try {
            mode = j.pruningMode == null ? AdapterSettings.defaults().pruningMode() : PruningMode.valueOf(j.pruningMode);
            in = j.initLoraWeights == null ? AdapterSettings.defaults().init() : AdapterInit.valueOf(j.initLoraWeights);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("json: unknown pruningMode '" + j.pruningMode + "' or initLoraWeights '" + j.initLoraWeights + "'");
        }
        return builder()
                .rankSchedule(RankSchedule.parse(j.rankSchedule))
                .alpha(j.loraAlpha)
                .scalingMode(j.useRslora ? ScalingMode.ALPHA_OVER_SQRT_R : ScalingMode.ALPHA_OVER_R)
                .targetTypes(j.targetTypes == null ? Set.of() : new LinkedHashSet<>(j.targetTypes))
                .targetModules(j.targetModules)
                .modulesToSave(j.modulesToSave == null ? List.of() : j.modulesToSave)
                .pruning(PruningSchedule.builder().fraction(j.pruningFraction).interval(j.pruningInterval)
                        .startStep(j.pruningStartStep).endStep(j.pruningEndStep).emaBeta(j.emaBeta).build())
                .pruningMode(mode)
                .init(in)
                .seed(j.seed)
                .loraDropout(j.loraDropout)
                .build();
    }

    @Override
    public String toString() {
        return "PriLoraConfig{ranks=" + rankSchedule + ", " + adapter + ", targetTypes=" + targetTypes
                + ", targetModules=" + targetModules + ", modulesToSave=" + modulesToSave + ", " + pruning
                + ", seed=" + seed + "}";
    }

    /** Builder for {@link PriLoraConfig}; {@link #build()} validates every field and names the bad one. */
    public static final class Builder {
        private RankSchedule rankSchedule = RankSchedule.linear(4, 12);
        private AdapterSettings.Builder adapter = AdapterSettings.builder();
        private Set<String> targetTypes = Set.of();
        private String targetModules;
        private List<String> modulesToSave = List.of();
        private PruningSchedule pruning = PruningSchedule.builder().build();
        private long seed = 42;

        /** Ranks by depth (default 4 → 12, the paper's DeBERTa setting). */
        public Builder rankSchedule(RankSchedule s) {
            this.rankSchedule = s;
            return this;
        }

        /** All adapter knobs at once (replaces what alpha, scalingMode, pruningMode, init and loraDropout set). */
        public Builder adapter(AdapterSettings s) {
            this.adapter = Objects.requireNonNull(s, "adapter").toBuilder();
            return this;
        }

        /** See {@link AdapterSettings.Builder#alpha}. */
        public Builder alpha(double alpha) {
            adapter.alpha(alpha);
            return this;
        }

        /** See {@link AdapterSettings.Builder#scalingMode}. */
        public Builder scalingMode(ScalingMode m) {
            adapter.scalingMode(m);
            return this;
        }

        /** See {@link AdapterSettings.Builder#pruningMode}. */
        public Builder pruningMode(PruningMode m) {
            adapter.pruningMode(m);
            return this;
        }

        /** Simple class names of target layer types, e.g. "DenseLayer"; empty (the default) means every type that can be adapted. */
        public Builder targetTypes(Set<String> types) {
            this.targetTypes = types == null ? Set.of() : types;
            return this;
        }

        public Builder targetTypes(String... types) {
            return targetTypes(new LinkedHashSet<>(List.of(types)));
        }

        /** Regex that a layer (vertex) name must fully match; null for any name. */
        public Builder targetModules(String regex) {
            this.targetModules = regex;
            return this;
        }

        /** Layers (by name) that stay fully trainable, e.g. the classifier head. */
        public Builder modulesToSave(List<String> names) {
            this.modulesToSave = names == null ? List.of() : names;
            return this;
        }

        public Builder modulesToSave(String... names) {
            return modulesToSave(List.of(names));
        }

        public Builder pruning(PruningSchedule p) {
            this.pruning = p;
            return this;
        }

        /** See {@link AdapterSettings.Builder#init}. */
        public Builder init(AdapterInit init) {
            adapter.init(init);
            return this;
        }

        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** See {@link AdapterSettings.Builder#loraDropout}. */
        public Builder loraDropout(double p) {
            adapter.loraDropout(p);
            return this;
        }

        public PriLoraConfig build() {
            return new PriLoraConfig(rankSchedule, adapter.build(), targetTypes, targetModules, modulesToSave, pruning, seed);
        }
    }
}
