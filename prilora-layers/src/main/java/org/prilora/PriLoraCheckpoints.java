package org.prilora;

import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.util.ModelSerializer;
import org.prilora.io.AtomicFiles;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Checkpoints for exact resume. A checkpoint is a DL4J {@code ModelSerializer} file with the updater state,
 * written atomically. It holds everything PRILoRA training needs: the parameters (frozen weights, A, B, and the
 * non-trainable input statistics and masks, which are parameters), the optimizer state, and the iteration and
 * epoch counters (in the configuration) from which {@link org.prilora.PriLoraListener} derives its
 * pruning step. A new listener built from the same {@code PruningSchedule} on a restored model continues
 * exactly; on the CPU backend with the same data order the parameters match an uninterrupted run bit for bit.
 *
 * <p>In a directory, checkpoints are named {@code checkpoint-<iteration>.zip}; {@link #latest} returns the newest
 * one that restores (a crash can only ever leave temporary files, which are ignored).
 */
public final class PriLoraCheckpoints {
    private static final Pattern NAME = Pattern.compile("checkpoint-(\\d+)\\.zip");

    private PriLoraCheckpoints() {
    }

    /** Writes {@code net} (with updater state) to {@code file} atomically. */
    public static void save(Model net, Path file) throws IOException {
        Objects.requireNonNull(net, "net");
        Files.createDirectories(file.toAbsolutePath().getParent());
        AtomicFiles.write(file, out -> ModelSerializer.writeModel(net, out, true));
    }

    /** Writes {@code checkpoint-<iteration>.zip} into {@code dir} and keeps only the newest {@code keep} checkpoints. */
    public static Path saveTo(Path dir, Model net, int keep) throws IOException {
        if (keep < 1) {
            throw new IllegalArgumentException("keep: expected >= 1, got " + keep);
        }
        int iteration = net instanceof MultiLayerNetwork ? ((MultiLayerNetwork) net).getIterationCount()
                : ((ComputationGraph) net).getIterationCount();
        Path file = dir.resolve("checkpoint-" + iteration + ".zip");
        save(net, file);
        List<Path> all = list(dir);
        for (int i = 0; i < all.size() - keep; i++) {
            Files.deleteIfExists(all.get(i));
        }
        return file;
    }

    public static MultiLayerNetwork restoreMultiLayerNetwork(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return ModelSerializer.restoreMultiLayerNetwork(in, true);
        } catch (RuntimeException e) {
            throw new IOException("checkpoint " + file + " could not be restored (" + e.getMessage() + ")", e);
        }
    }

    public static ComputationGraph restoreComputationGraph(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return ModelSerializer.restoreComputationGraph(in, true);
        } catch (RuntimeException e) {
            throw new IOException("checkpoint " + file + " could not be restored (" + e.getMessage() + ")", e);
        }
    }

    /** Checkpoint files in {@code dir}, oldest (lowest iteration) first. */
    public static List<Path> list(Path dir) throws IOException {
        List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return out;
        }
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                if (NAME.matcher(p.getFileName().toString()).matches()) {
                    out.add(p);
                }
            }
        }
        out.sort(Comparator.comparingLong(PriLoraCheckpoints::iterationOf));
        return out;
    }

    private static long iterationOf(Path p) {
        Matcher m = NAME.matcher(p.getFileName().toString());
        return m.matches() ? Long.parseLong(m.group(1)) : -1;
    }

    /** The newest checkpoint in {@code dir} that restores as a MultiLayerNetwork, if any. */
    public static Optional<MultiLayerNetwork> latest(Path dir) throws IOException {
        List<Path> all = list(dir);
        for (int i = all.size() - 1; i >= 0; i--) {
            try {
                return Optional.of(restoreMultiLayerNetwork(all.get(i)));
            } catch (IOException e) {
                // only possible if the file was damaged outside this class; fall back to the previous one
            }
        }
        return Optional.empty();
    }
}
