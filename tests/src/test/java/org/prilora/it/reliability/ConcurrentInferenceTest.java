package org.prilora.it.reliability;

import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.prilora.PriLora;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.assertj.core.api.Assertions.assertThat;

/** Inference on an adapted and on a merged network from several threads equals single-threaded inference. */
class ConcurrentInferenceTest {

    @Test
    void severalThreadsGetTheSameOutputsAsOne() throws Exception {
        MultiLayerNetwork adapted = ReliabilityFixture.adaptedNet();
        ReliabilityFixture.trainTo(adapted, 4);
        MultiLayerNetwork merged = PriLora.merge(adapted);
        for (MultiLayerNetwork net : List.of(adapted, merged)) {
            List<INDArray> inputs = new ArrayList<>();
            List<INDArray> expected = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                inputs.add(ReliabilityFixture.batch(100 + i).getFeatures());
                expected.add(net.output(inputs.get(i)));
            }
            ExecutorService pool = Executors.newFixedThreadPool(4);
            try {
                List<Future<Boolean>> results = new ArrayList<>();
                for (int thread = 0; thread < 4; thread++) {
                    final int offset = thread;
                    results.add(pool.submit(() -> {
                        boolean ok = true;
                        for (int rep = 0; rep < 25; rep++) {
                            int i = (rep + offset) % inputs.size();
                            ok &= net.output(inputs.get(i)).equals(expected.get(i));
                        }
                        return ok;
                    }));
                }
                for (Future<Boolean> f : results) {
                    assertThat(f.get()).isTrue();
                }
            } finally {
                pool.shutdownNow();
            }
        }
    }
}
