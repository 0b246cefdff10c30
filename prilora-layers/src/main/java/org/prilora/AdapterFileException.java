package org.prilora;

import java.io.IOException;

/** An adapter file is truncated, corrupted or not an adapter file at all. */
public class AdapterFileException extends IOException {
    private static final long serialVersionUID = 1L;

    public AdapterFileException(String message, Throwable cause) {
        super(message, cause);
    }

    public AdapterFileException(String message) {
        super(message);
    }
}
