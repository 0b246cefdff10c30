package org.prilora.io;

import org.nd4j.linalg.api.buffer.DataType;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * The safetensors dtypes: each one's name in the header, element width and ND4J equivalent.
 *
 * <p>Declared in the reference implementation's enum order: the writer lays tensors out by
 * descending ordinal, which is what keeps every tensor aligned.
 */
enum SafeTensorsDType {
    BOOL(8, DataType.BOOL), F4(4, null), F6_E2M3(6, null), F6_E3M2(6, null),
    U8(8, DataType.UBYTE), I8(8, DataType.BYTE),
    F8_E5M2(8, null), F8_E4M3(8, null), F8_E8M0(8, null), F8_E4M3FNUZ(8, null), F8_E5M2FNUZ(8, null),
    I16(16, DataType.SHORT), U16(16, DataType.UINT16), F16(16, DataType.HALF), BF16(16, DataType.BFLOAT16),
    I32(32, DataType.INT), U32(32, DataType.UINT32), F32(32, DataType.FLOAT), C64(64, null),
    F64(64, DataType.DOUBLE), I64(64, DataType.LONG), U64(64, DataType.UINT64);

    final int bits;
    /** {@code null} where ND4J has no such type. */
    final DataType nd4j;

    SafeTensorsDType(int bits, DataType nd4j) {
        this.bits = bits;
        this.nd4j = nd4j;
    }

    /** Bytes per element; whole for every dtype that has an ND4J equivalent. */
    int elementBytes() {
        return bits / 8;
    }

    /** The dtype with this header name, or {@code null}. */
    static SafeTensorsDType parse(String name) {
        for (SafeTensorsDType d : values()) {
            if (d.name().equals(name)) {
                return d;
            }
        }
        return null;
    }

    /** Maps ND4J types (FLOAT16, INT32, ... are aliases of these constants), or returns {@code null}. */
    static SafeTensorsDType of(DataType t) {
        for (SafeTensorsDType d : values()) {
            if (d.nd4j != null && d.nd4j == t) {
                return d;
            }
        }
        return null;
    }

    /** Names of all dtypes, for error messages. */
    static String known() {
        return names(Arrays.stream(values()));
    }

    /** Names of the dtypes ND4J can hold, for error messages. */
    static String supported() {
        return names(Arrays.stream(values()).filter(d -> d.nd4j != null));
    }

    private static String names(Stream<SafeTensorsDType> dtypes) {
        return dtypes.map(Enum::name).collect(Collectors.joining(", "));
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
}
