package org.prilora.layers;

import java.util.Map;

/**
 * A {@link PriLoraLayer} whose forward pass is a SameDiff graph run by {@link PriLoraSameDiffRuntime}: it names, for
 * each module, the graph variable holding the module's 2-D input, so the runtime can measure input norms.
 */
public interface PriLoraGraphLayer extends PriLoraLayer {

    /** Module name → graph variable of its 2-D input {@code [mb·T, nIn]} (rows b·T + t), recorded by the last definition. */
    Map<String, String> moduleInputVariables();
}
