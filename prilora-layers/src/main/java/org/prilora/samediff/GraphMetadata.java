package org.prilora.samediff;

import org.nd4j.autodiff.samediff.SameDiff;
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
    /** 2: modules written as GraphModule records (1, before 0.1.0, had its own field names). */
    static final int VERSION = 2;

    // Non-ASCII names are escaped: ND4J's UTF-8 arrays did not round-trip non-ASCII text in a check here.
    private static final ObjectMapper MAPPER = new ObjectMapper()
            .configure(JsonGenerator.Feature.ESCAPE_NON_ASCII, true)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private GraphMetadata() {
    }

    /** JSON root; the modules are the {@link GraphModule} records themselves. */
    public static final class Root {
        public int version = VERSION;
        public String config;
        public int numBlocks;
        public List<String> frozenVariables = new ArrayList<>();
        public List<GraphModule> modules = new ArrayList<>();
    }

    static boolean isPresent(SameDiff sd) {
        return sd.hasVariable(VARIABLE);
    }

    static void write(SameDiff sd, InjectionReport r) {
        Root root = new Root();
        root.config = r.config().toJson();
        root.numBlocks = r.numBlocks();
        root.frozenVariables = new ArrayList<>(r.frozenVariables());
        root.modules = new ArrayList<>(r.modules());
        String json;
        try {
            json = MAPPER.writeValueAsString(root);
        } catch (IOException e) {
            throw new IllegalStateException("could not write the PRILoRA module description: " + e.getMessage(), e);
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
            throw new IllegalStateException("variable '" + VARIABLE + "' should hold the PRILoRA module description as a"
                    + " UTF-8 string, got " + (arr == null ? "no array" : arr.dataType()));
        }
        Root root;
        try {
            root = MAPPER.readValue(arr.getString(0), Root.class);
        } catch (IOException e) {
            throw new IllegalStateException("variable '" + VARIABLE + "' does not hold a readable PRILoRA module description: "
                    + e.getMessage(), e);
        }
        if (root.version != VERSION) {
            throw new IllegalStateException("PRILoRA module description version " + root.version + " is not supported (expected "
                    + VERSION + ")");
        }
        return new InjectionReport(PriLoraConfig.fromJson(root.config), root.modules, root.frozenVariables, root.numBlocks);
    }

    /** Removes the description from {@code sd}. */
    static void remove(SameDiff sd) {
        if (isPresent(sd)) {
            GraphMerge.removeVariable(sd, VARIABLE);
        }
    }
}
