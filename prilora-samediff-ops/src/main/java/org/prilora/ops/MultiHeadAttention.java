package org.prilora.ops;

import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Multi-head scaled dot-product attention over projections that are already computed as 2-D row
 * matrices ({@code [mb·T, nHeads·headSize]}, rows ordered example-major: row = b·T + t). Written out
 * (instead of DL4J's fused {@code multiHeadDotProductAttention}) so that every projection can carry an
 * adapter. Uses ND4J's {@code dot_product_attention}, so masking and scaling are DL4J's: masked keys get
 * {@code -1e9} before the softmax, scores are divided by {@code √headSize}.
 */
public final class MultiHeadAttention {

    private MultiHeadAttention() {
    }

    /** Dynamic {@code [mb, T]} of a 3-D input, as a LONG vector of length 2. */
    public static SDVariable batchAndTime(SameDiff sd, SDVariable input3d, boolean ncw) {
        SDVariable shape = input3d.shape().castTo(DataType.LONG);
        SDVariable mb = shape.get(SDIndex.point(0)).reshape(1);
        SDVariable t = shape.get(SDIndex.point(ncw ? 2 : 1)).reshape(1);
        return sd.concat(0, mb, t);
    }

    /**
     * Attention of 2-D projected queries, keys and values.
     *
     * @param q2d         {@code [mb·T, nHeads·headSize]}
     * @param k2d         {@code [mb·T, nHeads·headSize]}
     * @param v2d         {@code [mb·T, nHeads·headSize]}
     * @param maskOrNull  {@code [mb, T]} key mask (1 = real token), or null
     * @param mbT         {@link #batchAndTime}
     * @return the attention context {@code [mb·T, nHeads·headSize]} (heads concatenated), rows as the inputs
     */
    public static SDVariable attend(SameDiff sd, SDVariable q2d, SDVariable k2d, SDVariable v2d, SDVariable maskOrNull,
                                    SDVariable mbT, int nHeads, int headSize) {
        SDVariable shape4 = sd.concat(0, mbT, sd.constant(org.nd4j.linalg.factory.Nd4j.createFromArray((long) nHeads, (long) headSize)));
        SDVariable q = toHeads(q2d, shape4);
        SDVariable k = toHeads(k2d, shape4);
        SDVariable v = toHeads(v2d, shape4);
        SDVariable ctx = sd.nn.dotProductAttention(q, k, v, maskOrNull, true);    // [mb, H, D, T]
        return ctx.permute(0, 3, 1, 2).reshape(-1, (long) nHeads * headSize);     // [mb·T, H·D]
    }

    /** {@code [mb·T, H·D]} → {@code [mb, H, D, T]}, the layout of ND4J's dot_product_attention. */
    private static SDVariable toHeads(SDVariable x2d, SDVariable shape4) {
        return x2d.reshape(shape4).permute(0, 2, 3, 1);
    }
}
