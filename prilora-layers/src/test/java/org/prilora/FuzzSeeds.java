package org.prilora;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where the fuzz tests' committed inputs live ({@code src/test/resources/<package>/<TestClass>Inputs/<method>/}, the
 * directory Jazzer replays and adds its findings to) and how their seeds are (re)written. Each fuzz test class has a
 * {@code writeSeeds} test, enabled by {@value #WRITE_PROPERTY}: run from the module directory, e.g.
 * {@code mvn -pl prilora-layers -am test -Dtest='*FuzzTest#writeSeeds' -Dprilora.fuzz.writeSeeds=true
 * -Dsurefire.failIfNoSpecifiedTests=false}.
 */
public final class FuzzSeeds {
    /** The system property that enables the {@code writeSeeds} tests. */
    public static final String WRITE_PROPERTY = "prilora.fuzz.writeSeeds";

    private FuzzSeeds() {
    }

    /** A committed input of {@code test}'s fuzz test {@code method}, from the test classpath. */
    public static Path input(Class<?> test, String method, String name) {
        URL url = test.getResource(test.getSimpleName() + "Inputs/" + method + "/" + name);
        if (url == null) {
            throw new IllegalStateException("missing fuzz input " + test.getSimpleName() + "Inputs/" + method + "/" + name);
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Writes a seed into the source tree (the working directory must be the module's). */
    public static void write(Class<?> test, String method, String name, byte[] bytes) throws Exception {
        Path dir = Path.of("src", "test", "resources", test.getPackageName().replace('.', '/'), test.getSimpleName() + "Inputs", method);
        Files.createDirectories(dir);
        Files.write(dir.resolve(name), bytes);
    }
}
