package org.prilora.serving;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The examples of one batch grouped by adapter: a permutation that makes each adapter's examples contiguous (groups
 * in order of first appearance, examples in their original order inside a group), so every group is a view of rows.
 */
final class RowGroups {
    /** Examples {@code [start, end)} of the permuted batch use {@code adapter} (null: the base model). */
    record Group(String id, LoadedAdapter adapter, int start, int end) {
        int size() {
            return end - start;
        }
    }

    final List<Group> groups;
    /** {@code order[j]}: the original example at permuted position j. */
    final int[] order;
    final boolean identity;

    private RowGroups(List<Group> groups, int[] order) {
        this.groups = List.copyOf(groups);
        this.order = order;
        boolean id = true;
        for (int j = 0; j < order.length; j++) {
            id &= order[j] == j;
        }
        this.identity = id;
    }

    /** Groups examples by id; {@code adapters} maps every id (the base: {@link AdapterRegistry#BASE}) to its weights or null. */
    static RowGroups of(List<String> rowIds, Map<String, LoadedAdapter> adapters) {
        Map<String, List<Integer>> byId = new LinkedHashMap<>();
        for (int i = 0; i < rowIds.size(); i++) {
            byId.computeIfAbsent(rowIds.get(i), k -> new ArrayList<>()).add(i);
        }
        int[] order = new int[rowIds.size()];
        List<Group> groups = new ArrayList<>();
        int j = 0;
        for (Map.Entry<String, List<Integer>> e : byId.entrySet()) {
            int start = j;
            for (int i : e.getValue()) {
                order[j++] = i;
            }
            groups.add(new Group(e.getKey(), adapters.get(e.getKey()), start, j));
        }
        return new RowGroups(groups, order);
    }

    /** {@code x} with its examples (dimension 0) in group order. */
    INDArray permute(INDArray x) {
        if (x == null || identity) {
            return x;
        }
        INDArray out = Nd4j.createUninitialized(x.dataType(), x.shape(), 'c');
        for (int j = 0; j < order.length; j++) {
            rows(out, j, j + 1).assign(rows(x, order[j], order[j] + 1));
        }
        return out;
    }

    /** The inverse of {@link #permute}: examples back in request order. */
    INDArray restore(INDArray y) {
        if (identity) {
            return y;
        }
        INDArray out = Nd4j.createUninitialized(y.dataType(), y.shape(), 'c');
        for (int j = 0; j < order.length; j++) {
            rows(out, order[j], order[j] + 1).assign(rows(y, j, j + 1));
        }
        return out;
    }

    /** A view of rows {@code [from, to)} along dimension 0 of an array of any rank. */
    static INDArray rows(INDArray x, long from, long to) {
        INDArrayIndex[] idx = new INDArrayIndex[x.rank()];
        idx[0] = NDArrayIndex.interval(from, to);
        for (int d = 1; d < idx.length; d++) {
            idx[d] = NDArrayIndex.all();
        }
        return x.get(idx);
    }
}
