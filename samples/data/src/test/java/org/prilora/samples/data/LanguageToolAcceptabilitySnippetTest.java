package org.prilora.samples.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.zip.CRC32;
import org.junit.jupiter.api.Test;

/** Parsing, cleaning and split rules on hand-written inputs, through the same code path as the real file. */
class LanguageToolAcceptabilitySnippetTest {

    private static final String SNIPPET = """
            <?xml version="1.0" encoding="UTF-8"?>
            <!DOCTYPE rules [
                <!ENTITY nbsp "&#x00A0;">
                <!ENTITY their_word "their">
            ]>
            <rules lang="en">
              <category id="C" name="c">
                <rulegroup id="GRP" name="g">
                  <rule>
                    <pattern><token>go</token></pattern>
                    <message>m</message>
                    <example correction="went|goes">He <marker>go</marker> home
                        yesterday.</example>
                    <example>They    went home.</example>
                    <example type="triggers_error">This one is left out.</example>
                  </rule>
                  <rule>
                    <antipattern><token>x</token><example>They like &their_word; dog.</example></antipattern>
                    <pattern><token>i</token></pattern>
                    <message>m</message>
                    <example correction="I">Yesterday <marker>i</marker> went home.</example>
                    <example correction="">Nothing <marker>to</marker> fix.</example>
                  </rule>
                </rulegroup>
                <rule id="SINGLE" name="s">
                  <pattern><token>km</token></pattern>
                  <message>m</message>
                  <example correction="5&nbsp;km">Distance <marker>5km</marker>.</example>
                  <example>They went home.</example>
                </rule>
              </category>
            </rules>
            """;

    private static AcceptabilityData parse(String xml) {
        return LanguageToolAcceptability.fromXml(new ByteArrayInputStream(xml.getBytes(StandardCharsets.UTF_8)),
                "snippet");
    }

    private static AcceptabilityExample ex(String sentence, int label, String pairedCorrect, String rule) {
        return new AcceptabilityExample(sentence, label, LanguageToolAcceptability.groupIdOf(pairedCorrect), rule);
    }

    @Test
    void snippetGivesExactlyTheExpectedExamples() {
        AcceptabilityData data = parse(SNIPPET);

        assertThat(data.all()).containsExactlyInAnyOrder(
                // marker removed; first alternative of "went|goes" applied; newline + indent collapsed
                ex("He go home yesterday.", 0, "He went home yesterday.", "GRP[1]"),
                ex("He went home yesterday.", 1, "He went home yesterday.", "GRP[1]"),
                ex("They went home.", 1, "They went home.", "GRP[1]"),
                // antipattern example is a correct sentence; internal entity &their_word; expanded
                ex("They like their dog.", 1, "They like their dog.", "GRP[2]"),
                // &nbsp; in the correction expands to U+00A0, then becomes a plain space
                ex("Distance 5km.", 0, "Distance 5 km.", "SINGLE"),
                ex("Distance 5 km.", 1, "Distance 5 km.", "SINGLE"));

        AcceptabilityData.Counts c = data.counts();
        assertThat(c.sourceExamples()).isEqualTo(8);
        assertThat(c.incorrectExamples()).isEqualTo(4);
        assertThat(c.correctExamples()).isEqualTo(3);
        assertThat(c.typedExamples()).isEqualTo(1);
        assertThat(c.emptyCorrection()).isEqualTo(1);
        assertThat(c.caseOrPunctuationOnly()).isEqualTo(1); // "i" -> "I"
        assertThat(c.duplicates()).isEqualTo(1); // second "They went home."
        assertThat(c.conflictingTexts()).isZero();
        assertThat(c.badMarker()).isZero();
        assertThat(c.identicalCorrection()).isZero();

        for (AcceptabilityExample e : data.all()) {
            assertThat(data.get(LanguageToolAcceptability.splitOf(e.groupId()))).contains(e);
        }
    }

    @Test
    void textSeenWithBothLabelsIsDroppedEverywhere() {
        String xml = """
                <rules>
                  <rule id="A"><example correction="went">He <marker>go</marker> home.</example></rule>
                  <rule id="B"><example>He go home.</example><example>He go home.</example></rule>
                </rules>
                """;
        AcceptabilityData data = parse(xml);
        assertThat(data.all()).containsExactly(ex("He went home.", 1, "He went home.", "A"));
        assertThat(data.counts().conflictingTexts()).isEqualTo(1);
        assertThat(data.counts().conflictingCopies()).isEqualTo(3);
        assertThat(data.counts().duplicates()).isZero();
    }

