package org.prilora.samples.finetune;

import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;

/** The one form of a bad-option message: the option, the value given and what is allowed. */
final class OptionChecks {

    private OptionChecks() {
    }

    /**
     * @throws ParameterException {@code Invalid value for option '<option>': <value> (allowed: <allowed>)} unless ok
     */
    static void check(CommandSpec spec, boolean ok, String option, Object value, String allowed) {
        if (!ok) {
            throw new ParameterException(spec.commandLine(), "Invalid value for option '" + option + "': " + value
                    + " (allowed: " + allowed + ")");
        }
    }
}
