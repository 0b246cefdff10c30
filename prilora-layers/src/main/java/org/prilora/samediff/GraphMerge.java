package org.prilora.samediff;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.internal.Variable;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.ops.LoraLinear;

import java.util.ArrayList;
import java.util.List;

/** Folds injected adapters back into a SameDiff graph's weights ({@link SameDiffPriLora#mergeInPlace}). */
final class GraphMerge {
    private GraphMerge() {
    }

    static SameDiff mergeInPlace(SameDiff sd, InjectionReport r) {
        // Turning A and B into constants first drops the gradient function, cached sessions and their updater state.
        List<SDVariable> adapters = new ArrayList<>();
        for (GraphModule s : r.modules()) {
            adapters.add(sd.getVariable(s.aName()));
            adapters.add(sd.getVariable(s.bName()));
        }
        sd.convertToConstants(adapters);

        for (GraphModule s : r.modules()) {
            INDArray merged = LoraLinear.mergedWeight(s.w0(sd), s.a(sd), s.b(sd), s.mask(sd), s.scale());
            if (s.weightTransposed()) {
                merged = merged.transpose().dup('c');
            }
            Variable y = sd.getVariables().get(s.outputName());
            List<String> consumers = y.getInputsForOp() == null ? null : new ArrayList<>(y.getInputsForOp());
            for (String op : s.addedOps()) {
                SameDiffPriLora.detachOp(sd, op);
            }
            for (String v : s.addedVariables()) {
                removeVariable(sd, v);
            }
            sd.getVariables().remove(s.outputName());

            SDVariable x = sd.getVariable(s.inputName());
            SDVariable w = sd.getVariable(s.weightName());
            SDVariable out = s.opKind() == GraphModule.OpKind.MMUL
                    ? sd.mmul(x, w, false, s.weightTransposed(), false)
                    : sd.nn.linear(x, w, sd.getVariable(s.biasName()));
            sd.renameVariable(out.name(), s.outputName());
            sd.getVariables().get(s.outputName()).setInputsForOp(consumers);
            // A new array rather than an in-place write: the old one may be shared with the caller.
            sd.associateArrayWithVariable(merged, w);
        }
        List<SDVariable> restore = new ArrayList<>();
        for (String v : r.frozenVariables()) {
            if (sd.hasVariable(v) && sd.getVariable(v).getVariableType() == VariableType.CONSTANT) {
                restore.add(sd.getVariable(v));
            }
        }
        sd.convertToVariables(restore);
        GraphMetadata.remove(sd);
        sd.getSessions().clear();
        return sd;
    }

    /** Removes a variable, its array and any updater state. */
    static void removeVariable(SameDiff sd, String name) {
        sd.getVariables().remove(name);
        if (sd.getConstantArrays().hasArray(name)) {
            sd.getConstantArrays().removeArray(name);
        }
        if (sd.getVariablesArrays().hasArray(name)) {
            sd.getVariablesArrays().removeArray(name);
        }
        if (sd.getUpdaterMap() != null) {
            sd.getUpdaterMap().remove(name);
        }
    }
}
