package org.prilora.samples.finetune;

import me.tongfei.progressbar.ProgressBar;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;

/** Without a terminal the bars must come out as whole, newline-terminated ASCII lines (CI logs, mvn exec:exec). */
class ProgressBarsTest {

    @Test
    void logModePrintsCompleteLinesWithSpeedAndMessage() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        ProgressBars bars = new ProgressBars(false, ps);
        try (ProgressBar bar = bars.start("train lora s1", 64)) {
            bar.stepBy(32);
            bar.setExtraMessage(ProgressBars.extra("step 1/2 loss 0.693"));
            bar.stepBy(32);
            bar.setExtraMessage(ProgressBars.extra("step 2/2 loss 0.650"));
        }
        String out = bytes.toString(StandardCharsets.UTF_8);
        assertThat(out).doesNotContain("\r").endsWith(System.lineSeparator());
        String[] lines = out.strip().split("\\R");
        String last = lines[lines.length - 1];
        assertThat(last).startsWith("train lora s1 100%").contains("64/64 sent").contains("sent/s")
                .contains("| step 2/2 loss 0.650");
        assertThat(last.length()).isLessThanOrEqualTo(ProgressBars.LOG_LINE_WIDTH);
        for (int i = 1; i < lines.length; i++) {
            assertThat(lines[i]).as("no repeated line").isNotEqualTo(lines[i - 1]);
        }
    }
}
