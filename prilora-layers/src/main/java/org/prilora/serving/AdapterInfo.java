package org.prilora.serving;

import java.nio.file.Path;

/**
 * A registered adapter as {@link AdapterRegistry#adapters()} reports it.
 *
 * @param id       the adapter id requests use
 * @param source   the adapter file or PEFT directory it (re)loads from
 * @param format   {@code "prilora"} (native adapter file) or {@code "peft"} (PEFT directory)
 * @param resident whether its tensors are in memory now (false after an LRU eviction, until the next request)
 * @param bytes    its tensors' bytes in memory when resident: low-rank factors, saved layers (heads), and copies of
 *                 adapted layers that have no shared-base kernel
 * @param loads    how many times it has been read from {@code source} (1 at registration, +1 per reload after eviction)
 */
public record AdapterInfo(String id, Path source, String format, boolean resident, long bytes, int loads) {
}
