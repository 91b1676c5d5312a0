package io.diskstack.core.objects;

import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Base64;

/**
 * {@code --object secret,id=ID,data=…|file=…[,format=raw|base64]}, as in QEMU. A file is used
 * byte for byte, as QEMU does: a trailing newline is part of the secret.
 */
public final class SecretDriver implements ObjectDriver {
    @Override
    public String qomType() {
        return "secret";
    }

    @Override
    public Object create(String id, NodeOptions options, Path baseDir) {
        String data = options.optString("data", null);
        String file = options.optString("file", null);
        String format = options.optString("format", "raw");
        if (options.has("keyid") || options.has("iv")) {
            throw options.error(options.has("keyid") ? "keyid" : "iv", "is not supported: give the secret in clear");
        }
        if ((data == null) == (file == null)) {
            throw options.error("data", "or 'file' is required, and not both");
        }
        if (!format.equals("raw") && !format.equals("base64")) {
            throw options.error("format", "value '" + format + "' is not one of raw, base64");
        }
        byte[] raw;
        if (data != null) {
            raw = data.getBytes(StandardCharsets.UTF_8);
        } else {
            Path path = baseDir.resolve(file);
            try {
                raw = SecretFiles.read(path);
            } catch (IOException e) {
                throw options.error("file", "'" + path + "' " + e.getMessage());
            }
        }
        try {
            byte[] value = raw;
            if (format.equals("base64")) {
                try {
                    value = Base64.getDecoder().decode(new String(raw, StandardCharsets.US_ASCII).strip());
                } catch (IllegalArgumentException e) {
                    throw options.error(data != null ? "data" : "file", "is not valid base64");
                }
            }
            try {
                return new Secret(id, value);
            } finally {
                if (value != raw) {
                    Arrays.fill(value, (byte) 0);
                }
            }
        } finally {
            Arrays.fill(raw, (byte) 0);
        }
    }
}
