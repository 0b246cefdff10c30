package org.prilora.io;

import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;
import static org.prilora.io.SafeTensorsTestFiles.concat;
import static org.prilora.io.SafeTensorsTestFiles.f32le;
import static org.prilora.io.SafeTensorsTestFiles.file;
import static org.prilora.io.SafeTensorsTestFiles.fixture;
import static org.prilora.io.SafeTensorsTestFiles.le64;

/** Every way a file can be wrong must give a {@link SafeTensorsFormatException} that says how. */
class SafeTensorsCorruptionTest {

    private static final String SRC = "bad.safetensors";

    /** Parses the header of a complete in-memory file (used by other tests, too). */
    static SafeTensorsHeader.Header header(byte[] file) {
        long n = ByteBuffer.wrap(file, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        try {
            return SafeTensorsHeader.parse(Arrays.copyOfRange(file, 8, 8 + (int) n), "test");
        } catch (SafeTensorsFormatException e) {
            throw new AssertionError(e);
        }
    }

    private static AbstractThrowableAssert<?, ? extends Throwable> assertRejected(byte[] bytes) {
        return assertThatThrownBy(() -> SafeTensors.fromBytes(bytes, SRC))
                .isInstanceOf(SafeTensorsFormatException.class)
                .hasMessageStartingWith(SRC + ": ");
    }

    private static SafeTensorsFormatException rejection(byte[] bytes) {
        return catchThrowableOfType(() -> SafeTensors.fromBytes(bytes, SRC), SafeTensorsFormatException.class);
    }

    // --------------------------------------------------------------------------- truncation

    /** Cut points into mixed.safetensors (header 568 bytes; data: ids [0,32) bias [32,64) ... half [110,118)). */
    @ParameterizedTest
    @CsvSource(nullValues = "-", value = {
            "0, -, it has 0 bytes",
            "5, -, it has 5 bytes",
            "8, -, header length is 568 bytes but only 0 bytes follow",
            "300, -, header length is 568 bytes but only 292 bytes follow",
            "576, ids, 'data_offsets [0, 32] reach past the 0 data bytes present'",
            "626, bias, 'data_offsets [32, 64] reach past the 50 data bytes present'",
            "693, half, 'data_offsets [110, 118] reach past the 117 data bytes present'",
    })
    void truncatedFilesSayTheyAreTruncated(int keep, String tensor, String detail, @TempDir Path dir) throws IOException {
        byte[] whole = Files.readAllBytes(fixture("mixed.safetensors"));
        Path cut = dir.resolve("cut.safetensors");
        Files.write(cut, Arrays.copyOf(whole, keep));

        SafeTensorsTruncatedException e = catchThrowableOfType(() -> SafeTensors.read(cut), SafeTensorsTruncatedException.class);
        assertThat(e).as("cut at " + keep).isNotNull();
        assertThat(e.getMessage()).startsWith(cut + ": ").contains("truncated").contains(detail);
        assertThat(e.source()).isEqualTo(cut.toString());
        assertThat(e.tensor()).isEqualTo(tensor);
        if (keep >= 576) {
            assertThat(e.getMessage()).contains("expected file size 694, found " + keep);
        }
        // readMetadata validates the whole layout too
        assertThatThrownBy(() -> SafeTensors.readMetadata(cut)).isInstanceOf(SafeTensorsTruncatedException.class);

        // A stream cannot know the size up front, but must still say "truncated" and name the tensor.
        SafeTensorsTruncatedException s = catchThrowableOfType(
                () -> SafeTensors.read(new ByteArrayInputStream(Arrays.copyOf(whole, keep)), "stream"),
                SafeTensorsTruncatedException.class);
        assertThat(s).as("stream cut at " + keep).isNotNull();
        assertThat(s.getMessage()).startsWith("stream: ").contains("truncated");
        assertThat(s.tensor()).isEqualTo(tensor);
    }

    @Test
    void truncatedStreamMessagesCountTheBytes() throws IOException {
        byte[] whole = SafeTensors.toBytes(java.util.Map.of("w", org.nd4j.linalg.factory.Nd4j.createFromArray(1f, 2f, 3f, 4f)), null);
        int n = (int) header(whole).headerBytes();
        assertThatThrownBy(() -> SafeTensors.read(new ByteArrayInputStream(Arrays.copyOf(whole, 3)), "s"))
                .hasMessage("s: file is truncated: stream ended after 3 bytes but a safetensors file starts with an"
                        + " 8-byte little-endian header length");
        assertThatThrownBy(() -> SafeTensors.read(new ByteArrayInputStream(Arrays.copyOf(whole, 20)), "s"))
                .hasMessage("s: file is truncated: stream ended inside the header after 12 of " + n + " header bytes");
        assertThatThrownBy(() -> SafeTensors.read(new ByteArrayInputStream(Arrays.copyOf(whole, 8 + n + 6)), "s"))
                .hasMessage("s: tensor 'w': file is truncated: data ended after 6 of 16 bytes of this tensor (data_offsets [0, 16])");
        // a large claimed header on a short stream is reported without reading (or allocating) it all
        assertThatThrownBy(() -> SafeTensors.read(new ByteArrayInputStream(concat(le64(50_000_000), new byte[10])), "s"))
                .isInstanceOf(SafeTensorsTruncatedException.class)
                .hasMessage("s: file is truncated: stream ended inside the header after 10 of 50000000 header bytes");
    }

    @Test
    void headerLengthLargerThanTheFile() throws IOException {
        byte[] bytes = concat(le64(1000), "{\"a\":1}".getBytes(StandardCharsets.UTF_8));
        SafeTensorsFormatException e = rejection(bytes);
        assertThat(e).isInstanceOf(SafeTensorsTruncatedException.class);
        assertThat(e).hasMessage(SRC + ": file is truncated or corrupt: header length is 1000 bytes but only 7 bytes"
                + " follow the 8-byte length prefix (file size 15)");
    }

    @ParameterizedTest
    @ValueSource(longs = {100_000_001L, Long.MAX_VALUE, -1L /* 2^64 - 1 */})
    void absurdHeaderLengthsAreRejectedBeforeAllocating(long n) {
        assertRejected(concat(le64(n), new byte[16]))
                .hasMessageContaining("header length " + Long.toUnsignedString(n))
                .hasMessageContaining("exceeds the limit of 100000000 bytes");
        assertThatThrownBy(() -> SafeTensors.read(new ByteArrayInputStream(concat(le64(n), new byte[16])), "s"))
                .hasMessageContaining("exceeds the limit");
    }

    @Test
    void trailingBytesAfterTheLastTensor() throws IOException {
        byte[] ok = file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", f32le(1));
        assertRejected(concat(ok, new byte[]{0, 0, 0}))
                .hasMessageContaining("3 unexpected bytes after the last tensor")
                .hasMessageContaining("cover 4 data bytes but 7 follow the header");
        assertThatThrownBy(() -> SafeTensors.read(new ByteArrayInputStream(concat(ok, new byte[]{1})), "s"))
                .isInstanceOf(SafeTensorsFormatException.class)
                .hasMessage("s: unexpected bytes after the last tensor: the header's data_offsets cover 4 data bytes"
                        + " but the stream continues");
    }

    // ---------------------------------------------------------------------------- header JSON

    @Test
    void invalidJson() throws IOException {
        assertRejected(file("{\"a\":{\"dtype\":\"F32\",}}", new byte[0]))
                .hasMessageContaining("header is not valid JSON")
                .hasMessageContaining("line 1, column");
        assertRejected(file("{\"a\":", new byte[0])).hasMessageContaining("header is not valid JSON");
        assertRejected(file("{'a':1}", new byte[0])).hasMessageContaining("header is not valid JSON");
        assertRejected(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[NaN],\"data_offsets\":[0,0]}}", new byte[0]))
                .hasMessageContaining("header is not valid JSON");
    }

