package org.prilora.spark;

import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.util.ModelSerializer;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;

/** A network as DL4J model-file bytes (no updater state): what is broadcast to the executors once. */
final class ModelBytes implements Serializable {
    private static final long serialVersionUID = 1L;

    private final boolean graph;
    private final byte[] bytes;

    private ModelBytes(boolean graph, byte[] bytes) {
        this.graph = graph;
        this.bytes = bytes;
    }

    static ModelBytes of(Model net) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            ModelSerializer.writeModel(net, out, false);
        } catch (IOException e) {
            throw new UncheckedIOException("could not serialize the network for the executors", e);
        }
        return new ModelBytes(net instanceof ComputationGraph, out.toByteArray());
    }

    Model restore() {
        try {
            return graph ? ModelSerializer.restoreComputationGraph(new ByteArrayInputStream(bytes), false)
                    : ModelSerializer.restoreMultiLayerNetwork(new ByteArrayInputStream(bytes), false);
        } catch (IOException e) {
            throw new UncheckedIOException("could not restore the broadcast network on an executor", e);
        }
    }

    int size() {
        return bytes.length;
    }
}
