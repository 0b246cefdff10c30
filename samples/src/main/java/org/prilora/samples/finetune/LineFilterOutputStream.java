package org.prilora.samples.finetune;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Passes output through line by line, dropping lines that start with one of the given prefixes.
 *
 * <p>Why: ND4J 1.0.0-M2.1's SameDiff prints {@code "Added differentiated op …"} to standard output for every op
 * when it builds a gradient graph, about 70 lines per BERT block on the first training step (420 for MiniLM),
 * which buries the progress lines. Installed on {@link System#out} by the command's {@code main} only.
 */
public final class LineFilterOutputStream extends OutputStream {

    private final OutputStream out;
    private final List<byte[]> prefixes;
    private final ByteArrayOutputStream line = new ByteArrayOutputStream(256);

    /**
     * @param out      where kept lines go
     * @param prefixes lines starting with any of these (UTF-8) are dropped
     */
    public LineFilterOutputStream(OutputStream out, List<String> prefixes) {
        this.out = out;
        this.prefixes = prefixes.stream().map(p -> p.getBytes(StandardCharsets.UTF_8)).toList();
    }

    @Override
    public synchronized void write(int b) throws IOException {
        line.write(b);
        if (b == '\n') {
            emit();
        }
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) throws IOException {
        for (int i = off; i < off + len; i++) {
            write(b[i]);
        }
    }

    @Override
    public synchronized void flush() throws IOException {
        // a partial line cannot be judged yet unless it already differs from every prefix
        if (line.size() > 0 && !couldMatch(line.toByteArray())) {
            emit();
        }
        out.flush();
    }

    @Override
    public synchronized void close() throws IOException {
        emit();
        out.close();
    }

    private void emit() throws IOException {
        byte[] l = line.toByteArray();
        line.reset();
        if (l.length > 0 && !dropped(l)) {
            out.write(l);
        }
    }

    private boolean dropped(byte[] l) {
        for (byte[] p : prefixes) {
            if (l.length >= p.length && startsWith(l, p, p.length)) {
                return true;
            }
        }
        return false;
    }

    /** Whether the partial line is still a prefix of, or starts with, some dropped prefix. */
    private boolean couldMatch(byte[] partial) {
        for (byte[] p : prefixes) {
            if (startsWith(partial, p, Math.min(partial.length, p.length))) {
                return true;
            }
        }
        return false;
    }

    private static boolean startsWith(byte[] a, byte[] p, int n) {
        for (int i = 0; i < n; i++) {
            if (a[i] != p[i]) {
                return false;
            }
        }
        return true;
    }
}
