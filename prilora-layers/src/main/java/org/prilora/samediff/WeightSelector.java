package org.prilora.samediff;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.TreeSet;
import java.util.function.Predicate;
import java.util.function.ToIntFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Which weights of a SameDiff graph {@link SameDiffPriLora#inject} adapts, and the block (depth) index of each,
 * which picks its rank from the {@link org.prilora.config.RankSchedule}.
 *
 * <p>A weight is the second operand of a {@code mmul}/{@code matmul} or {@code xw_plus_b} ({@code nn.linear})
 * op that is a VARIABLE or CONSTANT; the selector decides by its name. Block indices come from a raw key per
 * selected weight (a number captured from the name, a caller's function, or the weight's position in graph
 * order) and are then made dense: the distinct keys, sorted, become blocks {@code 0 … L-1}. So
 * {@code layer_1 … layer_3} and {@code layer_0 … layer_2} both give three blocks, and weights that share a key
 * (q/k/v/o of one transformer block) share a block and a rank.
 *
 * <pre>{@code
 * WeightSelector.regex("block_(\\d+)/attn_[qkvo]/W")   // block from capture group 1
 * WeightSelector.regex("dense_[0-9]+/kernel")          // no group: each weight its own block, in graph order
 * WeightSelector.matching(n -> n.endsWith("/W"), "names ending in /W").blockBy(n -> depthOf(n))
 * }</pre>
 *
 * <p>Immutable.
 */
public final class WeightSelector {

    private final Predicate<String> matcher;
    private final String description;
    private final Pattern pattern;
    /** Capture group that holds the block number; null for graph order or a function. */
    private final String group;
    private final ToIntFunction<String> blockFunction;

    private WeightSelector(Predicate<String> matcher, String description, Pattern pattern, String group,
                           ToIntFunction<String> blockFunction) {
        this.matcher = matcher;
        this.description = description;
        this.pattern = pattern;
        this.group = group;
        this.blockFunction = blockFunction;
    }

    /**
     * Weights whose whole name matches {@code regex}. If the pattern has a capture group, group 1 must capture an
     * integer, which is the weight's block key; otherwise every weight is its own block, in graph order.
     */
    public static WeightSelector regex(String regex) {
        Objects.requireNonNull(regex, "regex");
        Pattern p;
        try {
            p = Pattern.compile(regex);
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException("regex: expected a valid regular expression, got '" + regex + "': "
                    + e.getDescription(), e);
        }
        String g = p.matcher("").groupCount() >= 1 ? "1" : null;
        return new WeightSelector(n -> p.matcher(n).matches(), "regex '" + regex + "'", p, g, null);
    }

    /** The weights with exactly these names; each its own block, in graph order. */
    public static WeightSelector names(String... names) {
        Objects.requireNonNull(names, "names");
        List<String> list = List.of(names);
        return new WeightSelector(list::contains, "names " + list, null, null, null);
    }

    /** Weights whose name satisfies {@code predicate}; each its own block, in graph order. */
    public static WeightSelector matching(Predicate<String> predicate, String description) {
        Objects.requireNonNull(predicate, "predicate");
        return new WeightSelector(predicate, description == null ? "a predicate" : description, null, null, null);
    }

    /** This selector with block keys taken from capture group {@code groupIndex} of its regex (an integer). */
    public WeightSelector blockFromGroup(int groupIndex) {
        requireRegex("blockFromGroup");
        if (groupIndex < 1 || groupIndex > pattern.matcher("").groupCount()) {
            throw new IllegalArgumentException("groupIndex: expected a capture group of '" + pattern.pattern() + "' (1.."
                    + pattern.matcher("").groupCount() + "), got " + groupIndex);
        }
        return new WeightSelector(matcher, description, pattern, Integer.toString(groupIndex), null);
    }

    /** This selector with block keys taken from the named capture group {@code groupName} of its regex. */
    public WeightSelector blockFromGroup(String groupName) {
        requireRegex("blockFromGroup");
        Objects.requireNonNull(groupName, "groupName");
        if (!pattern.pattern().contains("(?<" + groupName + ">")) {
            throw new IllegalArgumentException("groupName: '" + pattern.pattern() + "' has no group named '" + groupName + "'");
        }
        return new WeightSelector(matcher, description, pattern, groupName, null);
    }

    /** This selector with every selected weight its own block, numbered in graph order. */
    public WeightSelector blockByGraphOrder() {
        return new WeightSelector(matcher, description, pattern, null, null);
    }

    /** This selector with block keys from {@code blockOf(weightName)}. */
    public WeightSelector blockBy(ToIntFunction<String> blockOf) {
        Objects.requireNonNull(blockOf, "blockOf");
        return new WeightSelector(matcher, description, pattern, null, blockOf);
    }

    private void requireRegex(String what) {
        if (pattern == null) {
            throw new IllegalStateException(what + ": only a regex selector has capture groups; this one selects "
                    + description);
        }
    }

    /** Whether the weight called {@code weightName} is selected. */
    public boolean matches(String weightName) {
        return weightName != null && matcher.test(weightName);
    }

    /**
     * Dense block indices ({@code 0 … L-1}) for the selected weights, given in graph order.
     *
     * @throws IllegalArgumentException if a capture group does not hold an integer
     */
    public int[] blocks(List<String> selectedInGraphOrder) {
        long[] keys = new long[selectedInGraphOrder.size()];
        for (int i = 0; i < keys.length; i++) {
            keys[i] = rawKey(selectedInGraphOrder.get(i), i);
        }
        List<Long> distinct = new ArrayList<>(new TreeSet<>(toList(keys)));
        int[] out = new int[keys.length];
        for (int i = 0; i < keys.length; i++) {
            out[i] = distinct.indexOf(keys[i]);
        }
        return out;
    }

    private long rawKey(String name, int position) {
        if (blockFunction != null) {
            return blockFunction.applyAsInt(name);
        }
        if (group == null) {
            return position;
        }
        Matcher m = pattern.matcher(name);
        if (!m.matches()) {
            throw new IllegalArgumentException("weight '" + name + "' was selected but does not match " + description
                    + ", so no block number can be read from it");
        }
        String g = Character.isDigit(group.charAt(0)) ? m.group(Integer.parseInt(group)) : m.group(group);
        try {
            return Long.parseLong(g);
        } catch (NumberFormatException | NullPointerException e) {
            throw new IllegalArgumentException("weight '" + name + "': capture group " + group + " of " + description
                    + " must hold the block number (an integer), got '" + g + "'; use blockByGraphOrder() or blockBy(...)");
        }
    }

    private static List<Long> toList(long[] a) {
        List<Long> l = new ArrayList<>(a.length);
        for (long v : a) {
            l.add(v);
        }
        return l;
    }

    @Override
    public String toString() {
        String blocks = blockFunction != null ? "blocks by function" : group != null ? "blocks from group " + group
                : "blocks by graph order";
        return "WeightSelector{" + description + ", " + blocks + "}";
    }
}
