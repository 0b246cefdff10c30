package org.prilora.io;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes a file so that a crash at any moment leaves either the previous file or the complete new one: the
 * content goes to a temporary sibling file, is forced to disk, and is renamed over the target in one atomic
 * step; the directory is then synced so the rename itself is durable. On failure the temporary file is
 * removed and the previous file is untouched. The directory must exist. Used for every file this project writes.
 */
public final class AtomicFiles {
    private AtomicFiles() {
    }

    /** Writes the content through a channel (positioned at 0, empty). */
    @FunctionalInterface
    public interface ChannelWriter {
        void write(FileChannel channel) throws IOException;
    }

    /** Writes the content through a stream (not to be closed by the writer). */
    @FunctionalInterface
    public interface StreamWriter {
        void write(OutputStream out) throws IOException;
    }

    /** Atomically replaces {@code file} with what {@code writer} writes to a stream. */
    public static void write(Path file, StreamWriter writer) throws IOException {
        writeChannel(file, ch -> {
            // The writer may close its stream (a ZipOutputStream does); the channel must stay open for force().
            OutputStream out = new java.io.FilterOutputStream(Channels.newOutputStream(ch)) {
                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    this.out.write(b, off, len);
                }

                @Override
                public void close() throws IOException {
                    flush();
                }
            };
            writer.write(out);
            out.flush();
        });
    }

    /** Atomically replaces {@code file} with {@code bytes}. */
    public static void write(Path file, byte[] bytes) throws IOException {
        write(file, out -> out.write(bytes));
    }

    /** Atomically replaces {@code file} with what {@code writer} writes to a file channel. */
    public static void writeChannel(Path file, ChannelWriter writer) throws IOException {
        Path target = file.toAbsolutePath();
        Path dir = target.getParent();
        Path tmp = createSibling(dir, target.getFileName().toString());
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                writer.write(ch);
                ch.force(true); // the data must be durable before the rename can expose it
            }
            copyPermissions(target, tmp);
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (Throwable t) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException cleanup) {
                t.addSuppressed(cleanup);
            }
            throw t;
        }
        syncDirectory(dir);
    }

    private static Path createSibling(Path dir, String targetName) throws IOException {
        // Keep the name short enough for file systems with a 255-byte name limit.
        String base = targetName.codePointCount(0, targetName.length()) > 64
                ? targetName.substring(0, targetName.offsetByCodePoints(0, 64)) : targetName;
        for (int attempt = 0; ; attempt++) {
            Path tmp = dir.resolve("." + base + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
            try {
                return Files.createFile(tmp);
            } catch (FileAlreadyExistsException e) {
                if (attempt >= 100) {
                    throw e;
                }
            }
        }
    }

    /** Best effort: a rewritten file keeps the permissions of the one it replaces. */
    private static void copyPermissions(Path from, Path to) {
        try {
            if (Files.exists(from) && Files.getFileAttributeView(to, PosixFileAttributeView.class) != null) {
                Files.setPosixFilePermissions(to, Files.getPosixFilePermissions(from));
            }
        } catch (IOException | UnsupportedOperationException ignored) {
            // permissions are a courtesy; the data is what must be right
        }
    }

    /** Best effort: makes the rename itself durable. Not possible on every platform (Windows). */
    private static void syncDirectory(Path dir) {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException | UnsupportedOperationException ignored) {
            // the file content is already durable; only the directory entry may lag
        }
    }
}
