package org.prilora;

import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.RankSchedule;
import org.prilora.layers.AdapterKeys;
import org.prilora.samediff.GraphModule;
import org.prilora.samediff.InjectionReport;
import org.prilora.samediff.SameDiffPriLora;
import org.prilora.samediff.WeightSelector;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Adapter files of SameDiff graphs adapted by {@link SameDiffPriLora#inject}, in the networks' format. */
final class GraphAdapterFiles {
    private GraphAdapterFiles() {
    }

    static void save(SameDiff sd, Path file) throws IOException {
        InjectionReport report = SameDiffPriLora.report(sd);
        AdapterFile.Manifest m = new AdapterFile.Manifest();
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        for (GraphModule s : report.modules()) {
            AdapterFile.ModuleEntry e = new AdapterFile.ModuleEntry();
            e.module = s.moduleName();
            e.layer = s.weightName();
            e.site = "";
            e.layerType = "SameDiff:" + s.opKind();
            e.rank = s.rank();
            e.nIn = s.nIn();
            e.nOut = s.nOut();
            e.scale = s.scale();
            e.hasMask = s.maskName() != null;
            e.baseWeightCrc32 = NetworkModules.crc(s.w0(sd));
            m.modules.add(e);
            tensors.put(e.module + AdapterKeys.FILE_A, s.a(sd));
            tensors.put(e.module + AdapterKeys.FILE_B, s.b(sd));
            if (e.hasMask) {
                tensors.put(e.module + AdapterKeys.FILE_MASK, s.mask(sd));
            }
            tensors.put(e.module + AdapterKeys.FILE_STATS, s.inputNormState(sd));
        }
        for (String v : report.config().modulesToSave()) {
            m.modulesToSave.add(v);
            tensors.put(AdapterContainer.SAVE_PREFIX + v, sd.getArrForVarName(v));
        }
        m.config = report.config().toJson();
        AdapterContainer.write(file, m, tensors);
    }

    static SameDiff load(SameDiff base, Path file) throws IOException {
        AdapterFile f = AdapterContainer.read(file);
        List<String> problems = new ArrayList<>();
        for (AdapterFile.ModuleEntry e : f.manifest().modules) {
            if (!base.hasVariable(e.layer) || base.getArrForVarName(e.layer) == null) {
                problems.add("module '" + e.module + "': the graph has no weight variable '" + e.layer + "'");
                continue;
            }
            INDArray w = base.getArrForVarName(e.layer);
            boolean fits = w.rank() == 2 && (w.size(0) == e.nIn && w.size(1) == e.nOut || w.size(0) == e.nOut && w.size(1) == e.nIn);
            if (!fits) {
                problems.add("module '" + e.module + "': base weight has shape " + Arrays.toString(w.shape()) + ", the adapter expects ["
                        + e.nIn + ", " + e.nOut + "]");
            }
        }
        for (String v : f.manifest().modulesToSave) {
            INDArray t = f.tensors().get(AdapterContainer.SAVE_PREFIX + v);
            if (!base.hasVariable(v)) {
                problems.add("modules_to_save: the graph has no variable '" + v + "'");
            } else if (t == null || !Arrays.equals(t.shape(), base.getArrForVarName(v).shape())) {
                problems.add("modules_to_save: tensor for '" + v + "' is missing or has another shape");
            }
        }
        if (!problems.isEmpty()) {
            throw new AdapterMismatchException("adapter file " + file, problems);
        }
        SameDiff sd = base.dup();
        List<String> modules = f.manifest().modules.stream().map(e -> e.layer).toList();
        int[] ranks = f.manifest().modules.stream().mapToInt(e -> e.rank).toArray();
        PriLoraConfig cfg = f.config().toBuilder().rankSchedule(RankSchedule.explicit(ranks)).build();
        InjectionReport report = SameDiffPriLora.inject(sd, cfg, WeightSelector.names(modules.toArray(new String[0])).blockBy(modules::indexOf));
        for (GraphModule s : report.modules()) {
            AdapterFile.ModuleEntry e = f.manifest().modules.get(modules.indexOf(s.weightName()));
            long crc = NetworkModules.crc(s.w0(sd));
            if (crc != e.baseWeightCrc32) {
                problems.add(AdapterContainer.crcMismatch(e.module, crc, e.baseWeightCrc32));
                continue;
            }
            AdapterContainer.assign(s.a(sd), f.tensors().get(e.module + AdapterKeys.FILE_A), e.module + AdapterKeys.FILE_A, problems);
            AdapterContainer.assign(s.b(sd), f.tensors().get(e.module + AdapterKeys.FILE_B), e.module + AdapterKeys.FILE_B, problems);
            AdapterContainer.assign(s.inputNormState(sd), f.tensors().get(e.module + AdapterKeys.FILE_STATS),
                    e.module + AdapterKeys.FILE_STATS, problems);
            if (s.maskName() != null) {
                AdapterContainer.assign(s.mask(sd), f.tensors().get(e.module + AdapterKeys.FILE_MASK), e.module + AdapterKeys.FILE_MASK, problems);
            }
        }
        for (String v : f.manifest().modulesToSave) {
            sd.getArrForVarName(v).assign(f.tensors().get(AdapterContainer.SAVE_PREFIX + v));
        }
        if (!problems.isEmpty()) {
            throw new AdapterMismatchException("adapter file " + file, problems);
        }
        return sd;
    }
}