    @Test
    void wrongExampleWithoutMarkerOrUnchangedByCorrectionIsDropped() {
        String xml = """
                <rules><rule id="A">
                  <example correction="went">He go home.</example>
                  <example correction="go">He <marker>go</marker> home.</example>
                </rule></rules>
                """;
        AcceptabilityData data = parse(xml);
        assertThat(data.all()).isEmpty();
        assertThat(data.counts().badMarker()).isEqualTo(1);
        assertThat(data.counts().identicalCorrection()).isEqualTo(1);
    }

    @Test
    void externalEntitiesAndDtdsAreRefused() {
        String externalEntity = """
                <?xml version="1.0"?>
                <!DOCTYPE rules [<!ENTITY ext SYSTEM "file:///etc/hostname">]>
                <rules><rule id="R"><example>&ext;</example></rule></rules>
                """;
        String externalDtd = """
                <?xml version="1.0"?>
                <!DOCTYPE rules SYSTEM "http://example.invalid/rules.dtd">
                <rules><rule id="R"><example>x</example></rule></rules>
                """;
        assertThatThrownBy(() -> parse(externalEntity)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("snippet").hasMessageContaining("refused: file:///etc/hostname");
        assertThatThrownBy(() -> parse(externalDtd)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("refused: http://example.invalid/rules.dtd");
    }

    @Test
    void undeclaredEntityFailsWithSourceName() {
        assertThatThrownBy(() -> parse("<rules><rule id=\"R\"><example>&nope;</example></rule></rules>"))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("snippet").hasMessageContaining("nope");
    }

    @Test
    void caseOrPunctuationPredicateOnHandExamples() {
        assertThat(LanguageToolAcceptability.differsOnlyInCaseOrPunctuation("i went home.", "I went home.")).isTrue();
        assertThat(LanguageToolAcceptability.differsOnlyInCaseOrPunctuation("Its raining.", "It's raining.")).isTrue();
        assertThat(LanguageToolAcceptability.differsOnlyInCaseOrPunctuation("Hello world", "Hello, world!")).isTrue();
        assertThat(LanguageToolAcceptability.differsOnlyInCaseOrPunctuation("a peer review", "a peer-review")).isTrue();
        assertThat(LanguageToolAcceptability.differsOnlyInCaseOrPunctuation("It is a cafe.", "It is a café.")).isTrue();
        assertThat(LanguageToolAcceptability.differsOnlyInCaseOrPunctuation("We’re", "we're")).isTrue();

        assertThat(LanguageToolAcceptability.differsOnlyInCaseOrPunctuation("He go home.", "He went home.")).isFalse();
        assertThat(LanguageToolAcceptability.differsOnlyInCaseOrPunctuation("I have alot.", "I have a lot.")).isFalse();
        assertThat(LanguageToolAcceptability.differsOnlyInCaseOrPunctuation("a apple", "an apple")).isFalse();
    }

    @Test
    void whitespaceNormalisationCoversUnicodeSpaces() {
        assertThat(LanguageToolAcceptability.normalizeWhitespace("  a\u00A0 b\t\n c\u2009d  ")).isEqualTo("a b c d");
    }

    @Test
    void splitIsCrc32OfGroupIdInPercentBuckets() {
        for (String id : List.of("0123456789abcdef", "x", "", "GRP[1]", "ffffffffffffffff")) {
            CRC32 crc = new CRC32();
            crc.update(id.getBytes(StandardCharsets.UTF_8));
            long bucket = crc.getValue() % 100;
            LanguageToolAcceptability.Split expected = bucket < 80 ? LanguageToolAcceptability.Split.TRAIN
                    : bucket < 90 ? LanguageToolAcceptability.Split.DEV : LanguageToolAcceptability.Split.TEST;
            assertThat(LanguageToolAcceptability.splitOf(id)).as(id).isEqualTo(expected);
        }
        // group ids depend on the acceptable sentence's content only (case, accents, spacing folded)
        assertThat(LanguageToolAcceptability.groupIdOf("They  went home."))
                .isEqualTo(LanguageToolAcceptability.groupIdOf("they went home."))
                .hasSize(16);
    }

    @Test
    void exampleRejectsBadLabelAndBlankSentence() {
        assertThatThrownBy(() -> new AcceptabilityExample("ok", 2, "g", "R"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("got 2");
        assertThatThrownBy(() -> new AcceptabilityExample(" ", 1, "g", "R"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("blank");
    }
}
