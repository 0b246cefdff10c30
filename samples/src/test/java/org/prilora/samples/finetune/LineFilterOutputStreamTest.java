package org.prilora.samples.finetune;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** Only whole lines with a dropped prefix disappear; everything else passes unchanged. */
class LineFilterOutputStreamTest {

    @Test
    void dropsOnlyMatchingLines() {
        ByteArrayOutputStream sink = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(new LineFilterOutputStream(sink, List.of("Added differentiated op")), true,
                StandardCharsets.UTF_8);
        ps.println("train 10% [==  ] 32/320 sent");
        ps.println("Added differentiated op matmul_7");
        ps.print("Added differ");
        ps.print("entiated op add\n");
        ps.println("dev: acc 0.7 MCC 0.2 — done");
        ps.print("partial line without newline");
        ps.flush();
        assertThat(sink.toString(StandardCharsets.UTF_8)).isEqualTo(
                "train 10% [==  ] 32/320 sent" + System.lineSeparator()
                        + "dev: acc 0.7 MCC 0.2 — done" + System.lineSeparator()
                        + "partial line without newline");
        ps.print("Added");
        ps.flush(); // could still become a dropped line: held back
        ps.println(" something else");
        assertThat(sink.toString(StandardCharsets.UTF_8)).endsWith("partial line without newlineAdded something else"
                + System.lineSeparator());
    }
}
