package io.diskstack.core;

/**
 * Bad input that is the user's to fix: a config key, an option value, a missing or unreadable
 * image. The message is one line that names the node, object or file and the key. The command
 * line turns it into exit code 2.
 */
public class ConfigException extends RuntimeException {
    public ConfigException(String message) {
        super(message);
    }

    public ConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
