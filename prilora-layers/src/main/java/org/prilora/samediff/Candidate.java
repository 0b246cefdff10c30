package org.prilora.samediff;

import org.nd4j.autodiff.functions.DifferentialFunction;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.VariableType;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.autodiff.samediff.internal.Variable;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.api.ops.impl.transforms.custom.XwPlusB;
import org.prilora.config.PriLoraConfig;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** A matrix multiplication of a SameDiff graph that {@link SameDiffPriLora#inject} can adapt, and how it finds and checks them. */
final class Candidate {
    final String opName;
    final GraphModule.OpKind kind;
    final String input;
    final String weight;
    final String bias;
    final String output;
    final boolean transposeA;
    final boolean transposeB;
    final boolean transposeResult;
    final double alpha;

    Candidate(String opName, GraphModule.OpKind kind, String input, String weight, String bias, String output,
              boolean transposeA, boolean transposeB, boolean transposeResult, double alpha) {
        this.opName = opName;
        this.kind = kind;
        this.input = input;
        this.weight = weight;
        this.bias = bias;
        this.output = output;
        this.transposeA = transposeA;
        this.transposeB = transposeB;
        this.transposeResult = transposeResult;
        this.alpha = alpha;
    }

    /** Every supported op whose second operand is a VARIABLE or CONSTANT, in graph (insertion) order. */
    static List<Candidate> all(SameDiff sd) {
        List<Candidate> out = new ArrayList<>();
        for (SameDiffOp op : sd.getOps().values()) {
            DifferentialFunction f = op.getOp();
            GraphModule.OpKind kind;
            // Exact classes: subclasses (none in M2.1) could change the semantics.
            if (f != null && f.getClass() == Mmul.class) {
                kind = GraphModule.OpKind.MMUL;
            } else if (f != null && f.getClass() == XwPlusB.class) {
                kind = GraphModule.OpKind.XW_PLUS_B;
            } else {
                continue;
            }
            List<String> in = op.getInputsToOp();
            List<String> outs = op.getOutputsOfOp();
            if (in == null || in.size() < 2 || outs == null || outs.size() != 1) {
                continue;
            }
            Variable w = sd.getVariables().get(in.get(1));
            if (w == null) {
                continue;
            }
            VariableType t = w.getVariable().getVariableType();
            if (t != VariableType.VARIABLE && t != VariableType.CONSTANT) {
                continue;   // activation × activation (e.g. Q·Kᵀ): nothing to adapt
            }
            boolean ta = false, tb = false, tr = false;
            double alpha = 1.0;
            if (kind == GraphModule.OpKind.MMUL) {
                DynamicCustomOp dc = (DynamicCustomOp) f;
                long[] ia = dc.iArgs();
                ta = flag(ia, 0, f, "transposeA");
                tb = flag(ia, 1, f, "transposeB");
                tr = flag(ia, 2, f, "transposeResult");
                double[] ta2 = dc.tArgs();
                if (ta2 != null && ta2.length > 0) {
                    alpha = ta2[0];
                }
            }
            String bias = kind == GraphModule.OpKind.XW_PLUS_B && in.size() > 2 ? in.get(2) : null;
            out.add(new Candidate(op.getName(), kind, in.get(0), in.get(1), bias, outs.get(0), ta, tb, tr, alpha));
        }
        return out;
    }

    private static boolean flag(long[] iArgs, int i, DifferentialFunction f, String property) {
        if (iArgs != null && iArgs.length > i) {
            return iArgs[i] != 0;
        }
        Map<String, Object> p = f.propertiesForFunction();
        return p != null && Boolean.TRUE.equals(p.get(property));
    }

    /** Checks every matched op before anything changes, and reports all problems at once. */
    static void validate(SameDiff sd, List<Candidate> matched, PriLoraConfig cfg) {
        List<String> problems = new ArrayList<>();
        Set<String> weights = new HashSet<>();
        for (Candidate c : matched) {
            String where = "weight '" + c.weight + "' (op '" + c.opName + "')";
            if (!weights.add(c.weight)) {
                problems.add(where + ": the weight feeds more than one op; shared weights are not supported");
                continue;
            }
            if (c.transposeA || c.transposeResult) {
                problems.add(where + ": mmul with transposeA=" + c.transposeA + ", transposeResult=" + c.transposeResult
                        + " is not supported (only x·W and x·Wᵀ, i.e. transposeB, can be adapted)");
            }
            if (c.alpha != 1.0) {
                problems.add(where + ": mmul with alpha " + c.alpha + " is not supported (expected 1)");
            }
            if (c.input.equals(c.weight)) {
                problems.add(where + ": the weight is also the op's first operand");
            }
            INDArray w = sd.getArrForVarName(c.weight);
            if (w == null || w.rank() != 2 || !w.dataType().isFPType()) {
                problems.add(where + ": expected a 2-D floating-point weight, got "
                        + (w == null ? "no array" : Arrays.toString(w.shape()) + " " + w.dataType()));
            }
            Variable wv = sd.getVariables().get(c.weight);
            List<String> users = wv.getInputsForOp() == null ? List.of() : wv.getInputsForOp();
            if (!users.equals(List.of(c.opName))) {
                problems.add(where + ": the weight feeds the ops " + users + "; shared weights are not supported");
            }
            SameDiffOp op = sd.getOps().get(c.opName);
            if (notEmpty(op.getControlDeps()) || notEmpty(op.getVarControlDeps()) || notEmpty(op.getControlDepFor())) {
                problems.add(where + ": the op has control dependencies, which injection cannot carry over");
            }
            Variable y = sd.getVariables().get(c.output);
            if (notEmpty(y.getControlDeps()) || notEmpty(y.getControlDepsForOp()) || notEmpty(y.getControlDepsForVar())) {
                problems.add(where + ": its output '" + c.output + "' has control dependencies, which injection cannot carry over");
            }
            for (String suffix : List.of(SameDiffPriLora.A_SUFFIX, SameDiffPriLora.B_SUFFIX, SameDiffPriLora.STATE_SUFFIX, SameDiffPriLora.MASK_SUFFIX)) {
                if (sd.hasVariable(c.weight + suffix)) {
                    problems.add(where + ": a variable named '" + c.weight + suffix + "' already exists");
                }
            }
            if (cfg.modulesToSave().contains(c.weight)) {
                problems.add(where + ": it is both adapted and listed in modulesToSave");
            }
        }
        for (String m : cfg.modulesToSave()) {
            SDVariable v = sd.getVariable(m);
            if (v == null || v.getVariableType() != VariableType.VARIABLE) {
                problems.add("modulesToSave names '" + m + "', which is not a VARIABLE of this graph"
                        + (v == null ? "" : " (it is a " + v.getVariableType() + ")"));
            }
        }
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException("PRILoRA: cannot adapt this graph:\n  - " + String.join("\n  - ", problems));
        }
    }

    private static boolean notEmpty(List<?> l) {
        return l != null && !l.isEmpty();
    }
}
