package org.prilora.io;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Strict reader and writer for the <a href="https://github.com/huggingface/safetensors">safetensors</a>
 * format, mapping tensors to and from ND4J arrays.
 *
 * <h2>Format</h2>
 * An 8-byte little-endian unsigned header length {@code N}, {@code N} bytes of UTF-8 JSON (an
 * object mapping tensor name to {@code {"dtype", "shape", "data_offsets": [begin, end]}}, plus an
 * optional {@code "__metadata__"} object of string to string), then the data buffer: every
 * tensor little-endian and row-major, at offsets relative to the end of the header.
 *
 * <h2>Reading</h2>
 * Validation follows the reference (Rust) implementation: the header length must fit the file
 * and stay below {@link #MAX_HEADER_BYTES}; the header must be valid UTF-8 and a single JSON
 * object starting with <code>'&#123;'</code>, optionally followed by whitespace padding; names are
 * unique; each entry has a known dtype, a shape of non-negative integers and exactly two
 * offsets; sorted by offset, the tensors must be contiguous and non-overlapping, start at 0
 * and end exactly at the end of the file; each tensor's byte length is
 * {@code product(shape) * dtype size}. Like the reference, unknown extra fields inside a tensor
 * entry are ignored. Any layout satisfying these rules is accepted (header padding, order of
 * entries and alignment are not required). Every violation throws a
 * {@link SafeTensorsFormatException} ({@link SafeTensorsTruncatedException} when the data ends
 * early) naming the source, the tensor, what was found and what was expected.
 *
 * <p>Dtypes map to ND4J as F64&rarr;DOUBLE, F32&rarr;FLOAT, F16&rarr;HALF, BF16&rarr;BFLOAT16,
 * I64&rarr;LONG, I32&rarr;INT, I16&rarr;SHORT, I8&rarr;BYTE, U8&rarr;UBYTE, U16&rarr;UINT16,
 * U32&rarr;UINT32, U64&rarr;UINT64, BOOL&rarr;BOOL. The FP8/FP6/FP4 and C64 dtypes are
 * recognised (so {@link #readMetadata(Path)} works on such files) but cannot be loaded.
 * Shape {@code []} is a rank-0 scalar; shapes containing 0 give empty arrays. Arrays are created
 * outside any active workspace and are C-ordered.
 *
 * <h2>Writing</h2>
 * The output is byte-identical to the reference writer's for the same tensors and metadata
 * order: compact JSON with {@code "__metadata__"} first, header padded with spaces to a multiple
 * of 8, and tensors laid out by descending dtype rank (the reference's alignment order: 64-bit
 * types first) then by name in code-point order &mdash; so the map's iteration order does not
 * matter and every tensor starts at an offset aligned to its element size. Metadata entries are
 * written in the given map's iteration order. Arrays of any order, stride or offset are written
 * as their C-order contents. {@link #write(Path, Map, Map)} replaces the target atomically.
 *
 * <h2>Limits</h2>
 * A single tensor may hold at most {@link #MAX_TENSOR_BYTES} bytes (ND4J buffers are exchanged
 * through one {@link ByteBuffer}); files may be larger. Rank is limited to ND4J's 32.
 */
public final class SafeTensors {

    /** Largest header the reference implementation accepts; larger means a corrupt or foreign file. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    /** Header key of the optional string-to-string metadata; cannot be used as a tensor name. */
    public static final String METADATA_KEY = "__metadata__";

    /** Largest single tensor, in bytes, that can be read or written. */
    public static final long MAX_TENSOR_BYTES = Integer.MAX_VALUE;

    private SafeTensors() {
    }

    /**
     * Tensors and metadata of one safetensors file.
     *
     * @param tensors  tensors in file (offset) order; a new mutable {@link LinkedHashMap}
     * @param metadata the {@code "__metadata__"} entries in header order; unmodifiable, empty if absent
     */
    public record Contents(Map<String, INDArray> tensors, Map<String, String> metadata) {
        /**
         * Rejects nulls so callers never have to check.
         *
         * @param tensors  tensors in file order
         * @param metadata metadata, empty if none
         */
        public Contents {
            Objects.requireNonNull(tensors, "tensors");
            Objects.requireNonNull(metadata, "metadata");
        }
    }

    // ------------------------------------------------------------------------------------ read

    /**
     * Reads all tensors of a file.
     *
     * @param file safetensors file
     * @return name to array in file (offset) order, as a new mutable {@link LinkedHashMap}
     * @throws SafeTensorsFormatException if the file violates the format or holds a dtype ND4J lacks
     * @throws IOException                if the file cannot be read
     */
    public static Map<String, INDArray> read(Path file) throws IOException {
        return readContents(file).tensors();
    }

    /**
     * Reads all tensors and the metadata of a file in one pass.
     *
     * @param file safetensors file
     * @return tensors and metadata
     * @throws SafeTensorsFormatException if the file violates the format or holds a dtype ND4J lacks
     * @throws IOException                if the file cannot be read
     */
    public static Contents readContents(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return SafeTensorsReader.read(ch, ch.size(), file.toString());
        }
    }

    /**
     * Reads all tensors from a stream holding exactly one safetensors file (for example a ZIP
     * entry). The stream is read to its end, so trailing garbage is detected, but not closed.
     *
     * @param in         stream positioned at the first byte of the file
     * @param sourceName name used in error messages, or {@code null}
     * @return name to array in file (offset) order, as a new mutable {@link LinkedHashMap}
     * @throws SafeTensorsFormatException if the data violates the format
     * @throws IOException                if the stream fails
     */
    public static Map<String, INDArray> read(InputStream in, String sourceName) throws IOException {
        return readContents(in, sourceName).tensors();
    }

    /**
     * Stream variant of {@link #readContents(Path)}; see {@link #read(InputStream, String)}.
     * A stream's length is unknown up front, so a corrupt header is only caught as truncated
     * after the tensor it claims has been allocated; for untrusted files prefer the
     * {@link Path} variant, which checks the file size before allocating anything.
     *
     * @param in         stream positioned at the first byte of the file; not closed
     * @param sourceName name used in error messages, or {@code null}
     * @return tensors and metadata
     * @throws SafeTensorsFormatException if the data violates the format
     * @throws IOException                if the stream fails
     */
    public static Contents readContents(InputStream in, String sourceName) throws IOException {
        Objects.requireNonNull(in, "in");
        return SafeTensorsReader.read(Channels.newChannel(in), -1, sourceName);
    }

    /**
     * Reads all tensors from an in-memory file, e.g. one produced by {@link #toBytes(Map, Map)}.
     *
     * @param bytes      the complete file
     * @param sourceName name used in error messages, or {@code null}
     * @return name to array in file (offset) order, as a new mutable {@link LinkedHashMap}
     * @throws SafeTensorsFormatException if the bytes violate the format
     */
    public static Map<String, INDArray> fromBytes(byte[] bytes, String sourceName) throws SafeTensorsFormatException {
        return readContents(bytes, sourceName).tensors();
    }

    /**
     * In-memory variant of {@link #readContents(Path)}.
     *
     * @param bytes      the complete file
     * @param sourceName name used in error messages, or {@code null}
     * @return tensors and metadata
     * @throws SafeTensorsFormatException if the bytes violate the format
     */
    public static Contents readContents(byte[] bytes, String sourceName) throws SafeTensorsFormatException {
        Objects.requireNonNull(bytes, "bytes");
        try {
            return SafeTensorsReader.read(Channels.newChannel(new ByteArrayInputStream(bytes)), bytes.length, sourceName);
        } catch (SafeTensorsFormatException e) {
            throw e;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot happen: in-memory read failed", e);
        }
    }

    /**
     * Reads only the {@code "__metadata__"} of a file. The whole header is still validated
     * against the file size, so a truncated or corrupt file is reported here too; tensor data is
     * not read, and dtypes without an ND4J equivalent are accepted.
     *
     * @param file safetensors file
     * @return metadata in header order, unmodifiable; empty if the file has none
     * @throws SafeTensorsFormatException if the file violates the format
     * @throws IOException                if the file cannot be read
     */
    public static Map<String, String> readMetadata(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return SafeTensorsHeader.read(ch, ch.size(), file.toString()).metadata();
        }
    }

    // ----------------------------------------------------------------------------------- write

    /**
     * Writes tensors to a file atomically: the bytes go to a temporary file in the same
     * directory, which is fsynced and then renamed over {@code file} with
     * {@link StandardCopyOption#ATOMIC_MOVE}. Readers therefore see either the old file or the
     * complete new one; on any failure the old file is untouched and the temporary file is
     * deleted. An existing file's POSIX permissions are carried over.
     *
     * <p>Tensors are laid out in the reference writer's order (see the class description), not
     * the map's order.
     *
     * @param file     target file; its directory must exist
     * @param tensors  name to array; names must not be {@code null} or {@value #METADATA_KEY}
     * @param metadata string-to-string metadata written in iteration order, or {@code null} for none
     * @throws IllegalArgumentException if a name, array or metadata entry cannot be stored
     * @throws IOException              if writing fails (the previous file is then left intact)
     */
    public static void write(Path file, Map<String, INDArray> tensors, Map<String, String> metadata)
            throws IOException {
        // validate everything before touching the disk
        SafeTensorsWriter.Prepared prepared = SafeTensorsWriter.prepare(tensors, metadata);
        AtomicFiles.writeChannel(file, ch -> SafeTensorsWriter.writeTo(ch, prepared));
    }

    /**
     * Writes tensors to a stream, e.g. a ZIP entry. Not atomic; the stream is not closed.
     *
     * @param out      destination
     * @param tensors  name to array, see {@link #write(Path, Map, Map)}
     * @param metadata metadata or {@code null}
     * @throws IllegalArgumentException if a name, array or metadata entry cannot be stored
     * @throws IOException              if the stream fails
     */
    public static void write(OutputStream out, Map<String, INDArray> tensors, Map<String, String> metadata)
            throws IOException {
        Objects.requireNonNull(out, "out");
        SafeTensorsWriter.Prepared prepared = SafeTensorsWriter.prepare(tensors, metadata);
        SafeTensorsWriter.writeTo(Channels.newChannel(out), prepared);
    }

    /**
     * Serialises tensors to a byte array holding a complete file.
     *
     * @param tensors  name to array, see {@link #write(Path, Map, Map)}
     * @param metadata metadata or {@code null}
     * @return the file's bytes
     * @throws IllegalArgumentException if an entry cannot be stored or the result exceeds 2 GiB
     */
    public static byte[] toBytes(Map<String, INDArray> tensors, Map<String, String> metadata) {
        return SafeTensorsWriter.toBytes(tensors, metadata);
    }
}
