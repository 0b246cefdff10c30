package org.prilora.parallel;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.Serializable;
import java.util.Arrays;

/**
 * A flat vector of float32 or float64 values in plain Java arrays: what the driver ships to workers (trainable
 * parameters and masks) and what workers send back (gradient sums). Plain arrays, so it serializes with Java
 * serialization everywhere (Spark tasks, results, broadcasts) without ND4J on the wire.
 */
public final class FlatValues implements Serializable {
    private static final long serialVersionUID = 1L;

    private final float[] f;
    private final double[] d;

    private FlatValues(float[] f, double[] d) {
        this.f = f;
        this.d = d;
    }

    /** Zeros of {@code length}, double when {@code dataType} is DOUBLE, float otherwise. */
    public static FlatValues zeros(DataType dataType, int length) {
        return dataType == DataType.DOUBLE ? new FlatValues(null, new double[length]) : new FlatValues(new float[length], null);
    }

    /** Whether the values are float64. */
    public boolean isDouble() {
        return d != null;
    }

    public int length() {
        return d != null ? d.length : f.length;
    }

    /** Copies {@code src} (a contiguous vector) into positions {@code [at, at + src.length())}. */
    void put(int at, INDArray src) {
        if (d != null) {
            double[] v = src.castTo(DataType.DOUBLE).dup('c').data().asDouble();
            System.arraycopy(v, 0, d, at, v.length);
        } else {
            float[] v = src.castTo(DataType.FLOAT).dup('c').data().asFloat();
            System.arraycopy(v, 0, f, at, v.length);
        }
    }

    /** Positions {@code [at, at + length)} as a new ND4J vector of {@code dataType}. */
    INDArray slice(int at, int length, DataType dataType) {
        INDArray v = d != null ? Nd4j.createFromArray(Arrays.copyOfRange(d, at, at + length))
                : Nd4j.createFromArray(Arrays.copyOfRange(f, at, at + length));
        return v.dataType() == dataType ? v : v.castTo(dataType);
    }

    /** Adds {@code other} element-wise into this (same type and length). */
    void addInPlace(FlatValues other) {
        if (other.length() != length() || other.isDouble() != isDouble()) {
            throw new IllegalArgumentException("other: expected " + (isDouble() ? "double" : "float") + "[" + length()
                    + "], got " + (other.isDouble() ? "double" : "float") + "[" + other.length() + "]");
        }
        if (d != null) {
            for (int i = 0; i < d.length; i++) {
                d[i] += other.d[i];
            }
        } else {
            for (int i = 0; i < f.length; i++) {
                f[i] += other.f[i];
            }
        }
    }

    /** A copy. */
    public FlatValues copy() {
        return new FlatValues(f == null ? null : f.clone(), d == null ? null : d.clone());
    }

    /** The value at {@code i} as a double. */
    public double get(int i) {
        return d != null ? d[i] : f[i];
    }
}
