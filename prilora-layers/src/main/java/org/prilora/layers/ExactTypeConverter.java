package org.prilora.layers;

import org.deeplearning4j.nn.conf.layers.Layer;

import java.util.Objects;

/**
 * A {@link LayerConverter} between two exact layer classes (subclasses, which may change the semantics, are not
 * matched): the base of the built-in converters.
 */
public abstract class ExactTypeConverter implements LayerConverter {
    private final Class<? extends Layer> plainClass;
    private final Class<? extends Layer> adaptedClass;

    protected ExactTypeConverter(Class<? extends Layer> plainClass, Class<? extends Layer> adaptedClass) {
        this.plainClass = Objects.requireNonNull(plainClass, "plainClass");
        this.adaptedClass = Objects.requireNonNull(adaptedClass, "adaptedClass");
    }

    @Override
    public String plainType() {
        return plainClass.getSimpleName();
    }

    @Override
    public boolean adapts(Layer plain) {
        return plain.getClass() == plainClass;
    }

    @Override
    public boolean merges(Layer adapted) {
        return adapted.getClass() == adaptedClass;
    }
}
