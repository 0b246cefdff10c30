package org.prilora.samples.data;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.zip.CRC32;

/**
 * Builds a real, deterministic grammatical-acceptability data set (the kind of GLUE CoLA) from the example
 * sentences of LanguageTool's English grammar rules.
 *
 * <p><b>Source.</b> The classpath resource {@value #RESOURCE}, shipped in the Maven artifact {@value #ARTIFACT}.
 * Each rule carries {@code <example>} elements:
 * <ul>
 *   <li>{@code <example correction="fix|other fix">... <marker>span</marker> ...</example>}: a wrong sentence, the
 *       error at the marked span. It becomes label 0 (marker tags removed, text kept), and its corrected twin,
 *       made by replacing the span with the <em>first</em> {@code |}-separated correction, becomes label 1.</li>
 *   <li>{@code <example>...</example>} without {@code correction} or {@code type} (also inside
 *       {@code <antipattern>}): a correct sentence, label 1.</li>
 *   <li>{@code <example type="triggers_error">} and any other typed example: left out.</li>
 * </ul>
 * The file declares entities in its internal DTD subset; they are resolved by the JDK's StAX parser, while any
 * external DTD or external entity is refused (nothing is fetched).
 *
 * <p><b>Cleaning</b> (in this order, counted in {@link AcceptabilityData.Counts}): whitespace is normalised (any
 * run of Unicode white space, no-break spaces included, becomes one space; ends trimmed); wrong examples with an
 * empty correction, without exactly one marker, or whose correction leaves the sentence unchanged are dropped;
 * pairs that differ only in case, accents, punctuation or symbols are dropped
 * ({@link #differsOnlyInCaseOrPunctuation(String, String)}); finally duplicates are removed by
 * {@link #dedupKey(String)} (first occurrence in file order kept), and texts seen with both labels are dropped
 * entirely.
 *
 * <p><b>Split rule.</b> Every example has a group id: the first 16 hex digits of SHA-256 of the
 * {@link #dedupKey(String) dedup key} of its <em>acceptable</em> sentence (for a correct example, itself; for a
 * wrong one, its corrected twin). So a wrong sentence, its corrected twin, and any identical correct example share
 * one group, and the id depends only on content, never on file position. The group's split is
 * {@code CRC32(UTF-8 bytes of group id) mod 100}: {@code [0, 80)} train, {@code [80, 90)} dev, {@code [90, 100)}
 * test ({@link #splitOf(String)}). Same file, same split, on every JVM.
 */
public final class LanguageToolAcceptability {

    /** Classpath location of LanguageTool's English grammar rules. */
    public static final String RESOURCE = "org/languagetool/rules/en/grammar.xml";
    /** Maven coordinates of the artifact that ships {@link #RESOURCE}. */
    public static final String ARTIFACT = "org.languagetool:language-en:6.6";
    /** Percentage of groups (by hash bucket) that go to train. */
    public static final int TRAIN_PERCENT = 80;
    /** Percentage of groups (by hash bucket) that go to dev; the rest go to test. */
    public static final int DEV_PERCENT = 10;

    /** The three splits. */
    public enum Split {
        /** Training split (~80 % of groups). */
        TRAIN,
        /** Development / validation split (~10 % of groups). */
        DEV,
        /** Test split (~10 % of groups). */
        TEST
    }

    // Unicode white space: \s alone is ASCII-only in Java; \p{Z} adds no-break and other spaces used by the file.
    private static final Pattern WHITESPACE = Pattern.compile("[\\s\\p{Z}]+");
    private static final Pattern MARKS = Pattern.compile("\\p{M}+");
    // Punctuation and symbols (Unicode P* and S*); BERT's basic tokenizer also treats ASCII symbols as punctuation.
    private static final Pattern PUNCTUATION = Pattern.compile("[\\p{P}\\p{S}]");

    private LanguageToolAcceptability() {
    }

