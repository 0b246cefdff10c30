package org.prilora.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.AbstractMap;
import java.util.AbstractSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assumptions.assumeThat;

/** A failed write must leave the previous file byte-identical and no temporary files behind. */
class SafeTensorsAtomicWriteTest {

    private static final Map<String, INDArray> OLD = Map.of("old", Nd4j.createFromArray(1f, 2f, 3f));

    private static List<String> listing(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().collect(Collectors.toList());
        }
    }

    private static boolean posix() {
        return FileSystems.getDefault().supportedFileAttributeViews().contains("posix");
    }

    @Test
    void replacesAnExistingFileAndLeavesNothingElse(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("adapter.safetensors");
        SafeTensors.write(f, OLD, null);
        SafeTensors.write(f, Map.of("new", Nd4j.createFromArray(5.0)), Map.of("v", "2"));
        assertThat(SafeTensors.read(f).keySet()).containsExactly("new");
        assertThat(SafeTensors.readMetadata(f)).containsEntry("v", "2");
        assertThat(listing(dir)).containsExactly("adapter.safetensors");
    }

    @Test
    void failureWhileWritingTensorDataKeepsThePreviousFile(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("adapter.safetensors");
        SafeTensors.write(f, OLD, Map.of("generation", "1"));
        byte[] before = Files.readAllBytes(f);

        // "a" (F64) is laid out first and written; reading "b"'s data (F32, second) then fails,
        // i.e. the temporary file already holds the header and one tensor.
        INDArray real = Nd4j.createFromArray(1f, 2f);
        InvocationHandler failOnData = (proxy, method, args) -> {
            if (method.getName().equals("data") || method.getName().startsWith("dup")) {
                throw new IllegalStateException("simulated failure while reading tensor data");
            }
            try {
                return method.invoke(real, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        };
        INDArray failing = (INDArray) Proxy.newProxyInstance(INDArray.class.getClassLoader(),
                new Class<?>[]{INDArray.class}, failOnData);
        Map<String, INDArray> next = new LinkedHashMap<>();
        next.put("b", failing);
        next.put("a", Nd4j.createFromArray(new double[1000]));

        assertThatThrownBy(() -> SafeTensors.write(f, next, Map.of("generation", "2")))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("simulated failure");
        assertThat(Files.readAllBytes(f)).isEqualTo(before);
        assertThat(listing(dir)).containsExactly("adapter.safetensors");
    }

    @Test
    void failureWhileIteratingTheMapKeepsThePreviousFile(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("adapter.safetensors");
        SafeTensors.write(f, OLD, null);
        byte[] before = Files.readAllBytes(f);
        Map<String, INDArray> exploding = new AbstractMap<>() {
            @Override
            public Set<Entry<String, INDArray>> entrySet() {
                return new AbstractSet<>() {
                    @Override
                    public Iterator<Entry<String, INDArray>> iterator() {
                        return new Iterator<>() {
                            private int served;

                            @Override
                            public boolean hasNext() {
                                return true;
                            }

                            @Override
                            public Entry<String, INDArray> next() {
                                if (served++ == 1) {
                                    throw new IllegalStateException("map iteration failed");
                                }
                                return Map.entry("first", Nd4j.createFromArray(1f));
                            }
                        };
                    }

                    @Override
                    public int size() {
                        return 2;
                    }
                };
            }
        };
        assertThatThrownBy(() -> SafeTensors.write(f, exploding, null)).hasMessage("map iteration failed");
        assertThat(Files.readAllBytes(f)).isEqualTo(before);
        assertThat(listing(dir)).containsExactly("adapter.safetensors");
    }

    @Test
    void failedRenameRemovesTheTemporaryFile(@TempDir Path dir) throws IOException {
        // Renaming over a non-empty directory fails even for root, after all data has been written.
        Path target = dir.resolve("model.safetensors");
        Files.createDirectory(target);
        Files.writeString(target.resolve("keep.txt"), "x");
        assertThatThrownBy(() -> SafeTensors.write(target, OLD, null)).isInstanceOf(IOException.class);
        assertThat(listing(dir)).containsExactly("model.safetensors");
        assertThat(listing(target)).containsExactly("keep.txt");
    }

    @Test
    void missingDirectoryFailsWithoutCreatingAnything(@TempDir Path dir) throws IOException {
        assertThatThrownBy(() -> SafeTensors.write(dir.resolve("no/such/dir/x.safetensors"), OLD, null))
                .isInstanceOf(NoSuchFileException.class);
        assertThat(listing(dir)).isEmpty();
    }

    @Test
    void invalidInputFailsBeforeTouchingTheDisk(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("adapter.safetensors");
        SafeTensors.write(f, OLD, null);
        byte[] before = Files.readAllBytes(f);
        assertThatThrownBy(() -> SafeTensors.write(f, Map.of(SafeTensors.METADATA_KEY, Nd4j.createFromArray(1f)), null))
                .isInstanceOf(IllegalArgumentException.class);
        assertThat(Files.readAllBytes(f)).isEqualTo(before);
        assertThat(listing(dir)).containsExactly("adapter.safetensors");
    }

    @Test
    void readOnlyDirectoryKeepsThePreviousFile(@TempDir Path dir) throws IOException {
        assumeThat(posix()).as("POSIX permissions").isTrue();
        Path sub = Files.createDirectory(dir.resolve("ro"));
        Path f = sub.resolve("adapter.safetensors");
        SafeTensors.write(f, OLD, null);
        byte[] before = Files.readAllBytes(f);
        Set<PosixFilePermission> rw = Files.getPosixFilePermissions(sub);
        Files.setPosixFilePermissions(sub, PosixFilePermissions.fromString("r-xr-xr-x"));
        try {
            assumeThat(Files.isWritable(sub)).as("directory really read-only (not running as root)").isFalse();
            assertThatThrownBy(() -> SafeTensors.write(f, Map.of("new", Nd4j.createFromArray(9f)), null))
                    .isInstanceOf(AccessDeniedException.class);
            assertThat(Files.readAllBytes(f)).isEqualTo(before);
            assertThat(listing(sub)).containsExactly("adapter.safetensors");
        } finally {
            Files.setPosixFilePermissions(sub, rw);
        }
    }

    @Test
    void permissionsFollowTheUmaskOrTheReplacedFile(@TempDir Path dir) throws IOException {
        assumeThat(posix()).as("POSIX permissions").isTrue();
        // A fresh file gets what any newly created file gets (not the owner-only mode of temp files).
        Path reference = Files.createFile(dir.resolve("reference"));
        Path fresh = dir.resolve("fresh.safetensors");
        SafeTensors.write(fresh, OLD, null);
        assertThat(Files.getPosixFilePermissions(fresh)).isEqualTo(Files.getPosixFilePermissions(reference));

        // A replaced file keeps its mode.
        Set<PosixFilePermission> custom = PosixFilePermissions.fromString("rw-r-----");
        Files.setPosixFilePermissions(fresh, custom);
        SafeTensors.write(fresh, Map.of("x", Nd4j.createFromArray(2f)), null);
        assertThat(Files.getPosixFilePermissions(fresh)).isEqualTo(custom);
    }
}
