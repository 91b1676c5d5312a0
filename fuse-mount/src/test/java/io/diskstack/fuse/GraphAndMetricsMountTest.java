package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.diskstack.core.testing.PrometheusTextParser;
import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.fuse.testing.SeedStack;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * graph.json, graph.dot and metrics of the seed's stack, read from a real mount: QEMU's graph
 * shape, a drawing Graphviz accepts (backing edges dashed once a snapshot made some), and
 * metrics a strict Prometheus parser accepts, agreeing with the stats file. No secret in any.
 */
class GraphAndMetricsMountTest {
    @TempDir
    Path dir;

    @Test
    void seedStackAsJsonDotAndMetrics() throws Exception {
        Shell.requireTool("dot");
        Path config = SeedStack.create(dir, "32M");
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            Shell.run("dd", "if=/dev/urandom", "of=" + d.disk("disk0"), "bs=64k", "count=32", "conv=fsync,notrunc",
                    "status=none").ok();
            Shell.run("dd", "if=" + d.disk("disk0"), "of=/dev/null", "bs=64k", "count=16", "status=none").ok();

            JsonNode graph = new ObjectMapper().readTree(Files.readString(d.control("graph.json")));
            Map<Integer, JsonNode> byId = new HashMap<>();
            for (JsonNode n : graph.get("nodes")) {
                byId.put(n.get("id").asInt(), n);
            }
            Set<String> edges = new HashSet<>();
            for (JsonNode e : graph.get("edges")) {
                JsonNode p = byId.get(e.get("parent").asInt());
                JsonNode c = byId.get(e.get("child").asInt());
                edges.add(p.get("name").asText() + " -" + e.get("name").asText() + "-> " + c.get("name").asText()
                        + " " + c.get("type").asText() + (c.has("driver") ? " " + c.get("driver").asText() : ""));
            }
            for (String e : new String[] {"disk0 -root-> t0 block-driver throttle", "t0 -file-> l0 block-driver luks",
                "l0 -file-> q0 block-driver quorum", "q0 -children.0-> img0 block-driver qcow2",
                "q0 -children.2-> img2 block-driver qcow2"}) {
                assertTrue(edges.contains(e), e + " in " + edges);
            }

            String stats = Files.readString(d.control("disk0/stats"));
            Map<String, PrometheusTextParser.Family> metrics = PrometheusTextParser.parse(Files.readString(d.control("metrics")));
            long reads = Long.parseLong(stats.lines().filter(l -> l.startsWith("reads ")).findFirst().orElseThrow()
                    .substring(6));
            double reported = metrics.get("diskstack_export_reads_total").value("diskstack_export_reads_total",
                    "export", "disk0");
            // the stats were read first; metrics may count reads made since (none here)
            assertEquals(reads, (long) reported);
            assertTrue(metrics.get("diskstack_export_request_duration_seconds")
                    .value("diskstack_export_request_duration_seconds_count", "export", "disk0", "op", "write") >= 32);
            assertTrue(metrics.get("diskstack_node_stat").value("diskstack_node_stat", "node", "q0",
                    "stat", "children.1.errors") == 0);

            Files.writeString(d.control("disk0/snapshot-external"), "s1\n");
            String dot = Files.readString(d.control("graph.dot"));
            assertEquals(3, dot.split("label=\"backing\", style=dashed").length - 1, dot);
            Path file = dir.resolve("graph.dot");
            Files.writeString(file, dot);
            Shell.Result svg = Shell.run("dot", "-Tsvg", "-o", dir.resolve("graph.svg").toString(), file.toString()).ok();
            assertEquals("", svg.stderr());
            assertTrue(Files.readString(dir.resolve("graph.svg")).contains(">img0&#45;s1</text>"));
            for (String shown : new String[] {"graph.json", "graph.dot", "metrics", "graph"}) {
                String text = Files.readString(d.control(shown));
                assertTrue(!text.contains(SeedStack.KEY) && !text.contains("key.txt"), shown + " names no secret");
            }
            assertEquals(0, d.stop(), d.log());
        }
    }
}
