package io.diskstack.core.info;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockNode;
import io.diskstack.core.snapshot.InternalSnapshots;
import java.io.IOException;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code diskstack info}: an image and, on request, its backing chain, described with
 * {@code qemu-img info}'s fields and JSON keys. Each image's JSON object is the one source; the
 * human text is drawn from it, as qemu-img draws it (QEMU 7.2's layout).
 */
public final class ImageInfo {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final DateTimeFormatter DATE = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss");

    private ImageInfo() {}

    /**
     * Describes {@code top}, shown as {@code filename}, and with {@code chain} every image down
     * its backing chain (each named as its overlay names it, resolved against the overlay's path).
     */
    public static List<Map<String, Object>> describe(BlockNode top, String filename, boolean chain)
            throws IOException {
        List<Map<String, Object>> out = new ArrayList<>();
        BlockNode node = top;
        String name = filename;
        while (node != null) {
            Map<String, Object> image = describeOne(node, name);
            out.add(image);
            BlockChild backing = node.cowChild();
            if (!chain || backing == null) {
                break;
            }
            node = backing.node();
            Object full = image.get("full-backing-filename");
            name = full != null ? full.toString() : node.filename();
        }
        return out;
    }

    private static Map<String, Object> describeOne(BlockNode node, String filename) throws IOException {
        ImageFacts facts = new ImageFacts();
        node.describeImage(facts);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("virtual-size", node.size());
        m.put("filename", filename);
        if (facts.clusterSize() > 0) {
            m.put("cluster-size", facts.clusterSize());
        }
        m.put("format", node.driver().name());
        long actual = node.allocatedSize();
        if (actual >= 0) {
            m.put("actual-size", actual);
        }
        if (facts.isEncrypted()) {
            m.put("encrypted", true);
        }
        if (facts.backingFile() != null) {
            m.put("backing-filename", facts.backingFile());
            m.put("full-backing-filename", combine(filename, facts.backingFile()));
            if (facts.backingFormat() != null) {
                m.put("backing-filename-format", facts.backingFormat());
            }
        }
        if (node instanceof InternalSnapshots s) {
            List<Map<String, Object>> snapshots = new ArrayList<>();
            for (InternalSnapshots.Snapshot sn : s.listSnapshots()) {
                Map<String, Object> j = new LinkedHashMap<>();
                j.put("id", sn.id());
                j.put("name", sn.name());
                j.put("vm-state-size", sn.vmStateSize());
                j.put("date-sec", sn.date().getEpochSecond());
                j.put("date-nsec", sn.date().getNano());
                j.put("vm-clock-sec", sn.vmClockNanos() / 1_000_000_000L);
                j.put("vm-clock-nsec", sn.vmClockNanos() % 1_000_000_000L);
                if (sn.icount() != -1) {
                    j.put("icount", sn.icount());
                }
                snapshots.add(j);
            }
            if (!snapshots.isEmpty()) {
                m.put("snapshots", snapshots);
            }
        }
        if (facts.specificType() != null) {
            Map<String, Object> specific = new LinkedHashMap<>();
            specific.put("type", facts.specificType());
            specific.put("data", facts.specific());
            m.put("format-specific", specific);
        }
        m.put("dirty-flag", facts.isDirty());
        return m;
    }

    /** QEMU's path_combine: a relative backing name is relative to its overlay's folder. */
    static String combine(String overlay, String backing) {
        if (backing.startsWith("/") || overlay == null) {
            return backing;
        }
        int slash = overlay.lastIndexOf('/');
        return slash < 0 ? backing : overlay.substring(0, slash + 1) + backing;
    }

    /** As {@code qemu-img info --output=json}: one object, or with the chain an array of them. */
    public static String json(List<Map<String, Object>> images, boolean chain) {
        DefaultPrettyPrinter printer = new DefaultPrettyPrinter(Separators.createDefaultInstance()
                .withObjectFieldValueSpacing(Separators.Spacing.AFTER))
                .withObjectIndenter(new DefaultIndenter("    ", "\n"))
                .withArrayIndenter(new DefaultIndenter("    ", "\n"));
        try {
            return JSON.writer(printer).writeValueAsString(chain ? images : images.get(0)) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** As {@code qemu-img info}: each image's block, a blank line between them. */
    @SuppressWarnings("unchecked")
    public static String human(List<Map<String, Object>> images) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < images.size(); i++) {
            Map<String, Object> m = images.get(i);
            if (i > 0) {
                out.append('\n');
            }
            out.append("image: ").append(m.get("filename")).append('\n');
            out.append("file format: ").append(m.get("format")).append('\n');
            long size = (Long) m.get("virtual-size");
            out.append("virtual size: ").append(QemuSize.format(size)).append(" (").append(size).append(" bytes)\n");
            Object actual = m.get("actual-size");
            out.append("disk size: ").append(actual == null ? "unavailable" : QemuSize.format((Long) actual)).append('\n');
            if (m.containsKey("cluster-size")) {
                out.append("cluster_size: ").append(m.get("cluster-size")).append('\n');
            }
            if (Boolean.TRUE.equals(m.get("encrypted"))) {
                out.append("encrypted: yes\n");
            }
            if (Boolean.TRUE.equals(m.get("dirty-flag"))) {
                out.append("cleanly shut down: no\n");
            }
            if (m.containsKey("backing-filename")) {
                out.append("backing file: ").append(m.get("backing-filename"));
                if (!m.get("backing-filename").equals(m.get("full-backing-filename"))) {
                    out.append(" (actual path: ").append(m.get("full-backing-filename")).append(')');
                }
                out.append('\n');
            }
            if (m.containsKey("backing-filename-format")) {
                out.append("backing file format: ").append(m.get("backing-filename-format")).append('\n');
            }
            if (m.containsKey("snapshots")) {
                out.append("Snapshot list:\n");
                out.append(String.format("%-9s %-17s %7s%20s%13s%11s%n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK",
                        "ICOUNT"));
                for (Map<String, Object> s : (List<Map<String, Object>>) m.get("snapshots")) {
                    long clock = (Long) s.get("vm-clock-sec") * 1_000_000_000L + (Long) s.get("vm-clock-nsec");
                    String date = LocalDateTime.ofInstant(java.time.Instant.ofEpochSecond((Long) s.get("date-sec")),
                            ZoneId.systemDefault()).format(DATE);
                    out.append(String.format("%-9s %-17s %7s%20s%13s%11s%n", s.get("id"), s.get("name"),
                            QemuSize.format((Long) s.get("vm-state-size")), date, clock(clock),
                            s.containsKey("icount") ? s.get("icount").toString() : ""));
                }
            }
            if (m.containsKey("format-specific")) {
                out.append("Format specific information:\n");
                dump(out, ((Map<String, Object>) m.get("format-specific")).get("data"), 4);
            }
        }
        return out.toString();
    }

    /** {@code HH:MM:SS.mmm} of a guest clock. */
    private static String clock(long nanos) {
        long ms = nanos / 1_000_000;
        return String.format("%02d:%02d:%02d.%03d", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    }

    /** qemu-img's dump of the format-specific part: {@code key name: value}, lists as {@code [i]:}. */
    @SuppressWarnings("unchecked")
    private static void dump(StringBuilder out, Object value, int indent) {
        if (value instanceof Map<?, ?> map) {
            for (Map.Entry<String, Object> e : ((Map<String, Object>) map).entrySet()) {
                out.append(" ".repeat(indent)).append(e.getKey().replace('-', ' ')).append(':');
                dumpValue(out, e.getValue(), indent);
            }
        } else if (value instanceof List<?> list) {
            for (int i = 0; i < list.size(); i++) {
                out.append(" ".repeat(indent)).append('[').append(i).append("]:");
                dumpValue(out, list.get(i), indent);
            }
        }
    }

    private static void dumpValue(StringBuilder out, Object v, int indent) {
        if (v instanceof Map<?, ?> || v instanceof List<?>) {
            out.append('\n');
            dump(out, v, indent + 4);
        } else {
            out.append(' ').append(v).append('\n');
        }
    }
}
