package org.prilora;

import java.util.List;

/**
 * An adapter file or PEFT directory does not fit the network it is loaded into. {@link #mismatches()} lists
 * every problem found (not just the first); the network passed in was not modified.
 */
public class AdapterMismatchException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final List<String> mismatches;

    public AdapterMismatchException(String source, List<String> mismatches) {
        super(source + " does not fit this network (" + mismatches.size() + " problem" + (mismatches.size() == 1 ? "" : "s")
                + "):\n  - " + String.join("\n  - ", mismatches));
        this.mismatches = List.copyOf(mismatches);
    }

    public List<String> mismatches() {
        return mismatches;
    }
}
