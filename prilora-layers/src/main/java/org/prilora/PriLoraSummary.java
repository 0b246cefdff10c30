package org.prilora;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.api.Model;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.layers.AdapterKeys;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * What {@link PriLora#summary} reports: trainable vs all parameters (PEFT's {@code print_trainable_parameters}),
 * the bytes an adapter file holds vs the whole model's parameters, and per adapted projection its rank,
 * shape, adapter parameter count and the sparsity of {@code A⊙M} when the summary is taken (in REGROW mode pruned
 * entries grow back at the next optimizer step, so it shows a pruning's effect only right after a pruning step).
 * {@link #toString()} renders a table.
 *
 * @param trainableParams parameters updated by training (A, B and modules to save)
 * @param totalParams     all parameters, frozen ones and PRILoRA state included
 * @param adapterBytes    bytes of the tensors an adapter file stores (A, B, masks, statistics, modules to save)
 * @param modelBytes      bytes of all parameters (what a full model file stores, before compression)
 */
public record PriLoraSummary(long trainableParams, long totalParams, long adapterBytes, long modelBytes, List<Row> rows) {

    /** What the "A zeros" column means; printed under the table. */
    public static final String SPARSITY_NOTE = "A zeros: fraction of A⊙M exactly 0 now. REGROW: pruned entries grow back "
            + "at the next optimizer step, so it shows a pruning only right after one; PERSISTENT_MASK: every pruning so far.";

    /** One adapted module: {@code module} is {@code layer} or {@code layer.<module in the layer>}. */
    public record Row(String module, String layer, String type, int rank, long nIn, long nOut, long adapterParams, double aSparsity) {
    }

    /** Percentage of trainable parameters. */
    public double trainablePercent() {
        return totalParams == 0 ? 0 : 100.0 * trainableParams / totalParams;
    }

    /** Computes the summary of a MultiLayerNetwork or ComputationGraph. */
    static PriLoraSummary of(Model net) {
        long trainable = 0;
        long total = 0;
        long adapterBytes = 0;
        long modelBytes = 0;
        for (Layer l : NetworkModules.layers(net).values()) {
            boolean adapted = NetworkModules.isAdapted(l.conf().getLayer());
            for (Map.Entry<String, INDArray> e : l.paramTable().entrySet()) {
                long n = e.getValue().length();
                long bytes = n * e.getValue().dataType().width();
                total += n;
                modelBytes += bytes;
                boolean train = NetworkModules.isTrainable(l, e.getKey());
                if (train) {
                    trainable += n;
                }
                // What an adapter file stores: the adapters' state, and whatever else trains (modules to save).
                if (train || adapted && AdapterKeys.isAdapterState(e.getKey())) {
                    adapterBytes += bytes;
                }
            }
        }
        List<Row> rows = new ArrayList<>();
        for (NetworkModules.Entry e : NetworkModules.modules(net)) {
            ModuleFigures f = ModuleFigures.of(e.conf().getLayerName(), e.module(), e.state());
            rows.add(new Row(e.name(), e.layer(), e.conf().getClass().getSimpleName(), e.module().rank(), e.module().nIn(),
                    e.module().nOut(), e.module().adapterParams(), f.aSparsity()));
        }
        return new PriLoraSummary(trainable, total, adapterBytes, modelBytes, Collections.unmodifiableList(rows));
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format("trainable params: %,d || all params: %,d || trainable%%: %.4f%n", trainableParams, totalParams, trainablePercent()));
        sb.append(String.format("adapter tensors: %s || all parameters: %s (%.2f%%)%n", human(adapterBytes), human(modelBytes),
                modelBytes == 0 ? 0 : 100.0 * adapterBytes / modelBytes));
        int w = Math.max(6, rows.stream().mapToInt(r -> r.module().length()).max().orElse(6));
        sb.append(String.format("%-" + w + "s  %-22s %5s %11s %10s %9s%n", "module", "type", "rank", "shape", "params", "A zeros"));
        for (Row r : rows) {
            sb.append(String.format("%-" + w + "s  %-22s %5d %11s %,10d %9.3f%n", r.module(), r.type(), r.rank(),
                    r.nIn() + "x" + r.nOut(), r.adapterParams(), r.aSparsity()));
        }
        if (!rows.isEmpty()) {
            sb.append(SPARSITY_NOTE).append(System.lineSeparator());
        }
        return sb.toString();
    }

    private static String human(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        if (bytes < 1024 * 1024) {
            return String.format("%.1f KiB", bytes / 1024.0);
        }
        return String.format("%.1f MiB", bytes / (1024.0 * 1024));
    }
}
