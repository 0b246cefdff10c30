package org.prilora.io;

import org.nd4j.linalg.api.concurrency.AffinityManager;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.shade.jackson.core.JsonEncoding;
import org.nd4j.shade.jackson.core.JsonGenerator;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Serialises ND4J arrays as safetensors, byte-identical to the reference writer: {@link #prepare}
 * validates everything and builds the header, then {@link #writeTo} streams it and the data.
 */
final class SafeTensorsWriter {

    private static final int HEADER_ALIGNMENT = 8;

    private SafeTensorsWriter() {
    }

    /** One tensor to write, {@code nbytes} long. */
    record Item(String name, SafeTensorsDType dtype, long[] shape, INDArray array, long nbytes) {
    }

    /** A validated, padded header and the tensors in the order of their offsets. */
    record Prepared(byte[] header, List<Item> items, long dataLength) {
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
    static Prepared prepare(Map<String, INDArray> tensors, Map<String, String> metadata) {
        Objects.requireNonNull(tensors, "tensors");
        List<Item> items = new ArrayList<>(tensors.size());
        for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
            String name = e.getKey();
            INDArray a = e.getValue();
            if (name == null) {
                throw new IllegalArgumentException("tensor names must not be null");
            }
            if (SafeTensors.METADATA_KEY.equals(name)) {
                throw new IllegalArgumentException("\"" + SafeTensors.METADATA_KEY
                        + "\" is reserved for metadata and cannot name a tensor");
            }
            requireUnicode(name, "tensor name");
            if (a == null) {
                throw new IllegalArgumentException("tensor '" + name + "' is null");
            }
            SafeTensorsDType dtype = SafeTensorsDType.of(a.dataType());
            if (dtype == null) {
                throw new IllegalArgumentException("tensor '" + name + "' has ND4J data type " + a.dataType()
                        + ", which safetensors cannot store; supported: " + SafeTensorsDType.supported());
            }
            long[] shape = a.shape().clone();
            long nbytes = Math.multiplyExact(a.length(), (long) dtype.elementBytes());
            if (nbytes > SafeTensors.MAX_TENSOR_BYTES) {
                throw new IllegalArgumentException("tensor '" + name + "' has " + nbytes + " bytes; at most "
                        + SafeTensors.MAX_TENSOR_BYTES + " bytes per tensor are supported");
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
        try (JsonGenerator g = SafeTensorsHeader.JSON.createGenerator(json, JsonEncoding.UTF8)) {
            g.writeStartObject();
            if (metadata != null) {
                g.writeObjectFieldStart(SafeTensors.METADATA_KEY);
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
        if (json.size() > SafeTensors.MAX_HEADER_BYTES) {
            throw new IllegalArgumentException("header would be " + json.size() + " bytes; readers refuse more than "
                    + SafeTensors.MAX_HEADER_BYTES);
        }
        return new Prepared(json.toByteArray(), items, offset);
    }

    static void writeTo(WritableByteChannel ch, Prepared p) throws IOException {
        ByteBuffer prefix = ByteBuffer.allocate(SafeTensorsHeader.PREFIX_BYTES).order(ByteOrder.LITTLE_ENDIAN);
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
                    SafeTensorsDType.reverseElementBytes(copy, 0, copy.limit(), it.dtype().elementBytes());
                    bytes = copy;
                }
                writeFully(ch, bytes);
                // asNio() does not keep the array alive; its native memory must outlive the write.
                Reference.reachabilityFence(c);
            }
        }
    }

    /** Runs {@link #prepare} and {@link #writeTo} into a byte array. */
    static byte[] toBytes(Map<String, INDArray> tensors, Map<String, String> metadata) {
        Prepared prepared = prepare(tensors, metadata);
        long total = SafeTensorsHeader.PREFIX_BYTES + prepared.header().length + prepared.dataLength();
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

    private static boolean isDenseC(INDArray a) {
        return !a.isView() && a.offset() == 0 && a.data().offset() == 0 && a.ordering() == 'c'
                && Shape.hasDefaultStridesForShape(a) && a.data().length() == a.length();
    }

    private static void writeFully(WritableByteChannel ch, ByteBuffer src) throws IOException {
        while (src.hasRemaining()) {
            ch.write(src);
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
