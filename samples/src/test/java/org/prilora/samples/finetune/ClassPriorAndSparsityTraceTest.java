package org.prilora.samples.finetune;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.ModuleFigures;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** The class-prior handling and the pruning-survival figures, against values worked out by hand. */
class ClassPriorAndSparsityTraceTest {

    @Test
    void trainingOnTheSplitsOwnSharesNeedsNoCorrection() {
        ClassPrior p = ClassPrior.of(736, 1000, 368, 500, false);
        assertThat(p.logitShift()[0]).isCloseTo(0.0, within(1e-12));
        assertThat(p.logitShift()[1]).isCloseTo(0.0, within(1e-12));
        assertThat(p.labelMask(Nd4j.create(new float[][]{{1, 0}}))).isNull();
    }

    @Test
    void balancedTrainingIsCorrectedByBayesRule() {
        // trained on 50/50, the split is 73.6 % acceptable: p(y|x) ∝ p_balanced(y|x) · π_y / 0.5
        ClassPrior p = ClassPrior.of(736, 1000, 250, 500, false);
        double pb1 = 0.4; // a balanced-posterior of "acceptable"
        double expected = pb1 * 0.736 / (pb1 * 0.736 + (1 - pb1) * 0.264);
        double z0 = 0.0;
        double z1 = Math.log(pb1 / (1 - pb1));
        double s0 = z0 + p.logitShift()[0];
        double s1 = z1 + p.logitShift()[1];
        double corrected = Math.exp(s1) / (Math.exp(s0) + Math.exp(s1));
        assertThat(corrected).isCloseTo(expected, within(1e-12));
    }

    @Test
    void classWeightsGiveBothClassesEqualTotalWeightAndAreCorrectedBack() {
        ClassPrior p = ClassPrior.of(736, 1000, 300, 400, true); // sample 75 % acceptable
        assertThat(p.weights()[1] * 300).isCloseTo(p.weights()[0] * 100, within(1e-9));
        assertThat(p.weights()[1] * 300 + p.weights()[0] * 100).isCloseTo(400, within(1e-9));
        assertThat(p.trainedAcceptable()).isEqualTo(0.5);
        INDArray labels = Nd4j.create(new float[][]{{0, 1}, {1, 0}, {0, 1}});
        INDArray m = p.labelMask(labels);
        assertThat(m.shape()).containsExactly(3, 1);
        assertThat(m.getDouble(0, 0)).isCloseTo(0.5 / 0.75, within(1e-6));
        assertThat(m.getDouble(1, 0)).isCloseTo(0.5 / 0.25, within(1e-6));
        assertThat(m.dataType()).isEqualTo(DataType.FLOAT);
        assertThat(p.describe()).contains("73.6% acceptable").contains("loss saw 50.0%").contains("class weights");
    }

    @Test
    void aMissingClassIsRejected() {
        assertThatThrownBy(() -> ClassPrior.of(10, 10, 5, 10, false)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("split 10/10");
    }

    private static List<ModuleFigures> figures(double zerosSmall, double zerosLarge) {
        // two modules: 2 x 10 = 20 entries and 4 x 10 = 40 entries of A
        return List.of(new ModuleFigures("l0", "", 2, 10, 10, zerosSmall, 1, 1, 1, 1),
                new ModuleFigures("l1", "", 4, 10, 10, zerosLarge, 1, 1, 1, 1));
    }

    @Test
    void survivalIsZerosBeforeTheNextPruningOverZerosRightAfterIt() {
        SparsityTrace t = new SparsityTrace(6);
        t.record(1, figures(0, 0), 0);
        t.record(2, figures(0.5, 0.5), 1);     // pruned: 0.5 of all entries
        t.record(3, figures(0.5, 0.125), 1);   // (10 + 5) / 60 = 0.25
        t.record(4, figures(0.2, 0.2), 2);     // pruned again: 0.2; before it (step 3) 0.25 -> survival 0.5
        t.record(5, figures(0.0, 0.1), 2);     // 4 / 60
        t.record(6, figures(0.0, 0.0), 2);
        SparsityTrace.Survival s = t.survival();
        assertThat(s.pruningSteps()).containsExactly(2, 4);
        assertThat(s.afterPruning()).isCloseTo((0.5 + 0.2) / 2, within(1e-12));
        assertThat(s.afterOneStep()).isCloseTo((0.25 + 4.0 / 60) / 2, within(1e-12));
        assertThat(s.beforeNextPruning()).isCloseTo(0.25, within(1e-12));
        assertThat(s.survival()).isCloseTo(0.5, within(1e-12));
        assertThat(s.finalSparsity()).isEqualTo(0.0);
        assertThat(new SparsityTrace(3).survival()).isNull();
    }
}