    @Test
    void headerMustBeOneObjectStartingWithABrace() throws IOException {
        assertRejected(file("[1,2]", new byte[0]))
                .hasMessage(SRC + ": header must be a JSON object starting with '{' but starts with \"[1,2]\"");
        assertRejected(file(" {}", new byte[0])).hasMessageContaining("starts with \" {}\"");
        assertRejected(file("", new byte[0])).hasMessageContaining("it is empty");
        assertRejected(file("{} {}", new byte[0]))
                .hasMessageContaining("unexpected START_OBJECT after the header's JSON object at line 1, column 4");
        assertRejected(file("{}\u0000\u0000", new byte[0])).hasMessageContaining("not valid JSON");
        // whitespace padding of any kind is fine
        assertThat(SafeTensors.fromBytes(file("{} \n\t\r  ", new byte[0]), SRC)).isEmpty();
    }

    @Test
    void headerMustBeUtf8() {
        byte[] h = "{\"a\u00e9\":1}".getBytes(StandardCharsets.UTF_8);
        h[3] = (byte) 0xFF;
        assertRejected(concat(le64(h.length), h))
                .hasMessage(SRC + ": header is not valid UTF-8: malformed byte 0xFF at header offset 3 (file offset 11)");
    }

    @Test
    void duplicateKeys() throws IOException {
        String t = "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}";
        SafeTensorsFormatException e = rejection(file("{\"a\":" + t + ",\"a\":" + t + "}", f32le(1, 2)));
        assertThat(e).hasMessageContaining("duplicate key \"a\" in the header").hasMessageContaining("every key must be unique");
        assertThat(e.tensor()).isEqualTo("a");
        assertRejected(file("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", f32le(1)))
                .hasMessage(SRC + ": tensor 'a': duplicate field \"dtype\"");
        assertRejected(file("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", new byte[0]))
                .hasMessage(SRC + ": duplicate key \"k\" in \"__metadata__\"");
        assertRejected(file("{\"__metadata__\":{},\"__metadata__\":{}}", new byte[0]))
                .hasMessageContaining("duplicate key \"__metadata__\"");
    }

