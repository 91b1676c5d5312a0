package io.diskstack.nbd;

import io.diskstack.core.ConfigException;
import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.net.UnknownHostException;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;

/**
 * Where an NBD server listens or a client connects, in QEMU's SocketAddress terms:
 * {@code type=inet,host=H,port=P} or {@code type=unix,path=PATH}.
 */
public record NbdAddress(boolean unix, String host, int port, Path path) {
    /** Reads {@code PREFIX.type}, {@code .host}, {@code .port}, {@code .path} through the consuming reader. */
    public static NbdAddress read(NodeOptions o, String prefix, Path baseDir) {
        String type = o.optString(prefix + ".type", "inet");
        switch (type) {
            case "unix" -> {
                String path = o.requireString(prefix + ".path");
                return new NbdAddress(true, null, 0, baseDir.resolve(path).toAbsolutePath().normalize());
            }
            case "inet" -> {
                String host = o.requireString(prefix + ".host");
                long port = o.optLong(prefix + ".port", Nbd.DEFAULT_PORT, 0, 65535);
                return new NbdAddress(false, host, (int) port, null);
            }
            default -> throw o.error(prefix + ".type", "value '" + type + "' is not one of inet, unix");
        }
    }

    /** The socket address; a host that does not resolve is a one-line error. */
    public SocketAddress socketAddress() throws UnknownHostException {
        if (unix) {
            return UnixDomainSocketAddress.of(path);
        }
        return new InetSocketAddress(InetAddress.getByName(host), port);
    }

    /** True for a Unix socket or a host whose every address is a loopback address. */
    public boolean isLocal() throws UnknownHostException {
        if (unix) {
            return true;
        }
        for (InetAddress a : InetAddress.getAllByName(host)) {
            if (!a.isLoopbackAddress()) {
                return false;
            }
        }
        return true;
    }

    /** Opens a blocking connection. */
    public SocketChannel connect() throws IOException {
        SocketAddress target = socketAddress();
        SocketChannel channel = SocketChannel.open(unix ? StandardProtocolFamily.UNIX
                : ((InetSocketAddress) target).getAddress() instanceof java.net.Inet6Address
                        ? StandardProtocolFamily.INET6 : StandardProtocolFamily.INET);
        try {
            channel.connect(target);
            if (!unix) {
                channel.socket().setTcpNoDelay(true);
            }
            return channel;
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    /** QEMU's URL for an export here: {@code nbd://H:P/NAME} or {@code nbd+unix:///NAME?socket=PATH}. */
    public String url(String exportName) {
        if (unix) {
            return "nbd+unix:///" + exportName + "?socket=" + path;
        }
        String h = host.contains(":") ? "[" + host + "]" : host;
        return "nbd://" + h + ":" + port + "/" + exportName;
    }

    /** Checks a resolvable host up front, naming the key. */
    public void checkResolves(NodeOptions o, String prefix) {
        if (unix) {
            return;
        }
        try {
            InetAddress.getAllByName(host);
        } catch (UnknownHostException e) {
            throw new ConfigException(o.owner() + ": '" + prefix + ".host' '" + host + "' does not resolve");
        }
    }

    @Override
    public String toString() {
        return unix ? "unix:" + path : (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
}
