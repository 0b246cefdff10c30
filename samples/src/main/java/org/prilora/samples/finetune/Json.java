package org.prilora.samples.finetune;

import org.nd4j.shade.jackson.core.JsonProcessingException;
import org.nd4j.shade.jackson.databind.ObjectMapper;
import org.nd4j.shade.jackson.databind.SerializationFeature;
import org.prilora.io.AtomicFiles;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** JSON through ND4J's shaded Jackson, written atomically ({@link AtomicFiles}). */
public final class Json {

    static final ObjectMapper MAPPER = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private Json() {
    }

    /**
     * @param value maps, lists, strings, numbers, booleans, nulls
     * @return indented JSON text ending in a newline
     */
    public static String toJson(Object value) {
        try {
            return MAPPER.writeValueAsString(value) + "\n";
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * An ordered JSON object from alternating keys and values, e.g. {@code object("tp", 3, "fn", 1)}.
     *
     * @param keysAndValues key (a String), value (may be null), key, value, ...
     * @return a new, modifiable map in argument order
     * @throws IllegalArgumentException if the count is odd or a key is not a String
     */
    public static Map<String, Object> object(Object... keysAndValues) {
        if (keysAndValues.length % 2 != 0) {
            throw new IllegalArgumentException("expected key/value pairs, got " + keysAndValues.length + " arguments");
        }
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            if (!(keysAndValues[i] instanceof String key)) {
                throw new IllegalArgumentException("argument " + i + ": expected a String key, got " + keysAndValues[i]);
            }
            m.put(key, keysAndValues[i + 1]);
        }
        return m;
    }

    /**
     * Parses JSON into maps/lists/values (used to embed the PriLoraConfig's own JSON as an object).
     *
     * @param json the text
     * @return the parsed object
     */
    public static Object parse(String json) {
        try {
            return MAPPER.readValue(json, Object.class);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Parses a JSON object.
     *
     * @param file the file
     * @return the object as a map
     * @throws IOException if unreadable or not an object
     */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> readObject(Path file) throws IOException {
        Object o = MAPPER.readValue(Files.readString(file), Object.class);
        if (!(o instanceof Map)) {
            throw new IOException(file + ": expected a JSON object");
        }
        return (Map<String, Object>) o;
    }

    /**
     * Atomically writes {@code value} as JSON; the parent folder is created if needed.
     *
     * @param file  target file
     * @param value what to write
     * @throws IOException if writing fails (any previous file is left intact)
     */
    public static void write(Path file, Object value) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        AtomicFiles.write(file, toJson(value).getBytes(StandardCharsets.UTF_8));
    }
}