    /**
     * Loads {@link #RESOURCE} from the classpath and builds the split data set.
     *
     * @return the data set
     * @throws IllegalStateException if the resource is missing (the message names {@link #ARTIFACT}), or cannot be
     *                               read or parsed
     */
    public static AcceptabilityData load() {
        ClassLoader loader = LanguageToolAcceptability.class.getClassLoader();
        try (InputStream in = loader.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("Classpath resource " + RESOURCE + " not found; it ships in the Maven"
                        + " artifact " + ARTIFACT + ", which must be on the classpath (the prilora-samples-data module declares it)");
            }
            return fromXml(in, RESOURCE);
        } catch (IOException e) {
            throw new IllegalStateException("Could not read classpath resource " + RESOURCE + " from " + ARTIFACT
                    + ": " + e.getMessage(), e);
        }
    }

    /**
     * Builds the split data set from any LanguageTool grammar file (same parsing, cleaning and split as
     * {@link #load()}); used by tests with hand-written snippets.
     *
     * @param xml        the grammar XML; not closed by this method
     * @param sourceName name used in messages and in {@link AcceptabilityData#source()}
     * @return the data set
     * @throws IllegalStateException if the XML cannot be parsed
     */
    public static AcceptabilityData fromXml(InputStream xml, String sourceName) {
        Objects.requireNonNull(xml, "xml");
        Objects.requireNonNull(sourceName, "sourceName");
        return build(LanguageToolXml.parse(xml, sourceName), sourceName);
    }

    /**
     * The split a group belongs to: {@code CRC32(UTF-8 bytes of groupId) mod 100}, below {@link #TRAIN_PERCENT}
     * is train, below {@code TRAIN_PERCENT + DEV_PERCENT} dev, else test.
     *
     * @param groupId an {@link AcceptabilityExample#groupId()}
     * @return the split
     */
    public static Split splitOf(String groupId) {
        CRC32 crc = new CRC32();
        crc.update(groupId.getBytes(StandardCharsets.UTF_8));
        long bucket = crc.getValue() % 100;
        if (bucket < TRAIN_PERCENT) {
            return Split.TRAIN;
        }
        return bucket < TRAIN_PERCENT + DEV_PERCENT ? Split.DEV : Split.TEST;
    }

    /**
     * Collapses every run of Unicode white space (including no-break and thin spaces) to one ASCII space and trims.
     *
     * @param text any text
     * @return the normalised text
     */
    public static String normalizeWhitespace(String text) {
        return WHITESPACE.matcher(text).replaceAll(" ").strip();
    }

    /**
     * Key under which two sentences count as duplicates: whitespace-normalised, lower-cased, accents stripped, i.e.
     * the text as an uncased (BERT-style) tokenizer sees it. Punctuation is kept, since the model sees it.
     *
     * @param sentence a sentence
     * @return its dedup key
     */
    public static String dedupKey(String sentence) {
        return normalizeWhitespace(stripAccents(sentence.toLowerCase(Locale.ROOT)));
    }

    /**
     * Whether two sentences differ only in letter case, accents, punctuation or symbols (Unicode categories P* and
     * S*). Both are lower-cased, accent-stripped, and compared with punctuation/symbols deleted, and again with
     * them replaced by a space, white space collapsed each time; equal under either means "only case or
     * punctuation". So {@code "I'm"} vs {@code "Im"} and {@code "well known"} vs {@code "well-known"} qualify, while
     * {@code "a lot"} vs {@code "alot"} (a white-space-only, word-level change) does not.
     *
     * <p>Such pairs are dropped because the model's tokenizer is uncased (it cannot see case or accents), and a
     * punctuation slip is not what grammatical acceptability is about.
     *
     * @param a one sentence
     * @param b another sentence
     * @return true when they are equal up to case, accents, punctuation and symbols
     */
    public static boolean differsOnlyInCaseOrPunctuation(String a, String b) {
        return fold(a, "").equals(fold(b, "")) || fold(a, " ").equals(fold(b, " "));
    }

    private static String fold(String s, String punctuationReplacement) {
        String t = stripAccents(s.toLowerCase(Locale.ROOT));
        return normalizeWhitespace(PUNCTUATION.matcher(t).replaceAll(punctuationReplacement));
    }

    private static String stripAccents(String s) {
        return MARKS.matcher(Normalizer.normalize(s, Normalizer.Form.NFD)).replaceAll("");
    }

    // ---------------------------------------------------------------------------------------------------------
    // Cleaning, dedup and split

    static AcceptabilityData build(List<LanguageToolXml.RawExample> raw, String sourceName) {
        int incorrect = 0;
        int correct = 0;
        int typed = 0;
        int emptyCorrection = 0;
        int badMarker = 0;
        int identical = 0;
        int caseOrPunct = 0;
        List<AcceptabilityExample> candidates = new ArrayList<>();
        for (LanguageToolXml.RawExample e : raw) {
            if (e.type() != null) {
                typed++;
                continue;
            }
            if (e.correction() == null) {
                correct++;
                String sentence = normalizeWhitespace(e.text());
                if (!sentence.isEmpty()) {
                    candidates.add(new AcceptabilityExample(sentence, AcceptabilityExample.ACCEPTABLE,
                            groupIdOf(sentence), e.ruleId()));
                }
                continue;
            }
            incorrect++;
            // Only the first alternative: it is LanguageTool's preferred fix.
            String fix = e.correction().split("\\|", -1)[0];
            if (fix.isBlank()) {
                emptyCorrection++;
                continue;
            }
            if (e.markers() != 1) {
                badMarker++;
                continue;
            }
            String text = e.text();
            String wrong = normalizeWhitespace(text);
            String right = normalizeWhitespace(text.substring(0, e.markerStart()) + fix
                    + text.substring(e.markerEnd()));
            if (wrong.equals(right)) {
                identical++;
                continue;
            }
            if (differsOnlyInCaseOrPunctuation(wrong, right)) {
                caseOrPunct++;
                continue;
            }
            String group = groupIdOf(right);
            candidates.add(new AcceptabilityExample(wrong, AcceptabilityExample.UNACCEPTABLE, group, e.ruleId()));
            candidates.add(new AcceptabilityExample(right, AcceptabilityExample.ACCEPTABLE, group, e.ruleId()));
        }

        // Texts seen with both labels are unreliable: drop every copy.
        Map<String, Integer> labelsSeen = new HashMap<>(); // key -> bit set of labels (1 << label)
        for (AcceptabilityExample c : candidates) {
            labelsSeen.merge(dedupKey(c.sentence()), 1 << c.label(), (x, y) -> x | y);
        }
        int conflictingTexts = 0;
        for (int bits : labelsSeen.values()) {
            if (bits == 3) {
                conflictingTexts++;
            }
        }
        int duplicates = 0;
        int conflictingCopies = 0;
        Set<String> kept = new HashSet<>();
        List<AcceptabilityExample> train = new ArrayList<>();
        List<AcceptabilityExample> dev = new ArrayList<>();
        List<AcceptabilityExample> test = new ArrayList<>();
        for (AcceptabilityExample c : candidates) {
            String key = dedupKey(c.sentence());
            if (labelsSeen.get(key) == 3) {
                conflictingCopies++;
            } else if (!kept.add(key)) {
                duplicates++;
            } else {
                switch (splitOf(c.groupId())) {
                    case TRAIN -> train.add(c);
                    case DEV -> dev.add(c);
                    case TEST -> test.add(c);
                }
            }
        }
        AcceptabilityData.Counts counts = new AcceptabilityData.Counts(raw.size(), incorrect, correct, typed,
                emptyCorrection, badMarker, identical, caseOrPunct, duplicates, conflictingTexts, conflictingCopies);
        return new AcceptabilityData(sourceName, train, dev, test, counts);
    }

    /** Group id of an acceptable sentence: first 16 hex digits of SHA-256 of its dedup key (content only). */
    static String groupIdOf(String acceptableSentence) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256")
                    .digest(dedupKey(acceptableSentence).getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(digest, 0, 8);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every Java platform but is missing", e);
        }
    }
}
