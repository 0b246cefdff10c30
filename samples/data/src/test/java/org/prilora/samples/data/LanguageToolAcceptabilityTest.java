package org.prilora.samples.data;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.InputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The data set built from the real grammar.xml of org.languagetool:language-en:6.6. */
class LanguageToolAcceptabilityTest {

    private static AcceptabilityData data;

    @BeforeAll
    static void load() {
        data = LanguageToolAcceptability.load();
        System.out.print(data.summary());
    }

    @Test
    void loadsARealSizedDataSetWithBothLabelsInEverySplit() {
        assertThat(data.size()).isGreaterThan(20_000);
        for (LanguageToolAcceptability.Split split : LanguageToolAcceptability.Split.values()) {
            List<AcceptabilityExample> examples = data.get(split);
            int acceptable = AcceptabilityData.countAcceptable(examples);
            assertThat(acceptable).as(split + " acceptable").isGreaterThan(examples.size() / 2);
            assertThat(examples.size() - acceptable).as(split + " unacceptable").isGreaterThan(examples.size() / 10);
        }
        assertThat(data.train().size()).isBetween((int) (0.77 * data.size()), (int) (0.83 * data.size()));
        assertThat(data.dev().size()).isBetween((int) (0.08 * data.size()), (int) (0.12 * data.size()));
        assertThat(data.test().size()).isBetween((int) (0.08 * data.size()), (int) (0.12 * data.size()));

        AcceptabilityData.Counts c = data.counts();
        assertThat(c.sourceExamples()).isEqualTo(c.incorrectExamples() + c.correctExamples() + c.typedExamples());
        assertThat(c.typedExamples()).isPositive();
        assertThat(data.summary()).contains("train", "dev", "test", "acceptable", "conflicting");
    }

    @Test
    void everyGroupLivesInExactlyOneSplitTheOneItsHashNames() {
        Map<String, Set<LanguageToolAcceptability.Split>> splitsOfGroup = new HashMap<>();
        for (LanguageToolAcceptability.Split split : LanguageToolAcceptability.Split.values()) {
            for (AcceptabilityExample e : data.get(split)) {
                assertThat(LanguageToolAcceptability.splitOf(e.groupId())).isEqualTo(split);
                splitsOfGroup.computeIfAbsent(e.groupId(), g -> new HashSet<>()).add(split);
            }
        }
        assertThat(splitsOfGroup.values()).allSatisfy(s -> assertThat(s).hasSize(1));
        // pairs really exist: many groups hold both a wrong and a correct sentence
        Map<String, Integer> labelBits = new HashMap<>();
        for (AcceptabilityExample e : data.all()) {
            labelBits.merge(e.groupId(), 1 << e.label(), (a, b) -> a | b);
        }
        assertThat(labelBits.values().stream().filter(b -> b == 3).count()).isGreaterThan(4_000);
    }

    @Test
    void noDuplicatesWithinOrAcrossSplits() {
        List<AcceptabilityExample> all = data.all();
        Set<String> keys = new HashSet<>();
        for (AcceptabilityExample e : all) {
            assertThat(keys.add(LanguageToolAcceptability.dedupKey(e.sentence()))).as(e.sentence()).isTrue();
        }
    }

    @Test
    void noCaseOrPunctuationOnlyPairSurvives() {
        assertThat(data.counts().caseOrPunctuationOnly()).isPositive();
        Map<String, List<AcceptabilityExample>> byGroup = new HashMap<>();
        for (AcceptabilityExample e : data.all()) {
            byGroup.computeIfAbsent(e.groupId(), g -> new ArrayList<>()).add(e);
        }
        for (List<AcceptabilityExample> group : byGroup.values()) {
            for (AcceptabilityExample wrong : group) {
                for (AcceptabilityExample right : group) {
                    if (!wrong.acceptable() && right.acceptable()) {
                        assertThat(LanguageToolAcceptability.differsOnlyInCaseOrPunctuation(wrong.sentence(),
                                right.sentence())).as(wrong.sentence() + " / " + right.sentence()).isFalse();
                    }
                }
            }
        }
    }

    @Test
    void sentencesAreCleanText() {
        assertThat(data.all()).allSatisfy(e -> {
            assertThat(e.sentence()).doesNotContain("<marker>", "</marker>", "\u00A0", "  ");
            assertThat(e.sentence()).doesNotContainPattern("&[A-Za-z_][\\w.-]*;");
            assertThat(e.sentence()).isEqualTo(e.sentence().strip());
        });
        // a real pair whose correction uses the internal entity &nbsp;: "5&nbsp;km" -> "5 km"
        AcceptabilityExample wrong = find("Distance 5km.");
        AcceptabilityExample right = find("Distance 5 km.");
        assertThat(wrong.label()).isZero();
        assertThat(right.label()).isOne();
        assertThat(wrong.groupId()).isEqualTo(right.groupId());
    }

    @Test
    void internalEntitiesResolveInTheRealFile() throws Exception {
        try (InputStream in = getClass().getClassLoader().getResourceAsStream(LanguageToolAcceptability.RESOURCE)) {
            List<LanguageToolXml.RawExample> raw =
                    LanguageToolXml.parse(in, LanguageToolAcceptability.RESOURCE);
            assertThat(raw.size()).isEqualTo(data.counts().sourceExamples());
            assertThat(raw).anySatisfy(r -> {
                assertThat(r.text()).isEqualTo("Distance 5km.");
                assertThat(r.correction()).isEqualTo("5\u00A0km");
            });
            // predefined entity in an attribute: correction='We&apos;re'
            assertThat(raw).anySatisfy(r -> assertThat(r.correction()).isEqualTo("We're"));
        }
    }

    @Test
    void twoLoadsGiveTheSameSplits() {
        AcceptabilityData again = LanguageToolAcceptability.load();
        assertThat(again.train()).isEqualTo(data.train());
        assertThat(again.dev()).isEqualTo(data.dev());
        assertThat(again.test()).isEqualTo(data.test());
        assertThat(again.counts()).isEqualTo(data.counts());
        assertThat(AcceptabilitySampling.stratified(again.train(), 2000, 42))
                .isEqualTo(AcceptabilitySampling.stratified(data.train(), 2000, 42));
    }

    @Test
    void sampleOfRealTrainKeepsBalance() {
        List<AcceptabilityExample> small = AcceptabilitySampling.stratified(data.train(), 2000, 42);
        double full = (double) AcceptabilityData.countAcceptable(data.train()) / data.train().size();
        assertThat(small).hasSize(2000).doesNotHaveDuplicates();
        assertThat(AcceptabilityData.countAcceptable(small) / 2000.0).isCloseTo(full,
                org.assertj.core.data.Offset.offset(0.001));
    }

    private static AcceptabilityExample find(String sentence) {
        return data.all().stream().filter(e -> e.sentence().equals(sentence)).findFirst()
                .orElseThrow(() -> new AssertionError("not in data: " + sentence));
    }
}
