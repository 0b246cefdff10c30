package org.prilora.bert;

/**
 * BERT's embeddings and one encoder block with LoRA adapters, in plain Java loops over {@code double} arrays,
 * written from the Hugging Face definition (not from the layer code) as an independent reference.
 * Shapes: activations {@code [mb][T][H]}, weights {@code W[in][out]}, {@code A[r][in]}, {@code B[out][r]}.
 */
final class BertReference {
    private BertReference() {
    }

    /** One adapted projection: {@code y = x·W + b + s·(x·Aᵀ)·Bᵀ}. */
    record Linear(double[][] w, double[] b, double[][] a, double[][] bLora, double scale) {
        double[] apply(double[] x) {
            int nOut = w[0].length;
            double[] y = b.clone();
            for (int i = 0; i < x.length; i++) {
                for (int o = 0; o < nOut; o++) {
                    y[o] += x[i] * w[i][o];
                }
            }
            int r = a.length;
            double[] h = new double[r];
            for (int k = 0; k < r; k++) {
                for (int i = 0; i < x.length; i++) {
                    h[k] += x[i] * a[k][i];
                }
            }
            for (int o = 0; o < nOut; o++) {
                for (int k = 0; k < r; k++) {
                    y[o] += scale * h[k] * bLora[o][k];
                }
            }
            return y;
        }
    }

    /** The block's tensors. */
    record Block(Linear q, Linear k, Linear v, Linear ao, Linear inter, Linear out, double[] ln1g, double[] ln1b,
                 double[] ln2g, double[] ln2b, int heads, double eps) {
    }

    static double[][][] embeddings(int[][] ids, int[][] types, double[][] word, double[][] pos, double[][] type,
                                   double[] g, double[] b, double eps) {
        int mb = ids.length;
        int t = ids[0].length;
        int h = word[0].length;
        double[][][] out = new double[mb][t][];
        for (int n = 0; n < mb; n++) {
            for (int s = 0; s < t; s++) {
                double[] e = new double[h];
                for (int j = 0; j < h; j++) {
                    e[j] = word[ids[n][s]][j] + pos[s][j] + type[types[n][s]][j];
                }
                out[n][s] = layerNorm(e, g, b, eps);
            }
        }
        return out;
    }

    static double[][][] block(double[][][] x, double[][] mask, Block p) {
        int mb = x.length;
        int t = x[0].length;
        int hidden = x[0][0].length;
        int d = hidden / p.heads();
        double[][][] out = new double[mb][t][];
        for (int n = 0; n < mb; n++) {
            double[][] q = new double[t][];
            double[][] k = new double[t][];
            double[][] v = new double[t][];
            for (int s = 0; s < t; s++) {
                q[s] = p.q().apply(x[n][s]);
                k[s] = p.k().apply(x[n][s]);
                v[s] = p.v().apply(x[n][s]);
            }
            for (int s = 0; s < t; s++) {
                double[] ctx = new double[hidden];
                for (int head = 0; head < p.heads(); head++) {
                    int off = head * d;
                    double[] score = new double[t];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int u = 0; u < t; u++) {
                        if (mask[n][u] == 0) {
                            continue; // padded keys get no attention
                        }
                        double dot = 0;
                        for (int j = 0; j < d; j++) {
                            dot += q[s][off + j] * k[u][off + j];
                        }
                        score[u] = dot / Math.sqrt(d);
                        max = Math.max(max, score[u]);
                    }
                    double z = 0;
                    for (int u = 0; u < t; u++) {
                        if (mask[n][u] != 0) {
                            score[u] = Math.exp(score[u] - max);
                            z += score[u];
                        }
                    }
                    for (int u = 0; u < t; u++) {
                        if (mask[n][u] != 0) {
                            for (int j = 0; j < d; j++) {
                                ctx[off + j] += score[u] / z * v[u][off + j];
                            }
                        }
                    }
                }
                double[] a = p.ao().apply(ctx);
                for (int j = 0; j < hidden; j++) {
                    a[j] += x[n][s][j];
                }
                double[] h1 = layerNorm(a, p.ln1g(), p.ln1b(), p.eps());
                double[] i = p.inter().apply(h1);
                for (int j = 0; j < i.length; j++) {
                    i[j] = 0.5 * i[j] * (1 + erf(i[j] / Math.sqrt(2)));
                }
                double[] o = p.out().apply(i);
                for (int j = 0; j < hidden; j++) {
                    o[j] += h1[j];
                }
                out[n][s] = layerNorm(o, p.ln2g(), p.ln2b(), p.eps());
            }
        }
        return out;
    }

    static double[] layerNorm(double[] x, double[] g, double[] b, double eps) {
        double mean = 0;
        for (double v : x) {
            mean += v;
        }
        mean /= x.length;
        double var = 0;
        for (double v : x) {
            var += (v - mean) * (v - mean);
        }
        var /= x.length;
        double[] y = new double[x.length];
        for (int j = 0; j < x.length; j++) {
            y[j] = (x[j] - mean) / Math.sqrt(var + eps) * g[j] + b[j];
        }
        return y;
    }

    /** erf to ~1e-15: Maclaurin series below 2, Laplace's continued fraction for erfc above. */
    static double erf(double x) {
        double ax = Math.abs(x);
        if (ax < 2) {
            double term = x;
            double s = x;
            for (int n = 1; n < 60; n++) {
                term *= -x * x / n;
                s += term / (2 * n + 1);
            }
            return 2 / Math.sqrt(Math.PI) * s;
        }
        double f = ax;
        for (int n = 80; n >= 1; n--) {
            f = ax + (n / 2.0) / f;
        }
        double erfc = Math.exp(-ax * ax) / (Math.sqrt(Math.PI) * f);
        return Math.signum(x) * (1 - erfc);
    }
}
