package org.prilora.bert;

import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The two pieces of BERT's forward pass that ND4J's stock ops do not compute exactly as BERT does, written with
 * elementary SameDiff ops (all differentiable):
 * <ul>
 *   <li>LayerNorm with a chosen epsilon: {@code sd.nn.layerNorm} (libnd4j {@code layer_norm}) takes no epsilon
 *       (it standardizes by the plain standard deviation), BERT adds {@code eps} to the variance.</li>
 *   <li>The exact GELU {@code 0.5·x·(1 + erf(x/√2))} (Hugging Face's {@code "gelu"}): ND4J's {@code gelu} and
 *       {@code precise_gelu} are approximations, off by up to 9.8e-6 and 2.1e-5 on [-8, 8] (measured in double
 *       against this form; {@code sd.math.erf} itself matched to the last bit).</li>
 * </ul>
 */
public final class BertOps {

    private static final double INV_SQRT2 = 1.0 / Math.sqrt(2.0);

    private BertOps() {
    }

    /**
     * LayerNorm over dimension {@code dim}: {@code (x - mean) / sqrt(var + eps) · gain + bias}, with the biased
     * variance (as PyTorch). {@code gain} and {@code bias} must broadcast against {@code x} (e.g. {@code [1, n]}
     * for a 2-D {@code x} normalized over dimension 1).
     */
    public static SDVariable layerNorm(SameDiff sd, SDVariable x, SDVariable gain, SDVariable bias, double eps, int dim) {
        SDVariable centered = x.sub(x.mean(true, dim));
        SDVariable var = centered.mul(centered).mean(true, dim);
        SDVariable normed = centered.div(sd.math.sqrt(var.add(eps)));
        return normed.mul(gain).add(bias);
    }

    /** Exact (erf) GELU, Hugging Face's {@code "gelu"} activation. */
    public static SDVariable geluErf(SameDiff sd, SDVariable x) {
        return x.mul(0.5).mul(sd.math.erf(x.mul(INV_SQRT2)).add(1.0));
    }
}
