package io.diskstack.core.control;

import io.diskstack.core.BackendStats;
import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockNode;
import io.diskstack.core.LatencyHistogram;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.ToLongFunction;

/**
 * {@code .control/metrics}: the stats of every export and node in Prometheus's text format, for
 * node_exporter's textfile collector or any scraper that reads a file. Exports give request
 * counters and a latency histogram per kind of request; nodes give the counters their driver
 * keeps ({@link BlockNode#stats()}), one family for all, named by a {@code stat} label.
 */
public final class MetricsFile implements ControlTreeProvider {
    private static final String DURATION = "diskstack_export_request_duration_seconds";

    @Override
    public Map<String, ControlFile> files(ControlContext context) {
        return Map.of("metrics", ControlFile.readOnly(() -> render(context.stack().graph())));
    }

    @Override
    public Set<String> reservedNames() {
        return Set.of("metrics");
    }

    static String render(BlockGraph graph) {
        List<BlockBackend> backends = graph.backends();
        List<BackendStats.Counters> counters = new ArrayList<>();
        List<Map<BackendStats.Op, LatencyHistogram.Snapshot>> latencies = new ArrayList<>();
        for (BlockBackend b : backends) {
            counters.add(b.stats().counters());
            latencies.add(b.stats().latencies());
        }
        PrometheusText out = new PrometheusText();
        counter(out, backends, counters, "diskstack_export_reads_total", "Reads the export completed.",
                BackendStats.Counters::reads);
        counter(out, backends, counters, "diskstack_export_read_bytes_total", "Bytes the export read.",
                BackendStats.Counters::readBytes);
        counter(out, backends, counters, "diskstack_export_writes_total", "Writes the export completed.",
                BackendStats.Counters::writes);
        counter(out, backends, counters, "diskstack_export_written_bytes_total", "Bytes the export wrote.",
                BackendStats.Counters::writeBytes);
        counter(out, backends, counters, "diskstack_export_flushes_total", "Flushes the export completed.",
                BackendStats.Counters::flushes);
        counter(out, backends, counters, "diskstack_export_discards_total",
                "Discards and write-zeroes that may deallocate, completed by the export.", BackendStats.Counters::discards);
        counter(out, backends, counters, "diskstack_export_errors_total", "Requests to the export that failed.",
                BackendStats.Counters::errors);
        gauge(out, backends, counters, "diskstack_export_in_flight_requests", "Requests inside the export now.",
                BackendStats.Counters::inFlight);
        gauge(out, backends, counters, "diskstack_export_in_flight_requests_peak",
                "The most requests that were inside the export at once.", BackendStats.Counters::peakInFlight);
        out.family("diskstack_export_size_bytes", "gauge", "The virtual size of the export's disk.");
        for (BlockBackend b : backends) {
            out.sample("diskstack_export_size_bytes", b.size(), "export", b.name());
        }
        out.family(DURATION, "histogram", "How long the export's requests took, successful or not, from arrival "
                + "to completion (waits behind a throttle or a drain included).");
        long[] bounds = LatencyHistogram.boundsNanos();
        for (int i = 0; i < backends.size(); i++) {
            String export = backends.get(i).name();
            for (Map.Entry<BackendStats.Op, LatencyHistogram.Snapshot> e : latencies.get(i).entrySet()) {
                String op = e.getKey().label();
                LatencyHistogram.Snapshot h = e.getValue();
                for (int k = 0; k < bounds.length; k++) {
                    out.sample(DURATION + "_bucket", h.cumulative()[k], "export", export, "op", op,
                            "le", PrometheusText.formatDouble(bounds[k] / 1e9));
                }
                out.sample(DURATION + "_bucket", h.count(), "export", export, "op", op, "le", "+Inf");
                out.sample(DURATION + "_sum", h.sumNanos() / 1e9, "export", export, "op", op);
                out.sample(DURATION + "_count", h.count(), "export", export, "op", op);
            }
        }
        List<BlockNode> nodes = graph.nodes();
        out.family("diskstack_node_size_bytes", "gauge", "The size of each node of the graph.");
        for (BlockNode n : nodes) {
            out.sample("diskstack_node_size_bytes", n.size(), "node", n.nodeName(), "driver", n.driver().name());
        }
        out.family("diskstack_node_stat", "untyped", "A counter a node's driver keeps (see the stats files), "
                + "named by the stat label: l2-cache.hits, children.1.errors...");
        for (BlockNode n : nodes) {
            for (Map.Entry<String, ? extends Number> s : new java.util.TreeMap<>(n.stats()).entrySet()) {
                Number v = s.getValue();
                // a ratio (dedup's) stays a fraction; counters stay integers
                if (v instanceof Double || v instanceof Float) {
                    out.sample("diskstack_node_stat", v.doubleValue(), "node", n.nodeName(), "driver", n.driver().name(),
                        "stat", s.getKey());
                } else {
                    out.sample("diskstack_node_stat", v.longValue(), "node", n.nodeName(), "driver", n.driver().name(),
                        "stat", s.getKey());
                }
            }
        }
        return out.toString();
    }

    private static void counter(PrometheusText out, List<BlockBackend> backends, List<BackendStats.Counters> values,
                                String name, String help, ToLongFunction<BackendStats.Counters> field) {
        series(out.family(name, "counter", help), backends, values, name, field);
    }

    private static void gauge(PrometheusText out, List<BlockBackend> backends, List<BackendStats.Counters> values,
                              String name, String help, ToLongFunction<BackendStats.Counters> field) {
        series(out.family(name, "gauge", help), backends, values, name, field);
    }

    private static void series(PrometheusText out, List<BlockBackend> backends, List<BackendStats.Counters> values,
                               String name, ToLongFunction<BackendStats.Counters> field) {
        for (int i = 0; i < backends.size(); i++) {
            out.sample(name, field.applyAsLong(values.get(i)), "export", backends.get(i).name());
        }
    }
}
