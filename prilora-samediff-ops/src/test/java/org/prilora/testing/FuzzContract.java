package org.prilora.testing;

import java.util.Arrays;
import java.util.concurrent.Callable;

/**
 * The contract every fuzz target checks: a reader given any input returns a result or throws one of the exceptions
 * its Javadoc documents, with a message. Anything else (an undocumented exception, an error) is rethrown unchanged,
 * so that Jazzer reports it as a finding and records the input.
 */
public final class FuzzContract {
    private FuzzContract() {
    }

    /**
     * What a reader did with one input: exactly one of the two is set.
     *
     * @param result    what it returned
     * @param rejection the documented exception it threw
     * @param <T>       the result type
     */
    public record Outcome<T>(T result, Throwable rejection) {
        /** @return whether the input was rejected */
        public boolean rejected() {
            return rejection != null;
        }
    }

    /**
     * Runs {@code call}.
     *
     * @param call       the reader under test
     * @param documented the exception types the reader documents for bad input
     * @param <T>        the result type
     * @return the result, or the documented exception
     * @throws Throwable whatever else {@code call} threw, or an {@link AssertionError} for a {@code null} result or
     *                   a documented exception without a message
     */
    @SafeVarargs
    public static <T> Outcome<T> run(Callable<T> call, Class<? extends Throwable>... documented) throws Throwable {
        T result;
        try {
            result = call.call();
        } catch (Throwable t) {
            if (Arrays.stream(documented).noneMatch(c -> c.isInstance(t))) {
                throw t;
            }
            if (t.getMessage() == null || t.getMessage().isBlank()) {
                throw new AssertionError("documented " + t.getClass().getName() + " without a message", t);
            }
            return new Outcome<>(null, t);
        }
        if (result == null) {
            throw new AssertionError("the reader returned null");
        }
        return new Outcome<>(result, null);
    }
}
