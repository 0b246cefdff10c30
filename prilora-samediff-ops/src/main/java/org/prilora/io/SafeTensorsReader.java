package org.prilora.io;

import org.nd4j.linalg.api.concurrency.AffinityManager;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.io.SafeTensorsHeader.Entry;
import org.prilora.io.SafeTensorsHeader.Header;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ReadableByteChannel;
import java.util.LinkedHashMap;
import java.util.Map;

/** Loads the tensors of a safetensors file, after its header has been validated, into ND4J arrays. */
final class SafeTensorsReader {

    private static final int MAX_ND4J_RANK = 32;

    private SafeTensorsReader() {
    }

    /**
     * Reads a whole file from {@code ch}.
     *
     * @param size the file size, or -1 for a stream, which is then read to its end
     */
    static SafeTensors.Contents read(ReadableByteChannel ch, long size, String source) throws IOException {
        Header h = SafeTensorsHeader.read(ch, size, source);
        for (Entry e : h.entries()) { // refuse before allocating anything
            if (e.dtype().nd4j == null) {
                throw new SafeTensorsFormatException(source, e.name(), "dtype " + e.dtype()
                        + " is a valid safetensors dtype but ND4J has no equivalent; loadable dtypes: "
                        + SafeTensorsDType.supported());
            }
            if (e.shape().length > MAX_ND4J_RANK) {
                throw new SafeTensorsFormatException(source, e.name(), "rank " + e.shape().length
                        + " exceeds ND4J's maximum rank " + MAX_ND4J_RANK);
            }
            if (e.nbytes() > SafeTensors.MAX_TENSOR_BYTES) {
                throw new SafeTensorsFormatException(source, e.name(), "tensor holds " + e.nbytes()
                        + " bytes; this reader supports at most " + SafeTensors.MAX_TENSOR_BYTES + " bytes per tensor");
            }
        }
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            for (Entry e : h.entries()) {
                tensors.put(e.name(), readTensor(ch, e, source));
            }
        }
        if (size < 0 && SafeTensorsHeader.readFully(ch, ByteBuffer.allocate(1)) > 0) {
            throw new SafeTensorsFormatException(source, null, "unexpected bytes after the last tensor: the header's"
                    + " data_offsets cover " + h.dataLength() + " data bytes but the stream continues");
        }
        return new SafeTensors.Contents(tensors, h.metadata());
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
        int got = SafeTensorsHeader.readFully(ch, dst);
        if (got < e.nbytes()) {
            throw new SafeTensorsTruncatedException(source, e.name(), "file is truncated: data ended after " + got + " of "
                    + e.nbytes() + " bytes of this tensor (data_offsets " + e.offsets() + ")");
        }
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            SafeTensorsDType.reverseElementBytes(dst, 0, (int) e.nbytes(), e.dtype().elementBytes());
        }
        // On device backends the host copy was written directly; tell ND4J which copy is current.
        Nd4j.getAffinityManager().tagLocation(arr, AffinityManager.Location.HOST);
        return arr;
    }
}
