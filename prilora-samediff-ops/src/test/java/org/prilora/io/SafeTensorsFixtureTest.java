package org.prilora.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.prilora.io.SafeTensorsTestFiles.doubles;
import static org.prilora.io.SafeTensorsTestFiles.fixture;
import static org.prilora.io.SafeTensorsTestFiles.longs;

/**
 * Reads files produced by the independent Python writer (tools/safetensors-fixtures) and checks
 * that the Java writer reproduces them byte for byte. Expected values are spelled out here, not
 * taken from the script.
 */
class SafeTensorsFixtureTest {

    private static final double TWO_POW_MINUS_24 = Math.pow(2, -24);

    /** The metadata of mixed.safetensors, in header order. */
    private static Map<String, String> mixedMetadata() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("format", "pt");
        m.put("prilora.rank", "8");
        m.put("note", "ünïcödé ✓ \"quoted\"");
        return m;
    }

    /** The tensors of mixed.safetensors, deliberately in an order unlike the file's. */
    private static Map<String, INDArray> mixedTensors() {
        Map<String, INDArray> t = new LinkedHashMap<>();
        t.put("weight", Nd4j.createFromArray(new float[][]{{-1f, -0.5f, 0f}, {0.5f, 1f, 1.5f}}));
        t.put("half", Nd4j.createFromArray(new float[][]{{1f, -0.5f}, {65504f, (float) TWO_POW_MINUS_24}}).castTo(DataType.HALF));
        t.put("bias", Nd4j.createFromArray(1.0 / 3.0, -2.5, 1e-300, 12345.678));
        t.put("ids", Nd4j.createFromArray(new long[][]{{0, -1}, {(1L << 40) + 7, -(1L << 62)}}));
        t.put("scale", Nd4j.scalar(DataType.FLOAT, 0.125f));
        t.put("empty", Nd4j.create(DataType.FLOAT, 0, 3));
        t.put("counts", Nd4j.createFromArray(Integer.MIN_VALUE, 0, Integer.MAX_VALUE));
        t.put("bf", Nd4j.createFromArray(1f, -2.5f, 3.140625f).castTo(DataType.BFLOAT16));
        return t;
    }

    private static Map<String, INDArray> allTypesTensors() {
        Map<String, INDArray> t = new LinkedHashMap<>();
        t.put("bool", Nd4j.createFromArray(true, false, false, true));
        t.put("u8", Nd4j.createFromArray(0, 127, 255).castTo(DataType.UBYTE));
        t.put("i8", Nd4j.createFromArray(new byte[]{-128, 0, 127}));
        t.put("i16", Nd4j.createFromArray(new short[]{-32768, 32767}));
        t.put("u16", Nd4j.createFromArray(0, 65535).castTo(DataType.UINT16));
        t.put("u32", Nd4j.createFromArray(0L, 4294967295L).castTo(DataType.UINT32));
        t.put("u64", Nd4j.createFromArray(0L, Long.MAX_VALUE).castTo(DataType.UINT64));
        return t;
    }

    @Test
    void readsEveryValueDtypeAndShapeOfTheMixedFixture() throws IOException {
        SafeTensors.Contents c = SafeTensors.readContents(fixture("mixed.safetensors"));
        Map<String, INDArray> t = c.tensors();

        // file order = offset order = reference writer order (dtype rank desc, then name)
        assertThat(t.keySet()).containsExactly("ids", "bias", "empty", "scale", "weight", "counts", "bf", "half");

        assertThat(t.get("ids").dataType()).isEqualTo(DataType.LONG);
        assertThat(t.get("ids").shape()).containsExactly(2, 2);
        assertThat(longs(t.get("ids"))).containsExactly(0, -1, (1L << 40) + 7, -(1L << 62));

        assertThat(t.get("bias").dataType()).isEqualTo(DataType.DOUBLE);
        assertThat(t.get("bias").shape()).containsExactly(4);
        assertThat(doubles(t.get("bias"))).containsExactly(1.0 / 3.0, -2.5, 1e-300, 12345.678);

        assertThat(t.get("empty").dataType()).isEqualTo(DataType.FLOAT);
        assertThat(t.get("empty").shape()).containsExactly(0, 3);
        assertThat(t.get("empty").isEmpty()).isTrue();

        assertThat(t.get("scale").dataType()).isEqualTo(DataType.FLOAT);
        assertThat(t.get("scale").rank()).isZero();
        assertThat(t.get("scale").getDouble(0)).isEqualTo(0.125);

        assertThat(t.get("weight").dataType()).isEqualTo(DataType.FLOAT);
        assertThat(t.get("weight").shape()).containsExactly(2, 3);
        assertThat(t.get("weight").ordering()).isEqualTo('c');
        assertThat(doubles(t.get("weight"))).containsExactly(-1, -0.5, 0, 0.5, 1, 1.5);
        assertThat(t.get("weight").getDouble(1, 0)).isEqualTo(0.5); // row-major

        assertThat(t.get("counts").dataType()).isEqualTo(DataType.INT);
        assertThat(longs(t.get("counts"))).containsExactly(Integer.MIN_VALUE, 0, Integer.MAX_VALUE);

        assertThat(t.get("bf").dataType()).isEqualTo(DataType.BFLOAT16);
        assertThat(doubles(t.get("bf"))).containsExactly(1.0, -2.5, 3.140625);

        assertThat(t.get("half").dataType()).isEqualTo(DataType.HALF);
        assertThat(t.get("half").shape()).containsExactly(2, 2);
        assertThat(doubles(t.get("half"))).containsExactly(1.0, -0.5, 65504.0, TWO_POW_MINUS_24);

        assertThat(c.metadata()).containsExactlyEntriesOf(mixedMetadata());
        assertThat(SafeTensors.readMetadata(fixture("mixed.safetensors"))).containsExactlyEntriesOf(mixedMetadata());
    }

    @Test
    void readsTheRemainingIntegerAndBoolDtypesAtTheirExtremes() throws IOException {
        Map<String, INDArray> t = SafeTensors.read(fixture("alltypes.safetensors"));
        assertThat(t.keySet()).containsExactly("u64", "u32", "u16", "i16", "i8", "u8", "bool");
        assertThat(t.get("u64").dataType()).isEqualTo(DataType.UINT64);
        assertThat(longs(t.get("u64"))).containsExactly(0, Long.MAX_VALUE);
        assertThat(t.get("u32").dataType()).isEqualTo(DataType.UINT32);
        assertThat(longs(t.get("u32"))).containsExactly(0, 4294967295L);
        assertThat(t.get("u16").dataType()).isEqualTo(DataType.UINT16);
        assertThat(longs(t.get("u16"))).containsExactly(0, 65535);
        assertThat(t.get("i16").dataType()).isEqualTo(DataType.SHORT);
        assertThat(longs(t.get("i16"))).containsExactly(-32768, 32767);
        assertThat(t.get("i8").dataType()).isEqualTo(DataType.BYTE);
        assertThat(longs(t.get("i8"))).containsExactly(-128, 0, 127);
        assertThat(t.get("u8").dataType()).isEqualTo(DataType.UBYTE);
        assertThat(longs(t.get("u8"))).containsExactly(0, 127, 255);
        assertThat(t.get("bool").dataType()).isEqualTo(DataType.BOOL);
        assertThat(longs(t.get("bool"))).containsExactly(1, 0, 0, 1);
        assertThat(SafeTensors.readMetadata(fixture("alltypes.safetensors"))).isEmpty();
    }

    @Test
    void acceptsAnUnpaddedUnorderedPrettyPrintedLayoutWithUnknownFields() throws IOException {
        Path f = fixture("unordered.safetensors");
        long headerLength = ByteBuffer.wrap(Files.readAllBytes(f), 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertThat(headerLength % 8).isNotZero(); // deliberately unpadded
        Map<String, INDArray> t = SafeTensors.read(f);
        assertThat(t.keySet()).containsExactly("b", "a", "c", "z"); // by offset, not header order
        assertThat(t.get("b").dataType()).isEqualTo(DataType.HALF);
        assertThat(doubles(t.get("b"))).containsExactly(0.5, -1.0, 2.0);
        assertThat(t.get("a").dataType()).isEqualTo(DataType.DOUBLE);
        assertThat(doubles(t.get("a"))).containsExactly(-0.25, 1e10); // at the misaligned offset 6
        assertThat(t.get("c").dataType()).isEqualTo(DataType.INT);
        assertThat(t.get("c").rank()).isZero();
        assertThat(t.get("c").getInt(0)).isEqualTo(42);
        assertThat(t.get("z").dataType()).isEqualTo(DataType.UBYTE);
        assertThat(t.get("z").shape()).containsExactly(0);
        assertThat(SafeTensors.readMetadata(f)).isEmpty();
    }

    @Test
    void readsAFileWithoutTensors() throws IOException {
        SafeTensors.Contents c = SafeTensors.readContents(fixture("empty.safetensors"));
        assertThat(c.tensors()).isEmpty();
        assertThat(c.metadata()).isEmpty();
    }

    @Test
    void streamAndByteArrayReadersAgreeWithTheFileReader() throws IOException {
        byte[] bytes = Files.readAllBytes(fixture("mixed.safetensors"));
        Map<String, INDArray> fromFile = SafeTensors.read(fixture("mixed.safetensors"));
        Map<String, INDArray> fromBytes = SafeTensors.fromBytes(bytes, "mixed");
        Map<String, INDArray> fromStream;
        try (InputStream in = Files.newInputStream(fixture("mixed.safetensors"))) {
            fromStream = SafeTensors.read(in, "mixed");
        }
        assertThat(fromBytes.keySet()).containsExactlyElementsOf(fromFile.keySet());
        assertThat(fromStream.keySet()).containsExactlyElementsOf(fromFile.keySet());
        for (String k : fromFile.keySet()) {
            assertThat(fromBytes.get(k)).as(k).isEqualTo(fromFile.get(k));
            assertThat(fromStream.get(k)).as(k).isEqualTo(fromFile.get(k));
        }
    }

    @Test
    void javaWriterReproducesThePythonFixturesByteForByte(@TempDir Path dir) throws IOException {
        assertThat(SafeTensors.toBytes(mixedTensors(), mixedMetadata()))
                .isEqualTo(Files.readAllBytes(fixture("mixed.safetensors")));
        assertThat(SafeTensors.toBytes(allTypesTensors(), null))
                .isEqualTo(Files.readAllBytes(fixture("alltypes.safetensors")));
        assertThat(SafeTensors.toBytes(Map.of(), null))
                .isEqualTo(Files.readAllBytes(fixture("empty.safetensors")));

        Path out = dir.resolve("mixed.safetensors");
        SafeTensors.write(out, mixedTensors(), mixedMetadata());
        assertThat(Files.readAllBytes(out)).isEqualTo(Files.readAllBytes(fixture("mixed.safetensors")));

        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        SafeTensors.write(stream, mixedTensors(), mixedMetadata());
        assertThat(stream.toByteArray()).isEqualTo(Files.readAllBytes(fixture("mixed.safetensors")));
    }

    @Test
    void rewritingWhatWasReadReproducesTheFile() throws IOException {
        SafeTensors.Contents c = SafeTensors.readContents(fixture("mixed.safetensors"));
        assertThat(SafeTensors.toBytes(c.tensors(), c.metadata()))
                .isEqualTo(Files.readAllBytes(fixture("mixed.safetensors")));
    }
}
