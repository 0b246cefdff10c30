package org.prilora.io;

import java.io.IOException;

/**
 * A safetensors file (or stream) violates the format: bad header length, header that is not
 * a valid JSON object, unknown dtype, offsets that overlap, leave gaps or do not cover the
 * data buffer exactly, a byte length that does not match the shape, and so on.
 *
 * <p>The message always names the source (when known) and the tensor (when relevant), what
 * was found and what was expected; {@link #source()} and {@link #tensor()} expose the same
 * two facts for programs.
 */
public class SafeTensorsFormatException extends IOException {

    private static final long serialVersionUID = 1L;

    /** File or stream name, or {@code null}. */
    private final String source;
    /** Tensor concerned, or {@code null}. */
    private final String tensor;

    /**
     * @param source file or stream name, or {@code null} if unknown
     * @param tensor tensor the problem is about, or {@code null} if it concerns the whole file
     * @param detail what was found and what was expected
     */
    public SafeTensorsFormatException(String source, String tensor, String detail) {
        this(source, tensor, detail, null);
    }

    /**
     * @param source file or stream name, or {@code null} if unknown
     * @param tensor tensor the problem is about, or {@code null}
     * @param detail what was found and what was expected
     * @param cause  underlying parser error, or {@code null}
     */
    public SafeTensorsFormatException(String source, String tensor, String detail, Throwable cause) {
        super(compose(source, tensor, detail), cause);
        this.source = source;
        this.tensor = tensor;
    }

    /** @return the file or stream name given to the reader, or {@code null} */
    public String source() {
        return source;
    }

    /** @return the tensor the problem concerns, or {@code null} for file-level problems */
    public String tensor() {
        return tensor;
    }

    private static String compose(String source, String tensor, String detail) {
        StringBuilder sb = new StringBuilder();
        if (source != null) {
            sb.append(source).append(": ");
        }
        if (tensor != null) {
            sb.append("tensor '").append(tensor).append("': ");
        }
        return sb.append(detail).toString();
    }
}
