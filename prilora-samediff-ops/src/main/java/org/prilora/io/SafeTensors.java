package org.prilora.io;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.concurrency.AffinityManager;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.shade.jackson.core.JsonEncoding;
import org.nd4j.shade.jackson.core.JsonFactory;
import org.nd4j.shade.jackson.core.JsonGenerator;
import org.nd4j.shade.jackson.core.JsonLocation;
import org.nd4j.shade.jackson.core.JsonParser;
import org.nd4j.shade.jackson.core.JsonProcessingException;
import org.nd4j.shade.jackson.core.JsonToken;
import org.nd4j.shade.jackson.databind.ObjectMapper;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Collectors;

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

    private static final int MAX_ND4J_RANK = 32;
    private static final int PREFIX_BYTES = 8;
    private static final int HEADER_ALIGNMENT = 8;

    // The streaming API is used rather than a tree so that nesting can never go deeper than
    // the format allows (no stack exhaustion on hostile headers) and errors can name the field.
    private static final JsonFactory JSON = new ObjectMapper().getFactory();

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
            return readChannel(ch, ch.size(), file.toString());
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
        return readChannel(Channels.newChannel(in), -1, sourceName);
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
            return readChannel(Channels.newChannel(new ByteArrayInputStream(bytes)), bytes.length, sourceName);
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
            return readHeader(ch, ch.size(), file.toString()).metadata();
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
        Prepared prepared = prepare(tensors, metadata); // validate everything before touching the disk
        AtomicFiles.writeChannel(file, ch -> writeTo(ch, prepared));
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
        Prepared prepared = prepare(tensors, metadata);
        writeTo(Channels.newChannel(out), prepared);
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
        Prepared prepared = prepare(tensors, metadata);
        long total = PREFIX_BYTES + prepared.header().length + prepared.dataLength();
        if (total > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("serialised size " + total + " bytes does not fit in a byte[]; use write(Path, ...)");
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream((int) total);
        try {
            writeTo(Channels.newChannel(out), prepared);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot happen: in-memory write failed", e);
        }
        return out.toByteArray();
    }

    // ------------------------------------------------------------------------------ dtype table

    /**
     * The reference implementation's dtypes, declared in its enum order: the writer lays
     * tensors out by descending ordinal, which is what keeps every tensor aligned.
     */
    enum Dtype {
        BOOL(8, DataType.BOOL), F4(4, null), F6_E2M3(6, null), F6_E3M2(6, null),
        U8(8, DataType.UBYTE), I8(8, DataType.BYTE),
        F8_E5M2(8, null), F8_E4M3(8, null), F8_E8M0(8, null), F8_E4M3FNUZ(8, null), F8_E5M2FNUZ(8, null),
        I16(16, DataType.SHORT), U16(16, DataType.UINT16), F16(16, DataType.HALF), BF16(16, DataType.BFLOAT16),
        I32(32, DataType.INT), U32(32, DataType.UINT32), F32(32, DataType.FLOAT), C64(64, null),
        F64(64, DataType.DOUBLE), I64(64, DataType.LONG), U64(64, DataType.UINT64);

        final int bits;
        /** {@code null} where ND4J has no such type. */
        final DataType nd4j;

        Dtype(int bits, DataType nd4j) {
            this.bits = bits;
            this.nd4j = nd4j;
        }

        static Dtype parse(String name) {
            for (Dtype d : values()) {
                if (d.name().equals(name)) {
                    return d;
                }
            }
            return null;
        }

        /** Maps ND4J types (FLOAT16, INT32, ... are aliases of these constants), or returns {@code null}. */
        static Dtype of(DataType t) {
            switch (t) {
                case DOUBLE: return F64;
                case FLOAT: return F32;
                case HALF: return F16;
                case BFLOAT16: return BF16;
                case LONG: return I64;
                case INT: return I32;
                case SHORT: return I16;
                case BYTE: return I8;
                case UBYTE: return U8;
                case UINT16: return U16;
                case UINT32: return U32;
                case UINT64: return U64;
                case BOOL: return BOOL;
                default: return null;
            }
        }

        static String supported() {
            return Arrays.stream(values()).filter(d -> d.nd4j != null).map(Enum::name).collect(Collectors.joining(", "));
        }
    }

    // ---------------------------------------------------------------------------- reading core

    /** One validated header entry. */
    record Entry(String name, Dtype dtype, long[] shape, long begin, long end) {
        long nbytes() {
            return end - begin;
        }

        String offsets() {
            return "[" + begin + ", " + end + "]";
        }
    }

    /** A validated header: entries sorted by offset, data length = end of the last tensor. */
    record Header(long headerBytes, List<Entry> entries, Map<String, String> metadata, long dataLength) {
    }

    private static Contents readChannel(ReadableByteChannel ch, long size, String source) throws IOException {
        Header h = readHeader(ch, size, source);
        for (Entry e : h.entries()) { // refuse before allocating anything
            if (e.dtype().nd4j == null) {
                throw new SafeTensorsFormatException(source, e.name(), "dtype " + e.dtype()
                        + " is a valid safetensors dtype but ND4J has no equivalent; loadable dtypes: " + Dtype.supported());
            }
            if (e.shape().length > MAX_ND4J_RANK) {
                throw new SafeTensorsFormatException(source, e.name(), "rank " + e.shape().length
                        + " exceeds ND4J's maximum rank " + MAX_ND4J_RANK);
            }
            if (e.nbytes() > MAX_TENSOR_BYTES) {
                throw new SafeTensorsFormatException(source, e.name(), "tensor holds " + e.nbytes()
                        + " bytes; this reader supports at most " + MAX_TENSOR_BYTES + " bytes per tensor");
            }
        }
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            for (Entry e : h.entries()) {
                tensors.put(e.name(), readTensor(ch, e, source));
            }
        }
        if (size < 0 && readFully(ch, ByteBuffer.allocate(1)) > 0) {
            throw new SafeTensorsFormatException(source, null, "unexpected bytes after the last tensor: the header's"
                    + " data_offsets cover " + h.dataLength() + " data bytes but the stream continues");
        }
        return new Contents(tensors, h.metadata());
    }

    /** Reads and validates prefix and header; with a known size also checks the data length. */
    private static Header readHeader(ReadableByteChannel ch, long size, String source) throws IOException {
        String layout = "a safetensors file starts with an 8-byte little-endian header length";
        if (size >= 0 && size < PREFIX_BYTES) {
            throw new SafeTensorsTruncatedException(source, null, "file is truncated: it has " + size + " bytes but " + layout);
        }
        ByteBuffer prefix = ByteBuffer.allocate(PREFIX_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        int got = readFully(ch, prefix);
        if (got < PREFIX_BYTES) {
            throw new SafeTensorsTruncatedException(source, null, "file is truncated: stream ended after " + got + " bytes but " + layout);
        }
        long n = prefix.getLong(0);
        if (Long.compareUnsigned(n, MAX_HEADER_BYTES) > 0) {
            throw new SafeTensorsFormatException(source, null, "header length " + Long.toUnsignedString(n)
                    + " (little-endian u64 in bytes 0-7) exceeds the limit of " + MAX_HEADER_BYTES
                    + " bytes; not a safetensors file, or corrupt");
        }
        if (size >= 0 && n > size - PREFIX_BYTES) {
            throw new SafeTensorsTruncatedException(source, null, "file is truncated or corrupt: header length is " + n
                    + " bytes but only " + (size - PREFIX_BYTES) + " bytes follow the 8-byte length prefix (file size " + size + ")");
        }
        byte[] header = readHeaderBytes(ch, (int) n, source);
        Header h = parseHeader(header, source);
        if (size >= 0) {
            checkDataLength(h, size, source);
        }
        return h;
    }

    /**
     * Reads the header in growing chunks, so that a stream whose prefix claims a huge header
     * but which ends early costs memory in proportion to what it actually holds.
     */
    private static byte[] readHeaderBytes(ReadableByteChannel ch, int n, String source) throws IOException {
        byte[] buf = new byte[Math.min(n, 1 << 16)];
        int got = 0;
        while (got < n) {
            if (got == buf.length) {
                buf = Arrays.copyOf(buf, (int) Math.min(n, 2L * buf.length));
            }
            int r = readFully(ch, ByteBuffer.wrap(buf, got, buf.length - got));
            got += r;
            if (got < buf.length) {
                throw new SafeTensorsTruncatedException(source, null, "file is truncated: stream ended inside the header after "
                        + got + " of " + n + " header bytes");
            }
        }
        return buf;
    }

    private static void checkDataLength(Header h, long size, String source) throws SafeTensorsFormatException {
        long available = size - PREFIX_BYTES - h.headerBytes();
        long expectedSize = PREFIX_BYTES + h.headerBytes() + h.dataLength();
        if (available < h.dataLength()) {
            Entry cut = h.entries().stream().filter(e -> e.end() > available).findFirst().orElseThrow();
            throw new SafeTensorsTruncatedException(source, cut.name(), "file is truncated: data_offsets " + cut.offsets()
                    + " reach past the " + available + " data bytes present; the header needs " + h.dataLength()
                    + " data bytes (expected file size " + expectedSize + ", found " + size + ")");
        }
        if (available > h.dataLength()) {
            throw new SafeTensorsFormatException(source, null, (available - h.dataLength())
                    + " unexpected bytes after the last tensor: the header's data_offsets cover " + h.dataLength()
                    + " data bytes but " + available + " follow the header (expected file size " + expectedSize
                    + ", found " + size + ")");
        }
    }

    private static INDArray readTensor(ReadableByteChannel ch, Entry e, String source) throws IOException {
        if (e.nbytes() == 0) {
            return Nd4j.create(e.dtype().nd4j, e.shape(), 'c');
        }
        INDArray arr = Nd4j.createUninitialized(e.dtype().nd4j, e.shape(), 'c');
        ByteBuffer dst = arr.data().asNio();
        if (dst.capacity() < e.nbytes()) {
            throw new IllegalStateException("ND4J buffer of " + dst.capacity() + " bytes for " + e.nbytes() + " bytes of data");
        }
        dst.clear().limit((int) e.nbytes());
        int got = readFully(ch, dst);
        if (got < e.nbytes()) {
            throw new SafeTensorsTruncatedException(source, e.name(), "file is truncated: data ended after " + got + " of "
                    + e.nbytes() + " bytes of this tensor (data_offsets " + e.offsets() + ")");
        }
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            reverseElementBytes(dst, 0, (int) e.nbytes(), e.dtype().bits / 8);
        }
        // On device backends the host copy was written directly; tell ND4J which copy is current.
        Nd4j.getAffinityManager().tagLocation(arr, AffinityManager.Location.HOST);
        return arr;
    }

    /** Fills {@code dst} as far as the channel allows; returns the number of bytes read. */
    private static int readFully(ReadableByteChannel ch, ByteBuffer dst) throws IOException {
        int total = 0;
        while (dst.hasRemaining()) {
            int r = ch.read(dst);
            if (r < 0) {
                break;
            }
            total += r;
        }
        return total;
    }

    // ------------------------------------------------------------------------ header parsing

    /** Parses and validates a header (without the 8-byte prefix). Package-private for tests. */
    static Header parseHeader(byte[] bytes, String source) throws SafeTensorsFormatException {
        String text = decodeUtf8(bytes, source);
        if (text.isEmpty() || text.charAt(0) != '{') {
            throw new SafeTensorsFormatException(source, null, "header must be a JSON object starting with '{' but "
                    + (text.isEmpty() ? "it is empty" : "starts with " + quoteStart(text)));
        }
        List<Entry> entries = new ArrayList<>();
        Map<String, String> metadata = null;
        Set<String> seen = new HashSet<>();
        try (JsonParser p = JSON.createParser(text)) {
            p.nextToken(); // START_OBJECT, guaranteed by the '{' check
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String key = p.getCurrentName();
                if (!seen.add(key)) {
                    throw new SafeTensorsFormatException(source, METADATA_KEY.equals(key) ? null : key,
                            "duplicate key \"" + key + "\" in the header at " + where(p.getCurrentLocation())
                                    + "; every key must be unique");
                }
                p.nextToken();
                if (METADATA_KEY.equals(key)) {
                    metadata = parseMetadata(p, source);
                } else {
                    entries.add(parseEntry(p, key, source));
                }
            }
            JsonToken after = p.nextToken();
            if (after != null) {
                throw new SafeTensorsFormatException(source, null, "unexpected " + after + " after the header's JSON object at "
                        + where(p.getTokenLocation()) + "; only whitespace padding may follow it");
            }
        } catch (SafeTensorsFormatException e) {
            throw e;
        } catch (JsonProcessingException e) {
            throw new SafeTensorsFormatException(source, null, "header is not valid JSON: " + e.getOriginalMessage()
                    + " at " + where(e.getLocation()), e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot happen: reading JSON from a String failed", e);
        }
        long dataLength = validateLayout(entries, source);
        Map<String, String> meta = metadata == null ? Map.of() : Collections.unmodifiableMap(metadata);
        return new Header(bytes.length, List.copyOf(entries), meta, dataLength);
    }

    private static Map<String, String> parseMetadata(JsonParser p, String source) throws IOException {
        if (p.currentToken() == JsonToken.VALUE_NULL) {
            return null; // the reference deserialises "__metadata__": null as "no metadata"
        }
        if (p.currentToken() != JsonToken.START_OBJECT) {
            throw new SafeTensorsFormatException(source, null, "\"" + METADATA_KEY
                    + "\" must be a JSON object mapping strings to strings, found " + found(p));
        }
        Map<String, String> m = new LinkedHashMap<>();
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String k = p.getCurrentName();
            if (m.containsKey(k)) {
                throw new SafeTensorsFormatException(source, null, "duplicate key \"" + k + "\" in \"" + METADATA_KEY + "\"");
            }
            if (p.nextToken() != JsonToken.VALUE_STRING) {
                throw new SafeTensorsFormatException(source, null, "\"" + METADATA_KEY + "\" value for key \"" + k
                        + "\" must be a string, found " + found(p));
            }
            m.put(k, p.getText());
        }
        return m;
    }

    private static Entry parseEntry(JsonParser p, String name, String source) throws IOException {
        if (p.currentToken() != JsonToken.START_OBJECT) {
            throw new SafeTensorsFormatException(source, name,
                    "expected a JSON object {\"dtype\", \"shape\", \"data_offsets\"}, found " + found(p));
        }
        String dtypeName = null;
        long[] shape = null;
        long[] offsets = null;
        Set<String> fields = new HashSet<>();
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.getCurrentName();
            if (!fields.add(field)) {
                throw new SafeTensorsFormatException(source, name, "duplicate field \"" + field + "\"");
            }
            JsonToken v = p.nextToken();
            switch (field) {
                case "dtype":
                    if (v != JsonToken.VALUE_STRING) {
                        throw new SafeTensorsFormatException(source, name, "\"dtype\" must be a string such as \"F32\", found " + found(p));
                    }
                    dtypeName = p.getText();
                    break;
                case "shape":
                    shape = parseLongs(p, name, "shape", source);
                    break;
                case "data_offsets":
                    offsets = parseLongs(p, name, "data_offsets", source);
                    if (offsets.length != 2) {
                        throw new SafeTensorsFormatException(source, name, "\"data_offsets\" must be [begin, end], found "
                                + offsets.length + " values " + Arrays.toString(offsets));
                    }
                    break;
                default:
                    p.skipChildren(); // the reference reader ignores unknown fields
            }
        }
        for (String[] req : new String[][]{{"dtype", dtypeName}, {"shape", shape == null ? null : ""},
                {"data_offsets", offsets == null ? null : ""}}) {
            if (req[1] == null) {
                throw new SafeTensorsFormatException(source, name, "missing \"" + req[0] + "\"; each tensor needs"
                        + " \"dtype\", \"shape\" and \"data_offsets\"");
            }
        }
        Dtype dtype = Dtype.parse(dtypeName);
        if (dtype == null) {
            throw new SafeTensorsFormatException(source, name, "unknown dtype \"" + dtypeName + "\"; expected one of "
                    + Arrays.stream(Dtype.values()).map(Enum::name).collect(Collectors.joining(", ")));
        }
        return new Entry(name, dtype, shape, offsets[0], offsets[1]);
    }

    /** An array of non-negative integers that fit a signed 64-bit value. */
    private static long[] parseLongs(JsonParser p, String name, String field, String source) throws IOException {
        if (p.currentToken() != JsonToken.START_ARRAY) {
            throw new SafeTensorsFormatException(source, name, "\"" + field + "\" must be an array of non-negative integers, found " + found(p));
        }
        long[] out = new long[4];
        int n = 0;
        JsonToken t;
        while ((t = p.nextToken()) != JsonToken.END_ARRAY) {
            boolean ok = t == JsonToken.VALUE_NUMBER_INT && p.getNumberType() != JsonParser.NumberType.BIG_INTEGER
                    && p.getLongValue() >= 0;
            if (!ok) {
                throw new SafeTensorsFormatException(source, name, "\"" + field + "\"[" + n + "] must be a non-negative"
                        + " integer below 2^63, found " + found(p));
            }
            if (n == out.length) {
                out = Arrays.copyOf(out, n * 2);
            }
            out[n++] = p.getLongValue();
        }
        return Arrays.copyOf(out, n);
    }

    /**
     * The reference's layout rules: sorted by offsets, each tensor starts where the previous
     * one ended (the first at 0) and spans exactly product(shape) * dtype size bytes.
     *
     * @return length of the data buffer the header describes
     */
    private static long validateLayout(List<Entry> entries, String source) throws SafeTensorsFormatException {
        // Stable sort: equal offsets (zero-size tensors) keep header order.
        entries.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long expected = 0;
        Entry prev = null;
        for (Entry e : entries) {
            if (e.end() < e.begin()) {
                throw new SafeTensorsFormatException(source, e.name(), "data_offsets " + e.offsets()
                        + " end before they begin; expected [begin, end] with begin <= end");
            }
            if (e.begin() != expected) {
                String detail;
                if (prev == null) {
                    detail = "data_offsets " + e.offsets() + " leave a gap of " + e.begin()
                            + " bytes at the start of the data buffer; expected the first tensor to begin at 0";
                } else if (e.begin() < expected) {
                    detail = "data_offsets " + e.offsets() + " overlap tensor '" + prev.name() + "' at " + prev.offsets()
                            + "; expected begin " + expected;
                } else {
                    detail = "data_offsets " + e.offsets() + " leave a gap of " + (e.begin() - expected)
                            + " bytes after tensor '" + prev.name() + "' at " + prev.offsets() + "; expected begin " + expected;
                }
                throw new SafeTensorsFormatException(source, e.name(), detail);
            }
            long elements = 1;
            long bits;
            try {
                for (long d : e.shape()) {
                    elements = Math.multiplyExact(elements, d);
                }
                bits = Math.multiplyExact(elements, (long) e.dtype().bits);
            } catch (ArithmeticException overflow) {
                throw new SafeTensorsFormatException(source, e.name(), "shape " + Arrays.toString(e.shape())
                        + " of dtype " + e.dtype() + " has more bytes than fit in 64 bits");
            }
            if (bits % 8 != 0) {
                throw new SafeTensorsFormatException(source, e.name(), elements + " elements of " + e.dtype() + " ("
                        + e.dtype().bits + " bits each) do not fill a whole number of bytes");
            }
            if (e.nbytes() != bits / 8) {
                String unit = e.dtype().bits % 8 == 0 ? (e.dtype().bits / 8) + " bytes" : e.dtype().bits + " bits";
                throw new SafeTensorsFormatException(source, e.name(), "data_offsets " + e.offsets() + " span " + e.nbytes()
                        + " bytes but dtype " + e.dtype() + " with shape " + Arrays.toString(e.shape()) + " needs "
                        + (bits / 8) + " bytes (" + elements + " elements x " + unit + ")");
            }
            expected = e.end();
            prev = e;
        }
        return expected;
    }

    private static String decodeUtf8(byte[] bytes, String source) throws SafeTensorsFormatException {
        CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length);
        CoderResult r = dec.decode(in, out, true);
        if (!r.isError()) {
            r = dec.flush(out);
        }
        if (r.isError()) {
            throw new SafeTensorsFormatException(source, null, "header is not valid UTF-8: malformed byte 0x"
                    + String.format("%02X", bytes[in.position()] & 0xff) + " at header offset " + in.position()
                    + " (file offset " + (PREFIX_BYTES + in.position()) + ")");
        }
        return out.flip().toString();
    }

    private static String found(JsonParser p) throws IOException {
        JsonToken t = p.currentToken();
        if (t == null) {
            return "end of input";
        }
        switch (t) {
            case START_OBJECT: return "an object";
            case START_ARRAY: return "an array";
            case VALUE_STRING: return "string \"" + p.getText() + "\"";
            case VALUE_NULL: return "null";
            default: return p.getText();
        }
    }

    private static String where(JsonLocation loc) {
        return loc == null ? "unknown position" : "line " + loc.getLineNr() + ", column " + loc.getColumnNr();
    }

    private static String quoteStart(String text) {
        String start = text.length() > 20 ? text.substring(0, 20) + "..." : text;
        return "\"" + start.replace("\n", "\\n") + "\"";
    }

    // ---------------------------------------------------------------------------- writing core

    private record Item(String name, Dtype dtype, long[] shape, INDArray array, long nbytes) {
    }

    private record Prepared(byte[] header, List<Item> items, long dataLength) {
    }

    /** Code-point order = UTF-8 byte order, which is how the reference (Rust String) sorts names. */
    private static final Comparator<String> CODE_POINT_ORDER = (a, b) -> {
        int i = 0;
        int j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i);
            int cb = b.codePointAt(j);
            if (ca != cb) {
                return Integer.compare(ca, cb);
            }
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    };

    /** Validates the inputs and builds the header; touches neither disk nor array data. */
    private static Prepared prepare(Map<String, INDArray> tensors, Map<String, String> metadata) {
        Objects.requireNonNull(tensors, "tensors");
        List<Item> items = new ArrayList<>(tensors.size());
        for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
            String name = e.getKey();
            INDArray a = e.getValue();
            if (name == null) {
                throw new IllegalArgumentException("tensor names must not be null");
            }
            if (METADATA_KEY.equals(name)) {
                throw new IllegalArgumentException("\"" + METADATA_KEY + "\" is reserved for metadata and cannot name a tensor");
            }
            requireUnicode(name, "tensor name");
            if (a == null) {
                throw new IllegalArgumentException("tensor '" + name + "' is null");
            }
            Dtype dtype = Dtype.of(a.dataType());
            if (dtype == null) {
                throw new IllegalArgumentException("tensor '" + name + "' has ND4J data type " + a.dataType()
                        + ", which safetensors cannot store; supported: " + Dtype.supported());
            }
            long[] shape = a.shape().clone();
            long nbytes = Math.multiplyExact(a.length(), (long) (dtype.bits / 8));
            if (nbytes > MAX_TENSOR_BYTES) {
                throw new IllegalArgumentException("tensor '" + name + "' has " + nbytes + " bytes; at most "
                        + MAX_TENSOR_BYTES + " bytes per tensor are supported");
            }
            items.add(new Item(name, dtype, shape, a, nbytes));
        }
        items.sort(Comparator.comparing((Item it) -> it.dtype().ordinal(), Comparator.reverseOrder())
                .thenComparing(Item::name, CODE_POINT_ORDER));
        if (metadata != null) {
            for (Map.Entry<String, String> m : metadata.entrySet()) {
                if (m.getKey() == null || m.getValue() == null) {
                    throw new IllegalArgumentException("metadata keys and values must not be null: " + m);
                }
                requireUnicode(m.getKey(), "metadata key");
                requireUnicode(m.getValue(), "metadata value");
            }
        }

        ByteArrayOutputStream json = new ByteArrayOutputStream();
        long offset = 0;
        try (JsonGenerator g = JSON.createGenerator(json, JsonEncoding.UTF8)) {
            g.writeStartObject();
            if (metadata != null) {
                g.writeObjectFieldStart(METADATA_KEY);
                for (Map.Entry<String, String> m : metadata.entrySet()) {
                    g.writeStringField(m.getKey(), m.getValue());
                }
                g.writeEndObject();
            }
            for (Item it : items) {
                g.writeObjectFieldStart(it.name());
                g.writeStringField("dtype", it.dtype().name());
                g.writeArrayFieldStart("shape");
                for (long d : it.shape()) {
                    g.writeNumber(d);
                }
                g.writeEndArray();
                g.writeArrayFieldStart("data_offsets");
                g.writeNumber(offset);
                g.writeNumber(offset + it.nbytes());
                g.writeEndArray();
                g.writeEndObject();
                offset += it.nbytes();
            }
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot happen: writing JSON to memory failed", e);
        }
        int pad = (HEADER_ALIGNMENT - json.size() % HEADER_ALIGNMENT) % HEADER_ALIGNMENT;
        for (int i = 0; i < pad; i++) {
            json.write(' '); // spaces, as the reference writer does; keeps the data 8-byte aligned
        }
        if (json.size() > MAX_HEADER_BYTES) {
            throw new IllegalArgumentException("header would be " + json.size() + " bytes; readers refuse more than "
                    + MAX_HEADER_BYTES);
        }
        return new Prepared(json.toByteArray(), items, offset);
    }

    private static void writeTo(WritableByteChannel ch, Prepared p) throws IOException {
        ByteBuffer prefix = ByteBuffer.allocate(PREFIX_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        prefix.putLong(0, p.header().length);
        writeFully(ch, prefix);
        writeFully(ch, ByteBuffer.wrap(p.header()));
        for (Item it : p.items()) {
            if (it.nbytes() == 0) {
                continue;
            }
            try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                INDArray a = it.array();
                // Views, F order, offsets or odd strides: copy to a dense C-order buffer first.
                INDArray c = isDenseC(a) ? a : a.dup('c');
                Nd4j.getAffinityManager().ensureLocation(c, AffinityManager.Location.HOST);
                ByteBuffer bytes = c.data().asNio();
                if (bytes.capacity() < it.nbytes()) {
                    throw new IllegalStateException("ND4J buffer of " + bytes.capacity() + " bytes for tensor '"
                            + it.name() + "' of " + it.nbytes() + " bytes");
                }
                bytes.clear().limit((int) it.nbytes());
                if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
                    ByteBuffer copy = ByteBuffer.allocate((int) it.nbytes());
                    copy.put(bytes).flip();
                    reverseElementBytes(copy, 0, copy.limit(), it.dtype().bits / 8);
                    bytes = copy;
                }
                writeFully(ch, bytes);
                // asNio() does not keep the array alive; its native memory must outlive the write.
                Reference.reachabilityFence(c);
            }
        }
    }

    private static boolean isDenseC(INDArray a) {
        return !a.isView() && a.offset() == 0 && a.data().offset() == 0 && a.ordering() == 'c'
                && Shape.hasDefaultStridesForShape(a) && a.data().length() == a.length();
    }

    private static void writeFully(WritableByteChannel ch, ByteBuffer src) throws IOException {
        while (src.hasRemaining()) {
            ch.write(src);
        }
    }

    /** Reverses the bytes of each element in {@code [from, to)}; used only on big-endian hosts. */
    static void reverseElementBytes(ByteBuffer buf, int from, int to, int elementBytes) {
        for (int base = from; base + elementBytes <= to; base += elementBytes) {
            for (int i = 0, j = elementBytes - 1; i < j; i++, j--) {
                byte t = buf.get(base + i);
                buf.put(base + i, buf.get(base + j));
                buf.put(base + j, t);
            }
        }
    }

    private static void requireUnicode(String s, String what) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw new IllegalArgumentException(what + " \"" + s + "\" contains an unpaired surrogate at index " + i
                        + " and cannot be encoded as UTF-8");
            }
        }
    }
}
