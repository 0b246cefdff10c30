package org.prilora.config;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Objects;

/**
 * Adapter rank per block, from the bottom block ({@code 0}) to the top ({@code numBlocks - 1}).
 *
 * <p>PRILoRA's schedule increases linearly with depth:
 * {@code r_l = round(rStart + (rEnd - rStart) * l / (L - 1))}, and for a single block the mean of
 * the two ends (rounded). Uniform ranks are plain LoRA. Rounding is half-up, as {@link Math#round}.
 * Instances are immutable.
 */
public final class RankSchedule implements Serializable {
    private static final long serialVersionUID = 1L;

    /** The three kinds of schedule. */
    public enum Kind { LINEAR, UNIFORM, EXPLICIT }

    private final Kind kind;
    private final int rStart;
    private final int rEnd;
    private final int[] explicit;

    private RankSchedule(Kind kind, int rStart, int rEnd, int[] explicit) {
        this.kind = kind;
        this.rStart = rStart;
        this.rEnd = rEnd;
        this.explicit = explicit;
    }

    /** Ranks moving linearly from {@code rStart} (bottom block) to {@code rEnd} (top block). */
    public static RankSchedule linear(int rStart, int rEnd) {
        requireRank("rStart", rStart);
        requireRank("rEnd", rEnd);
        return new RankSchedule(Kind.LINEAR, rStart, rEnd, null);
    }

    /** The same rank {@code r} in every block (plain LoRA). */
    public static RankSchedule uniform(int r) {
        requireRank("r", r);
        return new RankSchedule(Kind.UNIFORM, r, r, null);
    }

    /** One given rank per block; the schedule then only fits networks of exactly that many blocks. */
    public static RankSchedule explicit(int... ranks) {
        Objects.requireNonNull(ranks, "ranks");
        if (ranks.length == 0) {
            throw new IllegalArgumentException("ranks: expected at least one rank, got an empty array");
        }
        for (int i = 0; i < ranks.length; i++) {
            requireRank("ranks[" + i + "]", ranks[i]);
        }
        return new RankSchedule(Kind.EXPLICIT, 0, 0, ranks.clone());
    }

    /**
     * Parses {@code "4:12"} (linear), {@code "8"} (uniform) or {@code "4,6,8"} (explicit), the forms
     * {@link #toString()} writes.
     */
    public static RankSchedule parse(String text) {
        Objects.requireNonNull(text, "text");
        String t = text.trim();
        try {
            if (t.contains(":")) {
                String[] p = t.split(":");
                if (p.length != 2) {
                    throw new IllegalArgumentException();
                }
                return linear(Integer.parseInt(p[0].trim()), Integer.parseInt(p[1].trim()));
            }
            if (t.contains(",")) {
                return explicit(Arrays.stream(t.split(",")).map(String::trim).mapToInt(Integer::parseInt).toArray());
            }
            return uniform(Integer.parseInt(t));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("rank schedule: expected 'start:end', 'r' or 'r0,r1,...', got '" + text + "'");
        }
    }

    /** Rank of block {@code block} in a network of {@code numBlocks} adapted blocks. */
    public int rankFor(int block, int numBlocks) {
        if (numBlocks < 1) {
            throw new IllegalArgumentException("numBlocks: expected >= 1, got " + numBlocks);
        }
        if (block < 0 || block >= numBlocks) {
            throw new IllegalArgumentException("block: expected in [0, " + (numBlocks - 1) + "], got " + block);
        }
        switch (kind) {
            case UNIFORM:
                return rStart;
            case EXPLICIT:
                if (numBlocks != explicit.length) {
                    throw new IllegalArgumentException("numBlocks: explicit schedule " + Arrays.toString(explicit)
                            + " has " + explicit.length + " ranks, got a network with " + numBlocks + " blocks");
                }
                return explicit[block];
            case LINEAR:
            default:
                if (numBlocks == 1) {
                    return (int) Math.round((rStart + rEnd) / 2.0);
                }
                return (int) Math.round(rStart + (rEnd - rStart) * (double) block / (numBlocks - 1));
        }
    }

    /** Ranks of all {@code numBlocks} blocks, bottom to top. */
    public int[] ranks(int numBlocks) {
        if (numBlocks < 1) {
            throw new IllegalArgumentException("numBlocks: expected >= 1, got " + numBlocks);
        }
        int[] r = new int[numBlocks];
        for (int i = 0; i < numBlocks; i++) {
            r[i] = rankFor(i, numBlocks);
        }
        return r;
    }

    public Kind kind() {
        return kind;
    }

    /** True when every block gets the same rank (plain LoRA). */
    public boolean isUniform() {
        return kind == Kind.UNIFORM || (kind == Kind.LINEAR && rStart == rEnd)
                || (kind == Kind.EXPLICIT && Arrays.stream(explicit).distinct().count() == 1);
    }

    @Override
    public String toString() {
        switch (kind) {
            case UNIFORM:
                return Integer.toString(rStart);
            case EXPLICIT:
                return Arrays.stream(explicit).mapToObj(Integer::toString).reduce((a, b) -> a + "," + b).orElse("");
            default:
                return rStart + ":" + rEnd;
        }
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof RankSchedule)) {
            return false;
        }
        RankSchedule s = (RankSchedule) o;
        return kind == s.kind && rStart == s.rStart && rEnd == s.rEnd && Arrays.equals(explicit, s.explicit);
    }

    @Override
    public int hashCode() {
        return Objects.hash(kind, rStart, rEnd, Arrays.hashCode(explicit));
    }

    private static void requireRank(String name, int r) {
        if (r < 1) {
            throw new IllegalArgumentException(name + ": expected a rank >= 1, got " + r);
        }
    }
}