    // -------------------------------------------------------------------------- tensor entries

    @Test
    void unknownDtype() throws IOException {
        SafeTensorsFormatException e = rejection(file("{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", f32le(1)));
        assertThat(e).hasMessageStartingWith(SRC + ": tensor 'w': unknown dtype \"F33\"; expected one of BOOL, F4,")
                .hasMessageContaining("F32");
        assertThat(e.tensor()).isEqualTo("w");
        assertRejected(file("{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", f32le(1)))
                .hasMessageContaining("unknown dtype \"f32\"");
    }

    @Test
    void knownDtypeWithoutNd4jEquivalentCanBeInspectedButNotLoaded(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("fp8.safetensors");
        Files.write(f, file("{\"__metadata__\":{\"q\":\"fp8\"},\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}",
                new byte[]{1, 2}));
        assertThat(SafeTensors.readMetadata(f)).containsEntry("q", "fp8");
        assertThatThrownBy(() -> SafeTensors.read(f))
                .isInstanceOf(SafeTensorsFormatException.class)
                .hasMessageStartingWith(f + ": tensor 'w': dtype F8_E4M3 is a valid safetensors dtype but ND4J has no"
                        + " equivalent; loadable dtypes: BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64");
        // sub-byte dtypes are sized in bits: 3 x F4 = 12 bits is not a whole number of bytes
        assertRejected(file("{\"w\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", new byte[2]))
                .hasMessage(SRC + ": tensor 'w': 3 elements of F4 (4 bits each) do not fill a whole number of bytes");
    }

