package io.diskstack.core.control;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.PrometheusTextParser;
import io.diskstack.core.testing.PrometheusTextParser.Family;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MetricsFileTest {
    @TempDir
    Path dir;

    @Test
    void everyExportAndNodeInStrictPrometheusText() throws Exception {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.openAll(List.of(
                    opts("driver", "passthrough", "node-name", "top", "file", "m0"),
                    opts("driver", "memory", "node-name", "m0", "size", "1M"),
                    opts("driver", "memory", "node-name", "m1", "size", "2M")));
            BlockBackend d0 = g.addBackend("disk0", "top", true);
            BlockBackend d1 = g.addBackend("disk1", "m1", false);
            for (int i = 0; i < 5; i++) {
                d0.read(i * 4096L, ByteBuffer.allocate(4096));
            }
            d0.write(0, ByteBuffer.allocate(512), 0);
            d0.flush();
            d1.read(0, ByteBuffer.allocate(100));
            assertThrows(java.io.IOException.class, () -> d1.write(0, ByteBuffer.allocate(512), 0));

            Map<String, Family> m = PrometheusTextParser.parse(MetricsFile.render(g));

            assertEquals(5, m.get("diskstack_export_reads_total").value("diskstack_export_reads_total", "export", "disk0"));
            assertEquals(20480, m.get("diskstack_export_read_bytes_total")
                    .value("diskstack_export_read_bytes_total", "export", "disk0"));
            assertEquals(1, m.get("diskstack_export_errors_total").value("diskstack_export_errors_total", "export", "disk1"));
            assertEquals("counter", m.get("diskstack_export_writes_total").type());
            assertEquals(2 << 20, m.get("diskstack_export_size_bytes").value("diskstack_export_size_bytes", "export", "disk1"));
            Family latency = m.get("diskstack_export_request_duration_seconds");
            assertEquals("histogram", latency.type());
            String n = "diskstack_export_request_duration_seconds";
            assertEquals(5, latency.value(n + "_count", "export", "disk0", "op", "read"));
            assertEquals(5, latency.value(n + "_bucket", "export", "disk0", "op", "read", "le", "+Inf"));
            assertEquals(1, latency.value(n + "_count", "export", "disk0", "op", "flush"));
            // the failed write is timed too
            assertEquals(1, latency.value(n + "_count", "export", "disk1", "op", "write"));
            assertEquals(0, latency.value(n + "_count", "export", "disk1", "op", "discard"));
            assertTrue(latency.value(n + "_sum", "export", "disk0", "op", "read") > 0);
            assertEquals(1 << 20, m.get("diskstack_node_size_bytes").value("diskstack_node_size_bytes", "node", "m0",
                    "driver", "memory"));
        }
    }

    @Test
    void theParserIsStrict() {
        String ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n";
        assertEquals(3, PrometheusTextParser.parse(ok).get("a_total").value("a_total", "x", "1"));
        for (String bad : List.of(
                "a_total 3\n",                                                          // no TYPE
                "# TYPE a_total counter\na_total 3",                                    // no final newline
                "# TYPE a_total counter\na_total 3\na_total 4\n",                       // twice
                "# TYPE a_total counter\na_total{x=\"\\q\"} 3\n",                       // bad escape
                "# TYPE a_total counter\na_total -1\n",                                 // negative counter
                "# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"y\"} 2\n",             // not together
                "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
                "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
                "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
                "# TYPE 1a gauge\n")) {
            assertThrows(IllegalArgumentException.class, () -> PrometheusTextParser.parse(bad), bad);
        }
    }
}
