package org.prilora.testing;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Puts ND4J's global default data types ({@link Nd4j#dataType()} and {@link Nd4j#defaultFloatingPointType()})
 * back to what they were before each test and before each test class, so that a test which calls
 * {@code Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE)} (gradient checks need it) cannot change
 * the precision of the tests that run after it in the same JVM.
 *
 * <p>Registered for every test of every module by JUnit's extension auto-detection: each module lists this class
 * in {@code src/test/resources/META-INF/services/org.junit.jupiter.api.extension.Extension}, gets it from
 * {@code prilora-samediff-ops}'s test-jar, and the parent pom turns on
 * {@code junit.jupiter.extensions.autodetection.enabled} for Surefire. Auto-detected extensions are registered
 * first, so these callbacks wrap those of every other extension and the test's own {@code @BeforeAll}/
 * {@code @BeforeEach} and {@code @AfterEach}/{@code @AfterAll} methods: a class that sets DOUBLE in
 * {@code @BeforeAll} runs all its tests in DOUBLE (each test is restored to DOUBLE) and leaves the defaults it
 * found.
 */
public final class RestoreNd4jDefaults implements BeforeAllCallback, AfterAllCallback, BeforeEachCallback, AfterEachCallback {

    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(RestoreNd4jDefaults.class);
    private static final String KEY = "defaults";

    /** ND4J's two global defaults at one moment. */
    public record Defaults(DataType dataType, DataType floatingPointType) {

        /** The defaults now. */
        public static Defaults current() {
            return new Defaults(Nd4j.dataType(), Nd4j.defaultFloatingPointType());
        }

        /** Makes these the defaults. */
        public void apply() {
            Nd4j.setDefaultDataTypes(dataType, floatingPointType);
        }
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        save(context);
    }

    @Override
    public void afterAll(ExtensionContext context) {
        restore(context);
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        save(context);
    }

    @Override
    public void afterEach(ExtensionContext context) {
        restore(context);
    }

    private static void save(ExtensionContext context) {
        context.getStore(NAMESPACE).put(KEY, Defaults.current());
    }

    private static void restore(ExtensionContext context) {
        // remove() looks only at this context's own store, never at a parent's
        Defaults saved = context.getStore(NAMESPACE).remove(KEY, Defaults.class);
        if (saved != null && !saved.equals(Defaults.current())) {
            saved.apply();
        }
    }
}
