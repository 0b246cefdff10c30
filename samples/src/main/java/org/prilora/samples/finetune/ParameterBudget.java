package org.prilora.samples.finetune;

import org.prilora.bert.BertConfig;
import org.prilora.config.RankSchedule;

/**
 * Trainable parameters of an adapted BERT classifier, computed from the shapes (no network needed), so the
 * PRILoRA and LoRA budgets can be compared before anything is built. Every block adapts six projections:
 * query, key, value and attention output ({@code hidden → hidden}), intermediate ({@code hidden → intermediate})
 * and output ({@code intermediate → hidden}); an adapter of rank r on {@code nIn → nOut} trains
 * {@code r·(nIn + nOut)} parameters (A and B). The classifier trains {@code hidden·classes + classes}.
 */
public final class ParameterBudget {

    private ParameterBudget() {
    }

    /**
     * @param c        encoder shape
     * @param schedule ranks by block
     * @param classes  classifier outputs
     * @return adapter parameters of all blocks plus the classifier's
     */
    public static long trainable(BertConfig c, RankSchedule schedule, int classes) {
        long perRank = 4L * (c.hidden() + c.hidden()) + 2L * (c.hidden() + c.intermediate());
        long n = 0;
        for (int r : schedule.ranks(c.numLayers())) {
            n += r * perRank;
        }
        return n + head(c, classes);
    }

    /**
     * @param c       encoder shape
     * @param classes classifier outputs
     * @return parameters of the softmax classifier on the pooled hidden state
     */
    public static long head(BertConfig c, int classes) {
        return (long) c.hidden() * classes + classes;
    }
}