    @Test
    void malformedEntries() throws IOException {
        assertRejected(file("{\"w\":[1]}", new byte[0]))
                .hasMessage(SRC + ": tensor 'w': expected a JSON object {\"dtype\", \"shape\", \"data_offsets\"}, found an array");
        assertRejected(file("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", f32le(1)))
                .hasMessageContaining("tensor 'w': missing \"shape\"");
        assertRejected(file("{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", f32le(1)))
                .hasMessageContaining("\"dtype\" must be a string such as \"F32\", found 32");
        assertRejected(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", f32le(1)))
                .hasMessage(SRC + ": tensor 'w': \"shape\"[0] must be a non-negative integer below 2^63, found -1");
        assertRejected(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", f32le(1)))
                .hasMessageContaining("\"shape\"[0] must be a non-negative integer below 2^63, found 1.0");
        assertRejected(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[[1]],\"data_offsets\":[0,4]}}", f32le(1)))
                .hasMessageContaining("\"shape\"[0] must be a non-negative integer below 2^63, found an array");
        assertRejected(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}}", f32le(1)))
                .hasMessageContaining("\"data_offsets\"[1] must be a non-negative integer below 2^63, found 18446744073709551616");
        assertRejected(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", f32le(1)))
                .hasMessage(SRC + ": tensor 'w': \"data_offsets\" must be [begin, end], found 3 values [0, 4, 8]");
        assertRejected(file("{\"w\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", f32le(1)))
                .hasMessageContaining("\"shape\" must be an array of non-negative integers, found 1");
        assertRejected(file("{\"__metadata__\":{\"k\":1}}", new byte[0]))
                .hasMessage(SRC + ": \"__metadata__\" value for key \"k\" must be a string, found 1");
        assertRejected(file("{\"__metadata__\":[]}", new byte[0]))
                .hasMessageContaining("\"__metadata__\" must be a JSON object mapping strings to strings, found an array");
    }

    @Test
    void unknownFieldsAreSkippedHoweverDeeplyNested() throws IOException {
        String deep = "[".repeat(50_000) + "]".repeat(50_000);
        byte[] bytes = file("{\"w\":{\"extra\":" + deep + ",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"__metadata__\":null}", f32le(7));
        assertThat(SafeTensors.readContents(bytes, SRC).tensors().get("w").getFloat(0)).isEqualTo(7f);
    }

    // ------------------------------------------------------------------------------ offsets

    private static final String A = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":";
    private static final String B = "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":";

    @Test
    void overlappingOffsets() throws IOException {
        SafeTensorsFormatException e = rejection(file("{" + A + "[0,8]}," + B + "[4,12]}}", new byte[12]));
        assertThat(e).hasMessage(SRC + ": tensor 'b': data_offsets [4, 12] overlap tensor 'a' at [0, 8]; expected begin 8");
        assertThat(e.tensor()).isEqualTo("b");
        assertRejected(file("{" + A + "[0,8]}," + B + "[0,8]}}", new byte[8]))
                .hasMessageContaining("tensor 'b': data_offsets [0, 8] overlap tensor 'a' at [0, 8]");
    }

    @Test
    void gappedOffsets() throws IOException {
        assertRejected(file("{" + A + "[0,8]}," + B + "[12,20]}}", new byte[20]))
                .hasMessage(SRC + ": tensor 'b': data_offsets [12, 20] leave a gap of 4 bytes after tensor 'a' at [0, 8];"
                        + " expected begin 8");
        assertRejected(file("{" + B + "[4,12]}}", new byte[12]))
                .hasMessage(SRC + ": tensor 'b': data_offsets [4, 12] leave a gap of 4 bytes at the start of the data buffer;"
                        + " expected the first tensor to begin at 0");
    }

    @Test
    void reversedOffsets() throws IOException {
        assertRejected(file("{" + A + "[8,0]}}", new byte[8]))
                .hasMessage(SRC + ": tensor 'a': data_offsets [8, 0] end before they begin; expected [begin, end] with begin <= end");
    }

    @Test
    void byteLengthMustMatchShapeTimesDtypeSize() throws IOException {
        assertRejected(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", new byte[20]))
                .hasMessage(SRC + ": tensor 'w': data_offsets [0, 20] span 20 bytes but dtype F32 with shape [2, 3] needs"
                        + " 24 bytes (6 elements x 4 bytes)");
        assertRejected(file("{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,4]}}", new byte[4]))
                .hasMessageContaining("dtype F64 with shape [] needs 8 bytes (1 elements x 8 bytes)");
        assertRejected(file("{\"w\":{\"dtype\":\"I64\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", new byte[8]))
                .hasMessage(SRC + ": tensor 'w': shape [4611686018427387904, 4] of dtype I64 has more bytes than fit in 64 bits");
    }

    @Test
    void zeroSizedTensorsMayShareAnOffset() throws IOException {
        byte[] bytes = file("{\"e1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                + A.replace("[2]", "[1]") + "[0,4]},"
                + "\"e2\":{\"dtype\":\"I64\",\"shape\":[3,0],\"data_offsets\":[4,4]}}", f32le(9));
        assertThat(SafeTensors.fromBytes(bytes, SRC).keySet()).containsExactly("a", "e1", "e2");
    }

    @Test
    void errorsWithoutASourceNameStillExplain() throws IOException {
        assertThatThrownBy(() -> SafeTensors.fromBytes(new byte[3], null))
                .hasMessage("file is truncated: it has 3 bytes but a safetensors file starts with an 8-byte little-endian"
                        + " header length");
    }
}
