package io.diskstack.core.control;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.Permissions;
import io.diskstack.core.testing.Shell;
import io.diskstack.core.testing.TestGraphs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GraphFilesTest {
    @TempDir
    Path dir;

    private BlockGraph stack(BlockGraph g) throws Exception {
        g.openAll(List.of(
                opts("driver", "passthrough", "node-name", "top", "file", "p0"),
                opts("driver", "pair", "node-name", "p0", "metadata", "meta", "data", "data"),
                opts("driver", "memory", "node-name", "meta", "size", "64K"),
                opts("driver", "memory", "node-name", "data", "size", "1M")));
        g.addBackend("disk0", "top", true);
        return g;
    }

    @Test
    void graphJsonHasQemusShape() throws Exception {
        try (BlockGraph g = stack(TestGraphs.newGraph(dir));
             BlockGraph.Hold hold = g.hold(g.node("data"), Permissions.sharingReader(), "job 'backup-disk0'")) {
            JsonNode json = new ObjectMapper().readTree(GraphJson.render(g));
            Map<String, JsonNode> byName = new HashMap<>();
            Map<Integer, String> names = new HashMap<>();
            for (JsonNode n : json.get("nodes")) {
                byName.put(n.get("name").asText(), n);
                names.put(n.get("id").asInt(), n.get("name").asText());
            }
            assertEquals("block-backend", byName.get("disk0").get("type").asText());
            assertEquals("block-job", byName.get("backup-disk0").get("type").asText());
            assertEquals("block-driver", byName.get("p0").get("type").asText());
            assertEquals("pair", byName.get("p0").get("driver").asText());
            assertEquals("protocol", byName.get("data").get("kind").asText());
            Map<String, JsonNode> edges = new HashMap<>();
            for (JsonNode e : json.get("edges")) {
                edges.put(names.get(e.get("parent").asInt()) + "->" + names.get(e.get("child").asInt()), e);
            }
            assertEquals(5, edges.size(), edges.keySet().toString());
            JsonNode root = edges.get("disk0->top");
            assertEquals("root", root.get("name").asText());
            assertEquals("[\"consistent-read\",\"write\",\"write-unchanged\"]", root.get("perm").toString());
            JsonNode meta = edges.get("p0->meta");
            assertEquals("metadata", meta.get("name").asText());
            assertEquals("[\"metadata\"]", meta.get("roles").toString());
            assertTrue(meta.get("perm").toString().contains("\"write\""), meta.toString());
            assertTrue(!meta.get("shared-perm").toString().contains("\"write\""), meta.toString());
            assertEquals("[\"consistent-read\"]", edges.get("backup-disk0->data").get("perm").toString());
        }
    }

    @Test
    void graphDotIsDrawnByGraphviz() throws Exception {
        Shell.requireTool("dot");
        try (BlockGraph g = stack(TestGraphs.newGraph(dir));
             BlockGraph.Hold hold = g.hold(g.node("data"), Permissions.sharingReader(), "job 'backup-disk0'")) {
            String dot = GraphDot.render(g);
            assertTrue(dot.contains("{ rank=source; v1; }"), dot);
            assertTrue(dot.contains("style=dotted"), "the job's hold is dotted: " + dot);
            Path file = dir.resolve("g.dot");
            Files.writeString(file, dot);
            Shell.Result svg = Shell.run("dot", "-Tsvg", file.toString()).ok();
            assertTrue(svg.stderr().isEmpty(), svg.stderr());
            for (String name : List.of("disk0", "top", "p0", "meta", "data", "backup-disk0")) {
                assertTrue(svg.stdout().contains(">" + name.replace("-", "&#45;") + "</text>"), name + " in " + svg.stdout());
            }
        }
    }
}
