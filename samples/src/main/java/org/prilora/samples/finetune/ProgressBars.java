package org.prilora.samples.finetune;

import me.tongfei.progressbar.DelegatingProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.PrintStream;
import java.text.DecimalFormat;
import java.text.DecimalFormatSymbols;
import java.time.temporal.ChronoUnit;
import java.util.Locale;

/**
 * Progress bars (me.tongfei progressbar) that count sentences, show sentences/s, the ETA and an extra message
 * (step and loss), and stay readable when the output is not a terminal.
 *
 * <p>On a terminal ({@link System#console()} present) the library's own console consumer redraws one line in
 * place. Otherwise (CI logs, {@code mvn exec:exec}, which pipes the child's output, or a redirect) a redrawn line
 * would arrive as one endless line of carriage returns, or not at all until the end when the reader waits for a
 * newline; there the bar is rendered in ASCII as a complete, newline-terminated line every
 * {@link #LOG_INTERVAL_MILLIS}, plus a final line when it closes.
 */
public final class ProgressBars {

    /** Rendering interval when the output is not a terminal: one log line per this many milliseconds. */
    public static final int LOG_INTERVAL_MILLIS = 15_000;
    /** Rendering interval on a terminal. */
    public static final int TERMINAL_INTERVAL_MILLIS = 500;
    /** Width of a log line (no terminal to ask). */
    public static final int LOG_LINE_WIDTH = 120;

    private final boolean terminal;
    private final PrintStream log;

    /**
     * @param terminal whether to draw in place (true) or print log lines to {@code log} (false)
     * @param log      where log lines go when not on a terminal
     */
    public ProgressBars(boolean terminal, PrintStream log) {
        this.terminal = terminal;
        this.log = log;
    }

    /** @return bars for this process: in place when stdin/stdout are a terminal, else log lines on {@code System.out} */
    public static ProgressBars forThisProcess() {
        return new ProgressBars(System.console() != null, System.out);
    }

    /** @return whether bars redraw in place */
    public boolean terminal() {
        return terminal;
    }

    /**
     * A bar over {@code sentences} units named "sent", with speed in sentences per second.
     *
     * @param task      task name shown at the left
     * @param sentences total sentences the bar counts
     * @return a started bar; close it (try-with-resources)
     */
    public ProgressBar start(String task, long sentences) {
        ProgressBarBuilder b = new ProgressBarBuilder()
                .setTaskName(task)
                .setInitialMax(sentences)
                .setUnit(" sent", 1)
                .showSpeed(new DecimalFormat("0.0", DecimalFormatSymbols.getInstance(Locale.ROOT)))
                .setSpeedUnit(ChronoUnit.SECONDS);
        if (terminal) {
            b.setStyle(ProgressBarStyle.COLORFUL_UNICODE_BLOCK).setUpdateIntervalMillis(TERMINAL_INTERVAL_MILLIS);
        } else {
            b.setStyle(ProgressBarStyle.ASCII)
                    .setUpdateIntervalMillis(LOG_INTERVAL_MILLIS)
                    // the explicit width keeps the library from probing for a terminal it will not find
                    .setConsumer(new DelegatingProgressBarConsumer(new LineLog(log), LOG_LINE_WIDTH));
        }
        return b.build();
    }

    /**
     * Formats the extra message shown after the speed: a separator, then the text.
     *
     * @param text e.g. {@code step 3/75 loss 0.61}
     * @return the message for {@link ProgressBar#setExtraMessage(String)}
     */
    public static String extra(String text) {
        return " | " + text;
    }

    /** Prints each rendered bar as one line; skips a line identical to the previous one (the bar's close repeats it). */
    static final class LineLog implements java.util.function.Consumer<String> {
        private final PrintStream out;
        private String last;

        LineLog(PrintStream out) {
            this.out = out;
        }

        @Override
        public synchronized void accept(String line) {
            String l = line.strip();
            if (!l.equals(last)) {
                out.println(l);
                out.flush();
                last = l;
            }
        }
    }
}
