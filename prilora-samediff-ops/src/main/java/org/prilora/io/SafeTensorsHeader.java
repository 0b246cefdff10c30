package org.prilora.io;

import org.nd4j.shade.jackson.core.JsonFactory;
import org.nd4j.shade.jackson.core.JsonLocation;
import org.nd4j.shade.jackson.core.JsonParser;
import org.nd4j.shade.jackson.core.JsonProcessingException;
import org.nd4j.shade.jackson.core.JsonToken;
import org.nd4j.shade.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads and validates the 8-byte length prefix and the JSON header of a safetensors file,
 * following the rules listed on {@link SafeTensors}.
 */
final class SafeTensorsHeader {

    static final int PREFIX_BYTES = 8;

    // The streaming API is used rather than a tree so that nesting can never go deeper than
    // the format allows (no stack exhaustion on hostile headers) and errors can name the field.
    static final JsonFactory JSON = new ObjectMapper().getFactory();

    private SafeTensorsHeader() {
    }

    /** One validated header entry. */
    record Entry(String name, SafeTensorsDType dtype, long[] shape, long begin, long end) {
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

    // ------------------------------------------------------------------------ prefix and bytes

    /** Reads and validates prefix and header; with a known size also checks the data length. */
    static Header read(ReadableByteChannel ch, long size, String source) throws IOException {
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
        if (Long.compareUnsigned(n, SafeTensors.MAX_HEADER_BYTES) > 0) {
            throw new SafeTensorsFormatException(source, null, "header length " + Long.toUnsignedString(n)
                    + " (little-endian u64 in bytes 0-7) exceeds the limit of " + SafeTensors.MAX_HEADER_BYTES
                    + " bytes; not a safetensors file, or corrupt");
        }
        if (size >= 0 && n > size - PREFIX_BYTES) {
            throw new SafeTensorsTruncatedException(source, null, "file is truncated or corrupt: header length is " + n
                    + " bytes but only " + (size - PREFIX_BYTES) + " bytes follow the 8-byte length prefix (file size " + size + ")");
        }
        byte[] header = readHeaderBytes(ch, (int) n, source);
        Header h = parse(header, source);
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

    /** Fills {@code dst} as far as the channel allows; returns the number of bytes read. */
    static int readFully(ReadableByteChannel ch, ByteBuffer dst) throws IOException {
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
    static Header parse(byte[] bytes, String source) throws SafeTensorsFormatException {
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
                    throw new SafeTensorsFormatException(source, SafeTensors.METADATA_KEY.equals(key) ? null : key,
                            "duplicate key \"" + key + "\" in the header at " + where(p.getCurrentLocation())
                                    + "; every key must be unique");
                }
                p.nextToken();
                if (SafeTensors.METADATA_KEY.equals(key)) {
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
            throw new SafeTensorsFormatException(source, null, "\"" + SafeTensors.METADATA_KEY
                    + "\" must be a JSON object mapping strings to strings, found " + found(p));
        }
        Map<String, String> m = new LinkedHashMap<>();
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String k = p.getCurrentName();
            if (m.containsKey(k)) {
                throw new SafeTensorsFormatException(source, null, "duplicate key \"" + k + "\" in \""
                        + SafeTensors.METADATA_KEY + "\"");
            }
            if (p.nextToken() != JsonToken.VALUE_STRING) {
                throw new SafeTensorsFormatException(source, null, "\"" + SafeTensors.METADATA_KEY + "\" value for key \"" + k
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
        SafeTensorsDType dtype = SafeTensorsDType.parse(dtypeName);
        if (dtype == null) {
            throw new SafeTensorsFormatException(source, name, "unknown dtype \"" + dtypeName + "\"; expected one of "
                    + SafeTensorsDType.known());
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
                String unit = e.dtype().bits % 8 == 0 ? e.dtype().elementBytes() + " bytes" : e.dtype().bits + " bits";
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
}
