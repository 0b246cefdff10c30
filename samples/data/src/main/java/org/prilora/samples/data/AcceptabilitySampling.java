package org.prilora.samples.data;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Random;
import java.util.Set;

/**
 * Deterministic training subsets of an acceptability split: {@link #stratified} keeps the split's class shares
 * (~74 % acceptable), {@link #balanced} takes both classes equally. Both keep the input's order and depend only on
 * the input, the size and the seed ({@link Collections#shuffle(List, Random)} with {@code new Random(seed)}, whose
 * algorithm the Java specification fixes).
 */
public final class AcceptabilitySampling {

    private AcceptabilitySampling() {
    }

    /**
     * A class-stratified random subset: each label keeps (up to largest-remainder rounding) its share of
     * {@code examples}.
     *
     * @param examples the examples to sample from
     * @param n        how many to keep; {@code n >= examples.size()} returns a copy of all of them
     * @param seed     random seed
     * @return an unmodifiable list of {@code min(n, examples.size())} examples, in input order
     * @throws IllegalArgumentException if {@code n} is negative
     */
    public static List<AcceptabilityExample> stratified(List<AcceptabilityExample> examples, int n, long seed) {
        Objects.requireNonNull(examples, "examples");
        if (n < 0) {
            throw new IllegalArgumentException("sample size n must be >= 0, got " + n);
        }
        if (n >= examples.size()) {
            return List.copyOf(examples);
        }
        List<Integer> acceptable = new ArrayList<>();
        List<Integer> unacceptable = new ArrayList<>();
        for (int i = 0; i < examples.size(); i++) {
            (examples.get(i).acceptable() ? acceptable : unacceptable).add(i);
        }
        // Largest-remainder rounding so the two quotas add up to exactly n.
        double exactAcceptable = (double) n * acceptable.size() / examples.size();
        int takeAcceptable = (int) Math.floor(exactAcceptable);
        if (exactAcceptable - takeAcceptable >= 0.5 && takeAcceptable < acceptable.size()) {
            takeAcceptable++;
        }
        int takeUnacceptable = n - takeAcceptable;
        Random random = new Random(seed);
        Collections.shuffle(acceptable, random);
        Collections.shuffle(unacceptable, random);
        List<Integer> chosen = new ArrayList<>(n);
        chosen.addAll(acceptable.subList(0, takeAcceptable));
        chosen.addAll(unacceptable.subList(0, takeUnacceptable));
        Collections.sort(chosen);
        List<AcceptabilityExample> out = new ArrayList<>(n);
        for (int i : chosen) {
            out.add(examples.get(i));
        }
        return List.copyOf(out);
    }

    /**
     * Half acceptable, half unacceptable, each half drawn with {@link #stratified} from that class alone (so from the
     * same seeded shuffle). When a class has fewer sentences than half, all of them are taken and the other class
     * contributes as many.
     *
     * @param examples the examples to sample from
     * @param n        sentences wanted; 0 = every sentence of the smaller class and as many of the other
     * @param seed     random seed
     * @return an unmodifiable list, in input order
     * @throws IllegalArgumentException if {@code n} is negative
     */
    public static List<AcceptabilityExample> balanced(List<AcceptabilityExample> examples, int n, long seed) {
        if (n < 0) {
            throw new IllegalArgumentException("sample size n must be >= 0, got " + n);
        }
        List<AcceptabilityExample> ok = examples.stream().filter(AcceptabilityExample::acceptable).toList();
        List<AcceptabilityExample> bad = examples.stream().filter(e -> !e.acceptable()).toList();
        int smaller = Math.min(ok.size(), bad.size());
        int half = n == 0 ? smaller : Math.min(n / 2, smaller);
        Set<AcceptabilityExample> chosen = new HashSet<>(stratified(ok, half, seed));
        chosen.addAll(stratified(bad, half, seed));
        return examples.stream().filter(chosen::contains).toList();
    }
}
