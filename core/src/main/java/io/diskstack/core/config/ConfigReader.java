package io.diskstack.core.config;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.diskstack.core.ConfigException;
import io.diskstack.core.options.KeyVal;
import io.diskstack.core.options.NodeOptions;
import io.diskstack.core.options.OptionTree;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads a {@link StackConfig} from a JSON file or from qemu-storage-daemon style arguments
 * ({@code --object}, {@code --blockdev}, {@code --export}); both end in the same flat options,
 * validated the same way.
 *
 * <pre>
 * {"objects":  [{"qom-type": "secret", "id": "s0", "file": "key.txt"}],
 *  "blockdev": [{"driver": "file", "node-name": "f0", "filename": "a.img"},
 *               {"driver": "raw", "node-name": "r0", "file": "f0"}],
 *  "exports":  [{"id": "disk0", "node-name": "r0", "writable": true}],
 *  "create":   [{"filename": "a.img", "format": "raw", "size": "1G"}]}
 * </pre>
 */
public final class ConfigReader {
    /** The {@code nbd-server} section (QEMU's {@code --nbd-server}), read by the NBD front end. */
    public static final String NBD_SERVER = "nbd-server";
    /** The export type served by the NBD front end. */
    public static final String NBD_EXPORT = "nbd";
    private static final Set<String> TOP_LEVEL = Set.of("objects", "blockdev", "exports", "create", NBD_SERVER,
            ConfigEdit.SNAPSHOTS);
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private ConfigReader() {}

    /** Reads a JSON config file; relative file names in it resolve against its folder. */
    @SuppressWarnings("unchecked")
    public static StackConfig readFile(Path file) {
        String where = "config '" + file + "'";
        Object tree;
        try {
            tree = JSON.readValue(Files.readAllBytes(file), Object.class);
        } catch (NoSuchFileException e) {
            throw new ConfigException(where + ": no such file");
        } catch (JsonProcessingException e) {
            throw new ConfigException(where + ": " + jsonError(e));
        } catch (IOException e) {
            throw new ConfigException(where + ": cannot read: " + e.getMessage());
        }
        if (!(tree instanceof Map)) {
            throw new ConfigException(where + ": the top level must be a JSON object");
        }
        Map<String, Object> top = (Map<String, Object>) tree;
        for (String key : top.keySet()) {
            if (!TOP_LEVEL.contains(key)) {
                throw new ConfigException(where + ": unknown key '" + key
                        + "' (expected objects, blockdev, exports, create, " + NBD_SERVER + ", "
                        + ConfigEdit.SNAPSHOTS + ")");
            }
        }
        Path base = file.toAbsolutePath().getParent();
        List<Map<String, Object>> objects = flatList(where, top, "objects");
        List<Map<String, Object>> blockdevs = flatList(where, top, "blockdev");
        List<ExportConfig> exports = new ArrayList<>();
        for (Map<String, Object> e : flatList(where, top, "exports")) {
            exports.add(export(e));
        }
        List<ImageSpec> images = new ArrayList<>();
        for (Map<String, Object> c : flatList(where, top, "create")) {
            images.add(image(c));
        }
        return new StackConfig(file.toAbsolutePath(), base, objects, blockdevs, exports, images,
                snapshotRecords(where, top.get(ConfigEdit.SNAPSHOTS)), nbdServer(where, top.get(NBD_SERVER)));
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> nbdServer(String where, Object value) {
        if (value == null) {
            return Map.of();
        }
        if (!(value instanceof Map)) {
            throw new ConfigException(where + ": '" + NBD_SERVER + "' must be an object");
        }
        try {
            return OptionTree.flatten((Map<String, Object>) value);
        } catch (IllegalArgumentException e) {
            throw new ConfigException(where + ": " + NBD_SERVER + ": " + e.getMessage());
        }
    }

    /** The {@code external-snapshots} list: name, export and overlay node-names of each. */
    static List<ExternalSnapshotRecord> snapshotRecords(String where, Object value) {
        if (value == null) {
            return List.of();
        }
        String key = ConfigEdit.SNAPSHOTS;
        if (!(value instanceof List<?> list)) {
            throw new ConfigException(where + ": '" + key + "' must be a list");
        }
        List<ExternalSnapshotRecord> out = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            String at = where + ": " + key + "[" + i + "]";
            if (!(list.get(i) instanceof Map<?, ?> m) || !(m.get("name") instanceof String name)
                    || !(m.get("export") instanceof String export) || !(m.get("overlays") instanceof List<?> overlays)
                    || overlays.stream().anyMatch(o -> !(o instanceof String)) || m.size() != 3) {
                throw new ConfigException(at + " must be {\"name\": …, \"export\": …, \"overlays\": [node-names]}");
            }
            out.add(new ExternalSnapshotRecord(name, export, overlays.stream().map(String.class::cast).toList()));
        }
        return out;
    }

    /**
     * Reads qemu-storage-daemon style arguments: each string is {@code key=value,…} (or JSON if
     * it starts with '{'). Relative file names resolve against {@code baseDir}.
     */
    public static StackConfig readArguments(List<String> objects, List<String> blockdevs, List<String> exports,
                                            Path baseDir) {
        return readArguments(objects, blockdevs, exports, null, baseDir);
    }

