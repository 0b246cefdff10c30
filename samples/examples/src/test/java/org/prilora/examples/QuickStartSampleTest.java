package org.prilora.examples;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.dataset.adapter.SingletonDataSetIterator;
import org.prilora.ModuleFigures;
import org.prilora.PriLoraListener;

import static org.assertj.core.api.Assertions.assertThat;

/** The quick start's program on a small budget, so that the examples cannot silently stop working. */
class QuickStartSampleTest {

    @Test
    void trainsTheAdaptersWithRanksByDepthAndPrunes() {
        MultiLayerNetwork net = QuickStartSample.train(5);   // 100 steps: pruning at steps 50, 70 and 90

        assertThat(net.getListeners()).singleElement().isInstanceOfSatisfying(PriLoraListener.class,
                l -> assertThat(l.getPruningStepsDone()).isEqualTo(3));

        assertThat(PriLoraListener.figures(net)).extracting(ModuleFigures::rank).containsExactly(2, 5, 8);
        assertThat(PriLoraListener.figures(net)).allSatisfy(f -> assertThat(f.xnormMean()).isPositive());
        DataSet test = Spirals.generate(1000, 2);
        assertThat(net.evaluate(new SingletonDataSetIterator(test)).accuracy()).isGreaterThan(0.9);
    }
}
