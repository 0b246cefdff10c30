package org.prilora.serving;

/** A request names an adapter id that is not registered (the message lists the registered ids). */
public class UnknownAdapterException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    private final String adapterId;

    public UnknownAdapterException(String adapterId, String message) {
        super(message);
        this.adapterId = adapterId;
    }

    /** The id that is not registered. */
    public String adapterId() {
        return adapterId;
    }
}
