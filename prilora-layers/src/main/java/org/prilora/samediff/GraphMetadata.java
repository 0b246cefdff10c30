package org.prilora.samediff;

import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.shade.jackson.core.JsonGenerator;
import org.nd4j.shade.jackson.databind.DeserializationFeature;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.prilora.config.PriLoraConfig;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The description of an injection, kept inside the graph as one UTF-8 string CONSTANT holding JSON, so that
 * {@code sd.save}/{@code SameDiff.load} carry it with the arrays: the listener and merge read it back from a
 * loaded graph. (SameDiff has no other place for user metadata; string constants survive its FlatBuffers format.)
 */
final class GraphMetadata {

    /** Name of the string constant. */
    static final String VARIABLE = "prilora/samediff_sites";
    static final int VERSION = 1;

    // Non-ASCII names are escaped: ND4J's UTF-8 arrays did not round-trip non-ASCII text in a check here.
    private static final ObjectMapper MAPPER = new ObjectMapper()
            .configure(JsonGenerator.Feature.ESCAPE_NON_ASCII, true)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private GraphMetadata() {
    }

    /** JSON root. */
    public static final class Root {
        public int version = VERSION;
        public String config;
        public int numBlocks;
        public List<String> frozenVariables = new ArrayList<>();
        public List<Site> sites = new ArrayList<>();
    }

    /** JSON of one site. */
    public static final class Site {
        public String weight;
        public String bias;
        public String input;
        public String output;
        public String opKind;
        public boolean weightTransposed;
        public long nIn;
        public long nOut;
        public int block;
        public int rank;
        public double scale;
        public String a;
        public String b;
        public String state;
        public String mask;
        public String weightType;
        public String biasType;
        public List<String> addedOps = new ArrayList<>();
        public List<String> addedVariables = new ArrayList<>();
    }

    static boolean isPresent(SameDiff sd) {
        return sd.hasVariable(VARIABLE);
    }

    static void write(SameDiff sd, InjectionReport r) {
        Root root = new Root();
        root.config = r.config().toJson();
        root.numBlocks = r.numBlocks();
        root.frozenVariables = new ArrayList<>(r.frozenVariables());
        for (GraphModule s : r.modules()) {
            Site j = new Site();
            j.weight = s.weightName();
            j.bias = s.biasName();
            j.input = s.inputName();
            j.output = s.outputName();
            j.opKind = s.opKind().name();
            j.weightTransposed = s.weightTransposed();
            j.nIn = s.nIn();
            j.nOut = s.nOut();
            j.block = s.block();
            j.rank = s.rank();
            j.scale = s.scale();
            j.a = s.aName();
            j.b = s.bName();
            j.state = s.stateName();
            j.mask = s.maskName();
            j.weightType = s.originalWeightType().name();
            j.biasType = s.originalBiasType() == null ? null : s.originalBiasType().name();
            j.addedOps = new ArrayList<>(s.addedOps());
            j.addedVariables = new ArrayList<>(s.addedVariables());
            root.sites.add(j);
        }
        String json;
        try {
            json = MAPPER.writeValueAsString(root);
        } catch (IOException e) {
            throw new IllegalStateException("could not write the PRILoRA site description: " + e.getMessage(), e);
        }
        sd.constant(VARIABLE, Nd4j.create(json));
    }

    /** The report stored in {@code sd}, or null when the graph holds no PRILoRA adapters. */
    static InjectionReport read(SameDiff sd) {
        if (!isPresent(sd)) {
            return null;
        }
        INDArray arr = sd.getArrForVarName(VARIABLE);
        if (arr == null || arr.dataType() != DataType.UTF8) {
            throw new IllegalStateException("variable '" + VARIABLE + "' should hold the PRILoRA site description as a"
                    + " UTF-8 string, got " + (arr == null ? "no array" : arr.dataType()));
        }
        Root root;
        try {
            root = MAPPER.readValue(arr.getString(0), Root.class);
        } catch (IOException e) {
            throw new IllegalStateException("variable '" + VARIABLE + "' does not hold a readable PRILoRA site description: "
                    + e.getMessage(), e);
        }
        if (root.version != VERSION) {
            throw new IllegalStateException("PRILoRA site description version " + root.version + " is not supported (expected "
                    + VERSION + ")");
        }
        List<GraphModule> sites = new ArrayList<>();
        for (Site j : root.sites) {
            sites.add(new GraphModule(j.weight, j.bias, j.input, j.output, GraphModule.OpKind.valueOf(j.opKind),
                    j.weightTransposed, j.nIn, j.nOut, j.block, j.rank, j.scale, j.a, j.b, j.state, j.mask,
                    VariableType.valueOf(j.weightType), j.biasType == null ? null : VariableType.valueOf(j.biasType),
                    j.addedOps, j.addedVariables));
        }
        return new InjectionReport(PriLoraConfig.fromJson(root.config), sites, root.frozenVariables, root.numBlocks);
    }

    /** Removes the description from {@code sd}. */
    static void remove(SameDiff sd) {
        if (isPresent(sd)) {
            GraphMerge.removeVariable(sd, VARIABLE);
        }
    }
}
