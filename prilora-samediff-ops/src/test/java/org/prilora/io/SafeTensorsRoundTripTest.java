package org.prilora.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import java.util.zip.ZipOutputStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.prilora.io.SafeTensorsTestFiles.concat;
import static org.prilora.io.SafeTensorsTestFiles.doubles;
import static org.prilora.io.SafeTensorsTestFiles.f32le;
import static org.prilora.io.SafeTensorsTestFiles.le64;
import static org.prilora.io.SafeTensorsTestFiles.longs;

/** Java write -> Java read for every dtype and awkward array layouts, plus writer conventions. */
class SafeTensorsRoundTripTest {

    /** Every ND4J type the format can hold (the aliases FLOAT16, INT32, ... are the same constants). */
    enum Stored {
        DOUBLE, FLOAT, HALF, BFLOAT16, LONG, INT, SHORT, BYTE, UBYTE, UINT16, UINT32, UINT64, BOOL;

        DataType type() {
            return DataType.valueOf(name());
        }
    }

    /** 3x4 values that every type represents exactly (0/1 for BOOL, small non-negatives for unsigned). */
    private static INDArray base(DataType t) {
        double[] v = new double[12];
        for (int i = 0; i < v.length; i++) {
            v[i] = t == DataType.BOOL ? (i % 3 == 0 ? 1 : 0)
                    : t.isFPType() ? (i - 5) * 0.75
                    : isUnsigned(t) ? i * 7 : (i - 5) * 9;
        }
        return Nd4j.createFromArray(v).reshape('c', 3, 4).castTo(t);
    }

    private static boolean isUnsigned(DataType t) {
        return t == DataType.UBYTE || t == DataType.UINT16 || t == DataType.UINT32 || t == DataType.UINT64;
    }

    /** Exact element comparison via ND4J indexing, in C order. */
    private static void assertSameContents(INDArray actual, INDArray expected, String what) {
        assertThat(actual.dataType()).as(what + " dtype").isEqualTo(expected.dataType());
        assertThat(actual.shape()).as(what + " shape").containsExactly(expected.shape());
        assertThat(actual.ordering()).as(what + " order").isEqualTo('c');
        if (expected.length() == 0) {
            assertThat(actual.isEmpty()).as(what + " empty").isTrue();
            return;
        }
        if (expected.dataType().isFPType()) {
            assertThat(doubles(actual)).as(what).containsExactly(doubles(expected));
        } else {
            assertThat(longs(actual)).as(what).containsExactly(longs(expected));
        }
    }

    @ParameterizedTest
    @EnumSource(Stored.class)
    void everyDtypeRoundTripsIncludingViewsScalarsAndEmptyArrays(Stored stored, @TempDir Path dir) throws IOException {
        DataType t = stored.type();
        INDArray base = base(t);
        Map<String, INDArray> in = new LinkedHashMap<>();
        in.put("dense", base);
        in.put("transposed", base.transpose());                                        // F-order view
        in.put("columns", base.get(NDArrayIndex.all(), NDArrayIndex.interval(1, 3)));  // strided, offset view
        in.put("row", base.getRow(2));                                                 // offset view
        in.put("permuted", base.reshape('c', 2, 3, 2).permute(2, 0, 1));               // rank 3, odd strides
        INDArray fOrder = Nd4j.create(t, new long[]{3, 4}, 'f');
        fOrder.assign(base);
        in.put("forder", fOrder);
        in.put("scalar", Nd4j.scalar(DataType.DOUBLE, 1.0).castTo(t));
        in.put("empty", Nd4j.create(t, new long[]{0, 4}, 'c'));
        in.put("vector", Nd4j.createFromArray(1.0, 0.0, 1.0).castTo(t));

        Path file = dir.resolve(stored + ".safetensors");
        SafeTensors.write(file, in, Map.of("dtype", stored.name()));
        SafeTensors.Contents back = SafeTensors.readContents(file);
        SafeTensors.Contents viaBytes = SafeTensors.readContents(SafeTensors.toBytes(in, Map.of("dtype", stored.name())), "bytes");

        assertThat(back.tensors().keySet()).containsExactlyInAnyOrderElementsOf(in.keySet());
        assertThat(back.metadata()).containsExactlyEntriesOf(Map.of("dtype", stored.name()));
        for (Map.Entry<String, INDArray> e : in.entrySet()) {
            assertSameContents(back.tensors().get(e.getKey()), e.getValue(), stored + "/" + e.getKey());
            assertSameContents(viaBytes.tensors().get(e.getKey()), e.getValue(), stored + "/bytes/" + e.getKey());
        }
        assertThat(back.tensors().get("scalar").rank()).isZero();
        // the inputs, views included, are untouched
        assertSameContents(in.get("dense"), base(t), "input");
    }

