package org.prilora.io;

/**
 * The safetensors data ends before the header says it should: the 8-byte length prefix, the
 * header or some tensor's data is cut short. A separate type because the usual cause (an
 * interrupted download or copy) calls for a different remedy than a corrupt header.
 */
public class SafeTensorsTruncatedException extends SafeTensorsFormatException {

    private static final long serialVersionUID = 1L;

    /**
     * @param source file or stream name, or {@code null} if unknown
     * @param tensor tensor whose data is cut, or {@code null}
     * @param detail how many bytes were expected and how many were present
     */
    public SafeTensorsTruncatedException(String source, String tensor, String detail) {
        super(source, tensor, detail);
    }
}
