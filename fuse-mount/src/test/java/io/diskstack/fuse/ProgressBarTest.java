package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

/** qemu-img -p's kind of progress: redrawn in place on a terminal, only the end elsewhere. */
class ProgressBarTest {
    @Test
    void onATerminalTheBarIsRedrawnWhenThePercentChanges() {
        StringWriter w = new StringWriter();
        ProgressBar bar = new ProgressBar(new PrintWriter(w), true);
        var listener = bar.listener("create");
        listener.update(1, 200);
        listener.update(2, 200);
        listener.update(100, 200);
        bar.finish("create", 200);
        String hashes20 = "#".repeat(20);
        assertEquals("\rcreate [" + " ".repeat(40) + "]   0% (1 of 200 bytes)"
                + "\rcreate [" + " ".repeat(40) + "]   1% (2 of 200 bytes)"
                + "\rcreate [" + hashes20 + " ".repeat(20) + "]  50% (100 of 200 bytes)"
                + "\rcreate [" + "#".repeat(40) + "] 100% (200 of 200 bytes)\n", w.toString());
    }

    @Test
    void elsewhereOnlyTheFinalLine() {
        StringWriter w = new StringWriter();
        ProgressBar bar = new ProgressBar(new PrintWriter(w), false);
        bar.listener("create").update(5, 10);
        bar.finish("create", 10);
        assertEquals("create [" + "#".repeat(40) + "] 100% (10 of 10 bytes)\n", w.toString());
    }
}