    @Test
    void specialFloatValuesSurviveBitExactly() throws IOException {
        float[] f = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, -0.0f, Float.MIN_VALUE, Float.MAX_VALUE};
        Map<String, INDArray> in = Map.of("f", Nd4j.createFromArray(f),
                "d", Nd4j.createFromArray(Double.NaN, -0.0, Double.MIN_VALUE, Double.MAX_VALUE));
        Map<String, INDArray> back = SafeTensors.fromBytes(SafeTensors.toBytes(in, null), "special");
        for (int i = 0; i < f.length; i++) {
            assertThat(Float.floatToRawIntBits(back.get("f").getFloat(i))).as("f[" + i + "]")
                    .isEqualTo(Float.floatToRawIntBits(f[i]));
        }
        assertThat(Double.doubleToRawLongBits(back.get("d").getDouble(1))).isEqualTo(Double.doubleToRawLongBits(-0.0));
        assertThat(back.get("d").getDouble(0)).isNaN();
        assertThat(back.get("d").getDouble(3)).isEqualTo(Double.MAX_VALUE);
    }

    @Test
    void writerMatchesTheReferenceLayoutRules() throws IOException {
        // Rust reference test "test_serialization": {"attn.0": F32 [1,2,3] = 0..5}, 64-byte header, no padding.
        INDArray attn = Nd4j.createFromArray(0f, 1f, 2f, 3f, 4f, 5f).reshape(1, 2, 3);
        assertThat(SafeTensors.toBytes(Map.of("attn.0", attn), null)).isEqualTo(concat(le64(64),
                ascii("{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}"),
                f32le(0, 1, 2, 3, 4, 5)));
        // "test_serialization_forced_alignement": a shorter name forces 7 spaces of padding.
        assertThat(SafeTensors.toBytes(Map.of("attn0", attn.reshape(1, 1, 2, 3)), null)).isEqualTo(concat(le64(72),
                ascii("{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       "),
                f32le(0, 1, 2, 3, 4, 5)));
        // "test_empty" with metadata.
        assertThat(SafeTensors.toBytes(Map.of(), Map.of("framework", "pt"))).isEqualTo(concat(le64(40),
                ascii("{\"__metadata__\":{\"framework\":\"pt\"}}     ")));
    }

    @Test
    void tensorsAreLaidOutByDtypeRankThenCodePointNameAndStayAligned() throws IOException {
        Map<String, INDArray> in = new LinkedHashMap<>();
        in.put("b8", Nd4j.createFromArray(new byte[]{1, 2, 3}));
        in.put("h", Nd4j.createFromArray(1f).castTo(DataType.HALF));
        in.put("\uD83D\uDE00", Nd4j.createFromArray(1f, 2f)); // U+1F600: after U+FF21 in code-point order
        in.put("\uFF21", Nd4j.createFromArray(3f));            // but before it in UTF-16 order
        in.put("é", Nd4j.createFromArray(4f));
        in.put("a", Nd4j.createFromArray(5f));
        in.put("l", Nd4j.createFromArray(6L));
        in.put("d", Nd4j.createFromArray(7.0));
        in.put("i", Nd4j.createFromArray(8));
        byte[] bytes = SafeTensors.toBytes(in, null);
        SafeTensorsHeader.Header h = SafeTensorsCorruptionTest.header(bytes);

        List<String> order = new ArrayList<>();
        h.entries().forEach(e -> order.add(e.name()));
        assertThat(order).containsExactly("l", "d", "a", "é", "\uFF21", "\uD83D\uDE00", "i", "h", "b8");
        assertThat(h.headerBytes() % 8).isZero();
        for (SafeTensorsHeader.Entry e : h.entries()) {
            assertThat(e.begin() % (e.dtype().bits / 8)).as(e.name() + " aligned").isZero();
        }
        // padding is spaces right after the closing brace
        String header = new String(bytes, 8, (int) h.headerBytes(), StandardCharsets.UTF_8);
        assertThat(header.stripTrailing()).endsWith("}");
        assertThat(header.substring(header.stripTrailing().length())).matches(" *");
    }

    @Test
    void metadataIsOptionalAndKeepsItsOrder() throws IOException {
        Map<String, INDArray> t = Map.of("x", Nd4j.createFromArray(1f));
        assertThat(SafeTensors.readContents(SafeTensors.toBytes(t, null), null).metadata()).isEmpty();
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("z", "1");
        meta.put("a", "");
        meta.put("ключ", "значение\n\t\u0001");
        assertThat(SafeTensors.readContents(SafeTensors.toBytes(t, meta), null).metadata()).containsExactlyEntriesOf(meta);
        assertThat(new String(SafeTensors.toBytes(t, Map.of()), StandardCharsets.UTF_8)).contains("\"__metadata__\":{}");
    }

    @Test
    void zipEntryRoundTrip() throws IOException {
        Map<String, INDArray> in = Map.of("w", Nd4j.createFromArray(new float[][]{{1, 2}, {3, 4}}));
        ByteArrayOutputStream zipBytes = new ByteArrayOutputStream();
        try (ZipOutputStream zip = new ZipOutputStream(zipBytes)) {
            zip.putNextEntry(new ZipEntry("adapter.safetensors"));
            SafeTensors.write(zip, in, Map.of("k", "v"));
            zip.closeEntry();
            zip.putNextEntry(new ZipEntry("other.txt"));
            zip.write(ascii("after"));
            zip.closeEntry();
        }
        try (ZipInputStream zip = new ZipInputStream(new ByteArrayInputStream(zipBytes.toByteArray()))) {
            assertThat(zip.getNextEntry().getName()).isEqualTo("adapter.safetensors");
            SafeTensors.Contents c = SafeTensors.readContents(zip, "adapter.zip!adapter.safetensors");
            assertThat(doubles(c.tensors().get("w"))).containsExactly(1, 2, 3, 4);
            assertThat(c.metadata()).containsEntry("k", "v");
            assertThat(zip.getNextEntry().getName()).isEqualTo("other.txt");
        }
    }

    @Test
    void readArraysLiveOutsideAnActiveWorkspace(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("w.safetensors");
        SafeTensors.write(f, Map.of("w", Nd4j.createFromArray(1f, 2f, 3f)), null);
        Map<String, INDArray> back;
        try (MemoryWorkspace ws = Nd4j.getWorkspaceManager().getAndActivateWorkspace("safetensors-test")) {
            back = SafeTensors.read(f);
            SafeTensors.write(dir.resolve("again.safetensors"), back, null);
        }
        assertThat(back.get("w").isAttached()).isFalse();
        assertThat(doubles(back.get("w"))).containsExactly(1, 2, 3);
    }

    @Test
    void writerRejectsWhatTheFormatCannotHold() throws IOException {
        Map<String, INDArray> reserved = Map.of(SafeTensors.METADATA_KEY, Nd4j.createFromArray(1f));
        assertThatThrownBy(() -> SafeTensors.toBytes(reserved, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("reserved");
        Map<String, INDArray> nullValue = new LinkedHashMap<>();
        nullValue.put("x", null);
        assertThatThrownBy(() -> SafeTensors.toBytes(nullValue, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("tensor 'x' is null");
        assertThatThrownBy(() -> SafeTensors.toBytes(Map.of("s", Nd4j.create("text")), null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("UTF8").hasMessageContaining("F32");
        assertThatThrownBy(() -> SafeTensors.toBytes(Map.of("bad\uD800", Nd4j.createFromArray(1f)), null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("unpaired surrogate");
        Map<String, String> nullMeta = new LinkedHashMap<>();
        nullMeta.put("k", null);
        assertThatThrownBy(() -> SafeTensors.toBytes(Map.of(), nullMeta))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("metadata");
    }

    @Test
    void byteReversalForBigEndianHostsSwapsEachElement() throws IOException {
        ByteBuffer b = ByteBuffer.wrap(new byte[]{1, 2, 3, 4, 5, 6, 7, 8});
        SafeTensorsDType.reverseElementBytes(b, 0, 8, 4);
        assertThat(b.array()).containsExactly(4, 3, 2, 1, 8, 7, 6, 5);
        SafeTensorsDType.reverseElementBytes(b, 0, 8, 2);
        assertThat(b.array()).containsExactly(3, 4, 1, 2, 7, 8, 5, 6);
        ByteBuffer l = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, 0x0102030405060708L);
        SafeTensorsDType.reverseElementBytes(l, 0, 8, 8);
        assertThat(l.order(ByteOrder.LITTLE_ENDIAN).getLong(0)).isEqualTo(0x0102030405060708L);
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
