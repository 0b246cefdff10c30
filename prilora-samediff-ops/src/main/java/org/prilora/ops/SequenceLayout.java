package org.prilora.ops;

/**
 * Layout of a 3-D batch of sequences, named as DL4J's {@code RNNFormat} (so {@code SequenceLayout.valueOf(format.name())}
 * converts): the ops module keeps its own enum so that the math does not depend on DL4J's network classes.
 */
public enum SequenceLayout {
    /** {@code [mb, features, T]}. */
    NCW,
    /** {@code [mb, T, features]}. */
    NWC
}
