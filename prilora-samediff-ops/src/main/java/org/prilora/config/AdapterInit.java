package org.prilora.config;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.rng.Random;
import org.nd4j.linalg.factory.Nd4j;

/** Initialisation of a LoRA A matrix {@code [r, nIn]}; B always starts at zero so the adapted model equals the base. */
public enum AdapterInit {
    /** Kaiming-uniform with a = √5 (PEFT's default): U(-1/√nIn, 1/√nIn). */
    KAIMING_UNIFORM,
    /** Normal with standard deviation 1/r (PEFT's {@code init_lora_weights="gaussian"}). */
    GAUSSIAN;

    /** Fills {@code a} ({@code [r, nIn]}) in place from {@code rng}. */
    public void initA(INDArray a, Random rng) {
        long r = a.size(0);
        long nIn = a.size(1);
        if (this == KAIMING_UNIFORM) {
            double bound = 1.0 / Math.sqrt(nIn);
            a.assign(Nd4j.rand(a.shape(), -bound, bound, rng));
        } else {
            a.assign(Nd4j.randn(0.0, 1.0 / r, a.shape(), rng));
        }
    }
}
