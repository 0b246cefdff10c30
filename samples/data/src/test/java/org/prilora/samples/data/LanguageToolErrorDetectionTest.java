package org.prilora.samples.data;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Error spans, cleaning and the split of the error-detection data: a hand-written snippet and the real file. */
class LanguageToolErrorDetectionTest {

    private static final String SNIPPET = """
            <?xml version="1.0" encoding="UTF-8"?>
            <rules lang="en">
              <category id="C" name="c">
                <rule id="GO" name="g">
                  <pattern><token>go</token></pattern>
                  <message>m</message>
                  <example correction="went|goes">He <marker>go</marker>   home
                      yesterday.</example>
                  <example correction="a lot">I like it <marker> alot </marker>.</example>
                  <example correction="I">Yesterday <marker>i</marker> went home.</example>
                  <example correction="x"><marker> </marker>Only space marked.</example>
                  <example>They went home.</example>
                  <example correction="went">He <marker>go</marker> home yesterday.</example>
                </rule>
              </category>
            </rules>
            """;

    @Test
    void wrongSentencesGetTheirMarkerSpanAndPartnersNone() {
        LanguageToolErrorDetection.Data d = LanguageToolErrorDetection.fromXml(
                new ByteArrayInputStream(SNIPPET.getBytes(StandardCharsets.UTF_8)), "snippet");
        List<ErrorDetectionExample> all = new ArrayList<>(d.train());
        all.addAll(d.dev());
        all.addAll(d.test());
        assertThat(all).extracting(ErrorDetectionExample::sentence).containsExactlyInAnyOrder(
                "He go home yesterday.", "He went home yesterday.", "I like it alot .", "I like it a lot.");
        ErrorDetectionExample go = all.stream().filter(e -> e.sentence().startsWith("He go")).findFirst().orElseThrow();
        assertThat(go.errorText()).isEqualTo("go");
        assertThat(go.errorStart()).isEqualTo(3);
        ErrorDetectionExample alot = all.stream().filter(e -> e.sentence().endsWith("alot .")).findFirst().orElseThrow();
        assertThat(alot.errorText()).isEqualTo("alot");   // the marker's white space is trimmed
        assertThat(all.stream().filter(e -> !e.hasError())).allMatch(e -> e.errorStart() == -1);
        // the "i" -> "I" pair differs only in case, the marker of white space marks nothing, the second "He go" is a duplicate
        assertThat(d.wrongExamples()).isEqualTo(5);
        assertThat(d.droppedExamples()).isEqualTo(2);
        assertThat(d.duplicates()).isEqualTo(2);
    }

    @Test
    void theRealFileKeepsEveryPairInOneSplitLikeTheAcceptabilityData() {
        LanguageToolErrorDetection.Data d = LanguageToolErrorDetection.load();
        Map<String, String> splitOfGroup = new HashMap<>();
        int errors = 0;
        int total = 0;
        for (var split : List.of(d.train(), d.dev(), d.test())) {
            for (ErrorDetectionExample e : split) {
                String name = split == d.train() ? "train" : split == d.dev() ? "dev" : "test";
                assertThat(splitOfGroup.merge(e.groupId(), name, (a, b) -> a.equals(b) ? a : a + "+" + b)).isEqualTo(name);
                assertThat(LanguageToolAcceptability.splitOf(e.groupId()).name().toLowerCase()).isEqualTo(name);
                if (e.hasError()) {
                    errors++;
                    assertThat(e.errorText()).isNotBlank().isEqualTo(e.errorText().strip());
                }
                total++;
            }
        }
        assertThat(d.train().size()).isGreaterThan(8 * d.dev().size() / 2);
        assertThat(errors).isBetween(total / 3, 2 * total / 3);   // pairs: about half the sentences have an error
        // the acceptability data's wrong sentences are exactly this task's wrong sentences
        AcceptabilityData acc = LanguageToolAcceptability.load();
        long accWrong = acc.train().stream().filter(e -> !e.acceptable()).count();
        long gedWrong = d.train().stream().filter(ErrorDetectionExample::hasError).count();
        assertThat((double) gedWrong).isCloseTo(accWrong, org.assertj.core.data.Percentage.withPercentage(3));
    }
}
