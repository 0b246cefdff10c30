package org.prilora.it.hygiene;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.ClassOrderer;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestClassOrder;
import org.junit.jupiter.api.TestMethodOrder;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.testing.RestoreNd4jDefaults;
import org.prilora.testing.RestoreNd4jDefaults.Defaults;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link RestoreNd4jDefaults} is active here with no annotation (auto-detected, from prilora-samediff-ops' test-jar):
 * ND4J's default data types changed by a test, or by a class's {@code @BeforeAll}, are back for the next test or
 * class. Without the extension (or with it restoring only per test, or only per class) one of the later-ordered
 * tests fails.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@TestClassOrder(ClassOrderer.OrderAnnotation.class)
class RestoreNd4jDefaultsTest {

    /** The defaults seen before this class ran. */
    private static Defaults before;
    /** Different from {@link #before} in both types. */
    private static Defaults changed;

    @BeforeAll
    static void seeTheDefaults() {
        before = Defaults.current();
        changed = new Defaults(other(before.dataType()), other(before.floatingPointType()));
    }

    private static DataType other(DataType t) {
        return t == DataType.DOUBLE ? DataType.FLOAT : DataType.DOUBLE;
    }

    @Test
    @Order(1)
    void aTestChangesTheDefaults() {
        changed.apply();
        assertThat(Nd4j.dataType()).isEqualTo(changed.dataType()).isNotEqualTo(before.dataType());
        assertThat(Nd4j.defaultFloatingPointType()).isEqualTo(changed.floatingPointType()).isNotEqualTo(before.floatingPointType());
    }

    @Test
    @Order(2)
    void theNextTestSeesThemRestored() {
        assertThat(Defaults.current()).isEqualTo(before);
    }

    @Nested
    @Order(1)
    @TestMethodOrder(MethodOrderer.OrderAnnotation.class)
    class AClassChangesTheDefaultsInBeforeAll {

        @BeforeAll
        static void change() {
            changed.apply();
        }

        @Test
        @Order(1)
        void itsTestsRunWithTheChangedDefaults() {
            assertThat(Defaults.current()).isEqualTo(changed);
            before.apply(); // undone after this test: back to the class's defaults, not to the ones outside it
        }

        @Test
        @Order(2)
        void evenAfterATestThatChangedThemAgain() {
            assertThat(Defaults.current()).isEqualTo(changed);
        }
    }

    @Nested
    @Order(2)
    class TheNextClass {

        @Test
        void seesTheDefaultsFromBeforeTheChangedClass() {
            assertThat(Defaults.current()).isEqualTo(before);
        }
    }
}