    /** The same, with a {@code --nbd-server} argument (null if none). */
    public static StackConfig readArguments(List<String> objects, List<String> blockdevs, List<String> exports,
                                            String nbdServer, Path baseDir) {
        List<Map<String, Object>> objs = new ArrayList<>();
        for (int i = 0; i < objects.size(); i++) {
            objs.add(parseArgument("--object", i, objects.get(i), "qom-type"));
        }
        List<Map<String, Object>> devs = new ArrayList<>();
        for (int i = 0; i < blockdevs.size(); i++) {
            devs.add(parseArgument("--blockdev", i, blockdevs.get(i), null));
        }
        List<ExportConfig> exps = new ArrayList<>();
        for (int i = 0; i < exports.size(); i++) {
            exps.add(export(parseArgument("--export", i, exports.get(i), "type")));
        }
        Map<String, Object> server = nbdServer == null ? Map.of() : parseArgument("--" + NBD_SERVER, 0, nbdServer, null);
        return new StackConfig(null, baseDir.toAbsolutePath(), objs, devs, exps, List.of(), List.of(), server);
    }

    /**
     * Parses one line written to a control file: {@code key=value,…} (QEMU's dotted keys, {@code ,,}
     * for a comma) or a JSON object, into flat options. Errors name {@code where}, never the text,
     * which may hold a secret.
     */
    public static Map<String, Object> parseCommand(String where, String text, String impliedKey) {
        return parseArgument(where, -1, text, impliedKey);
    }

    @SuppressWarnings("unchecked")
    /**
     * Parses one argument. Errors name the option and its position, never its text, which may
     * hold a secret ({@code --object secret,id=s0,data=…}).
     */
    private static Map<String, Object> parseArgument(String option, int index, String text, String impliedKey) {
        String where = index < 0 ? option : option + " #" + (index + 1);
        try {
            if (text.trim().startsWith("{")) {
                Object tree = JSON.readValue(text, Object.class);
                if (!(tree instanceof Map)) {
                    throw new ConfigException(where + ": expected a JSON object");
                }
                return OptionTree.flatten((Map<String, Object>) tree);
            }
            return KeyVal.parse(text, impliedKey);
        } catch (JsonProcessingException e) {
            throw new ConfigException(where + ": " + jsonError(e));
        } catch (IllegalArgumentException e) {
            throw new ConfigException(where + ": " + e.getMessage());
        }
    }

    /** One export's options (flat, as {@code block-export-add} takes them), checked as the config's. */
    public static ExportConfig export(Map<String, Object> flat) {
        Object id = flat.get("id");
        NodeOptions o = new NodeOptions(id instanceof String s ? "export '" + s + "'" : "export", flat);
        String type = o.optString("type", ExportConfig.FUSE);
        if (!type.equals(ExportConfig.FUSE) && !type.equals(NBD_EXPORT)) {
            throw o.error("type", "value '" + type + "' is not supported (fuse or " + NBD_EXPORT + ")");
        }
        String exportId = o.requireString("id");
        String nodeName = o.requireString("node-name");
        boolean writable = o.optBool("writable", false);
        Map<String, Object> options = new LinkedHashMap<>();
        if (type.equals(NBD_EXPORT)) {
            // qemu-storage-daemon's BlockExportOptionsNbd: the name defaults to the node-name
            options.put("name", o.optString("name", nodeName));
            String description = o.optString("description", null);
            if (description != null) {
                options.put("description", description);
            }
        }
        // who may open the file: a FUSE export's alone (an NBD export has no file; these are refused there)
        boolean file = type.equals(ExportConfig.FUSE);
        String owner = file ? o.optString("owner", null) : null;
        String group = file ? o.optString("group", null) : null;
        String modeText = file ? o.optString("mode", null) : null;
        int mode = -1;
        if (modeText != null) {
            // octal, as chmod takes it; a JSON number such as 660 reads the same way
            if (!modeText.matches("0?[0-7]{1,3}")) {
                throw o.error("mode", "value '" + modeText + "' is not an octal mode such as 0660 (permission bits only)");
            }
            mode = Integer.parseInt(modeText, 8);
        }
        for (String[] name : new String[][] {{"owner", owner}, {"group", group}}) {
            if (name[1] != null && !name[1].matches("[A-Za-z0-9_][A-Za-z0-9_.-]*\\$?")) {
                throw o.error(name[0], "value '" + name[1] + "' is not a user or group name or number");
            }
        }
        o.assertAllConsumed();
        return new ExportConfig(exportId, nodeName, writable, type, options, owner, group, mode);
    }

    private static ImageSpec image(Map<String, Object> flat) {
        Object name = flat.get("filename");
        NodeOptions o = new NodeOptions(name instanceof String s ? "create '" + s + "'" : "create", flat);
        String filename = o.requireString("filename");
        String format = o.requireString("format");
        long size = o.optSize("size", -1);
        Map<String, Object> rest = new LinkedHashMap<>();
        for (String k : o.unconsumed()) {
            rest.put(k, flat.get(k));
        }
        return new ImageSpec(filename, format, size, rest);
    }

    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> flatList(String where, Map<String, Object> top, String key) {
        Object v = top.get(key);
        if (v == null) {
            return List.of();
        }
        if (!(v instanceof List<?> list)) {
            throw new ConfigException(where + ": '" + key + "' must be a list");
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            Object item = list.get(i);
            if (!(item instanceof Map)) {
                throw new ConfigException(where + ": " + key + "[" + i + "] must be an object");
            }
            try {
                out.add(OptionTree.flatten((Map<String, Object>) item));
            } catch (IllegalArgumentException e) {
                throw new ConfigException(where + ": " + key + "[" + i + "]: " + e.getMessage());
            }
        }
        return out;
    }

    private static String jsonError(JsonProcessingException e) {
        String msg = e.getOriginalMessage();
        for (String cut : new String[] {"\n", " (for ", " (start marker", " at [Source"}) {
            int at = msg.indexOf(cut);
            if (at >= 0) {
                msg = msg.substring(0, at);
            }
        }
        if (e.getLocation() != null) {
            return "line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ": " + msg;
        }
        return msg;
    }

}
