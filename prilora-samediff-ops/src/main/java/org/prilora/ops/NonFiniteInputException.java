package org.prilora.ops;

/** Thrown when a batch's activations contain NaN or infinity; the statistics were left unchanged. */
public class NonFiniteInputException extends ArithmeticException {
    private static final long serialVersionUID = 1L;

    public NonFiniteInputException(String message) {
        super(message);
    }
}
