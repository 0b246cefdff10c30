package org.prilora.io;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.ByteArrayOutputStream;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** Shared helpers: fixture lookup and hand-built files for the safetensors tests. */
final class SafeTensorsTestFiles {

    private SafeTensorsTestFiles() {
    }

    /** A file from src/test/resources/safetensors (written by tools/safetensors-fixtures/make_fixtures.py). */
    static Path fixture(String name) {
        URL url = SafeTensorsTestFiles.class.getResource("/safetensors/" + name);
        if (url == null) {
            throw new IllegalStateException("missing test resource safetensors/" + name);
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static byte[] le64(long v) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array();
    }

    /** prefix(header length) + header (UTF-8, unpadded) + data: a file exactly as written. */
    static byte[] file(String headerJson, byte[] data) {
        byte[] h = headerJson.getBytes(StandardCharsets.UTF_8);
        return concat(le64(h.length), h, data);
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    static byte[] f32le(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            b.putFloat(f);
        }
        return b.array();
    }

    /** Values in C order via ND4J's own indexing (independent of the writer's buffer access). */
    static double[] doubles(INDArray a) {
        INDArray flat = a.reshape('c', new long[]{a.length()});
        double[] out = new double[(int) a.length()];
        for (int i = 0; i < out.length; i++) {
            out[i] = flat.getDouble(i);
        }
        return out;
    }

    static long[] longs(INDArray a) {
        INDArray flat = a.reshape('c', new long[]{a.length()});
        long[] out = new long[(int) a.length()];
        for (int i = 0; i < out.length; i++) {
            out[i] = flat.getLong(i);
        }
        return out;
    }
}
