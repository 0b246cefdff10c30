package org.prilora.samples.serving;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.nd4j.linalg.api.buffer.DataType;
import org.prilora.AdapterFileException;
import org.prilora.AdapterMismatchException;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.BertWeights;
import org.prilora.bert.OnnxBertReader;
import org.prilora.serving.AdapterInfo;
import org.prilora.serving.AdapterRegistry;
import org.prilora.serving.UnknownAdapterException;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * An HTTP text-classification service: one BERT-family base encoder, many PRILoRA adapters (each with its own head),
 * concurrent requests batched into mixed-adapter batches ({@link BatchingQueue} over {@link AdapterRegistry}).
 *
 * <ul>
 *   <li>{@code POST /v1/classify} {@code {"adapter": "sentiment", "texts": ["...", "..."]}}, or one adapter per text:
 *       {@code {"adapters": ["a", "b"], "texts": ["...", "..."]}} ({@code "__base__"} for the base model); answers
 *       {@code {"results": [{"adapter": "a", "label": 1, "probabilities": [0.2, 0.8]}, ...]}}.</li>
 *   <li>{@code GET /v1/adapters}: the registered adapters (id, source, format, resident, bytes, loads).</li>
 *   <li>{@code POST /v1/adapters} {@code {"id": "a", "path": "/models/a.prilora", "format": "prilora"}} (or
 *       {@code "peft"} for a PEFT directory): loads an adapter; {@code DELETE /v1/adapters/{id}} unloads it.</li>
 * </ul>
 * Errors answer {@code {"error": "..."}} with 400 (malformed request, adapter that does not fit the base), 404 (unknown
 * adapter), 409 (id already registered) or 500.
 *
 * <p>Start with MiniLM (all-MiniLM-L6-v2 from its Maven artifact) as the base:
 * {@code mvn -B -q -pl samples/serving initialize exec:exec -Dexec.args="-Xmx4g -classpath %classpath
 * org.prilora.samples.serving.ClassificationService --port 8080 --adapter task=/path/task.prilora"}.
 */
public final class ClassificationService implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long REQUEST_TIMEOUT_SECONDS = 120;

    private final AdapterRegistry registry;
    private final BatchingQueue batcher;
    private final HttpServer server;
    private final ExecutorService handlers;

    /**
     * Starts the service on {@code port} (0: any free port) of the loopback or all interfaces.
     *
     * @param tokenTypes whether the base network takes token type ids (the factory's default)
     */
    public ClassificationService(AdapterRegistry registry, BertTokenizer tokenizer, DataType dataType, boolean tokenTypes,
                                 InetSocketAddress address, int maxBatch, long maxWaitMillis, int handlerThreads) throws IOException {
        this.registry = registry;
        this.batcher = new BatchingQueue(registry, tokenizer, dataType, tokenTypes, maxBatch, maxWaitMillis);
        this.server = HttpServer.create(address, 64);
        this.handlers = Executors.newFixedThreadPool(handlerThreads);
        server.setExecutor(handlers);
        server.createContext("/v1/classify", this::classify);
        server.createContext("/v1/adapters", this::adapters);
        server.start();
    }

    /** The port the server listens on. */
    public int port() {
        return server.getAddress().getPort();
    }

    /** The registry the service serves from (adapters may also be registered through it directly). */
    public AdapterRegistry registry() {
        return registry;
    }

    /** Batches run so far and the texts in them. */
    public long[] batchStats() {
        return batcher.stats();
    }

    private void classify(HttpExchange ex) throws IOException {
        try (ex) {
            if (!ex.getRequestMethod().equals("POST")) {
                send(ex, 405, error("use POST"));
                return;
            }
            JsonNode body = readJson(ex);
            if (body == null) {
                return;
            }
            JsonNode texts = body.get("texts");
            if (texts == null || !texts.isArray() || texts.isEmpty()) {
                send(ex, 400, error("\"texts\": expected a non-empty array of strings"));
                return;
            }
            List<String> t = new ArrayList<>();
            for (JsonNode n : texts) {
                if (!n.isTextual()) {
                    send(ex, 400, error("\"texts\": expected strings, got " + n));
                    return;
                }
                t.add(n.asText());
            }
            List<String> ids;
            if (body.has("adapters")) {
                JsonNode a = body.get("adapters");
                if (!a.isArray() || a.size() != t.size()) {
                    send(ex, 400, error("\"adapters\": expected an array with one adapter id per text (" + t.size() + "), got " + a));
                    return;
                }
                ids = new ArrayList<>();
                for (JsonNode n : a) {
                    ids.add(n.isNull() ? AdapterRegistry.BASE : n.asText());
                }
            } else if (body.hasNonNull("adapter") && body.get("adapter").isTextual()) {
                ids = Collections.nCopies(t.size(), body.get("adapter").asText());
            } else {
                send(ex, 400, error("expected \"adapter\": \"<id>\" or \"adapters\": [one id per text]; ids: " + registry.ids()
                        + " or \"" + AdapterRegistry.BASE + "\""));
                return;
            }
            List<String> known = registry.ids();
            for (String id : ids) {
                if (!id.equals(AdapterRegistry.BASE) && !known.contains(id)) {
                    send(ex, 404, error("adapter '" + id + "' is not registered; registered: " + known + ", or \"" + AdapterRegistry.BASE + "\""));
                    return;
                }
            }
            float[][] probs;
            try {
                probs = batcher.submit(t, ids).get(REQUEST_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                Throwable c = e.getCause();
                send(ex, c instanceof UnknownAdapterException ? 404 : BatchingQueue.isClientError(c) ? 400 : 500, error(String.valueOf(c.getMessage())));
                return;
            } catch (TimeoutException e) {
                send(ex, 503, error("no answer within " + REQUEST_TIMEOUT_SECONDS + " s"));
                return;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                send(ex, 503, error("interrupted"));
                return;
            }
            ObjectNode out = JSON.createObjectNode();
            ArrayNode results = out.putArray("results");
            for (int i = 0; i < probs.length; i++) {
                ObjectNode r = results.addObject();
                r.put("adapter", ids.get(i));
                int best = 0;
                ArrayNode p = r.putArray("probabilities");
                for (int c = 0; c < probs[i].length; c++) {
                    p.add(probs[i][c]);
                    best = probs[i][c] > probs[i][best] ? c : best;
                }
                r.put("label", best);
            }
            send(ex, 200, out);
        } catch (RuntimeException e) {
            send(ex, 500, error(e.toString()));
        }
    }

    private void adapters(HttpExchange ex) throws IOException {
        try (ex) {
            String path = ex.getRequestURI().getPath();
            String rest = path.length() > "/v1/adapters".length() ? path.substring("/v1/adapters/".length()) : "";
            switch (ex.getRequestMethod()) {
                case "GET" -> {
                    ObjectNode out = JSON.createObjectNode();
                    ArrayNode list = out.putArray("adapters");
                    for (AdapterInfo a : registry.adapters()) {
                        list.addObject().put("id", a.id()).put("source", a.source().toString()).put("format", a.format())
                                .put("resident", a.resident()).put("bytes", a.bytes()).put("loads", a.loads());
                    }
                    send(ex, 200, out);
                }
                case "POST" -> {
                    JsonNode body = readJson(ex);
                    if (body == null) {
                        return;
                    }
                    String id = body.path("id").asText(null);
                    String file = body.path("path").asText(null);
                    String format = body.path("format").asText("prilora");
                    if (id == null || file == null || !(format.equals("prilora") || format.equals("peft"))) {
                        send(ex, 400, error("expected {\"id\": \"...\", \"path\": \"...\", \"format\": \"prilora\" | \"peft\"}, got " + body));
                        return;
                    }
                    try {
                        if (format.equals("peft")) {
                            registry.registerPeft(id, Path.of(file), null);
                        } else {
                            registry.register(id, Path.of(file));
                        }
                    } catch (AdapterMismatchException | AdapterFileException e) {
                        send(ex, 400, error(e.getMessage()));
                        return;
                    } catch (IllegalArgumentException e) {
                        send(ex, e.getMessage().contains("already registered") ? 409 : 400, error(e.getMessage()));
                        return;
                    }
                    send(ex, 201, JSON.createObjectNode().put("loaded", id));
                }
                case "DELETE" -> {
                    if (registry.unregister(rest)) {
                        send(ex, 200, JSON.createObjectNode().put("unloaded", rest));
                    } else {
                        send(ex, 404, error("adapter '" + rest + "' is not registered; registered: " + registry.ids()));
                    }
                }
                default -> send(ex, 405, error("use GET, POST or DELETE"));
            }
        } catch (RuntimeException e) {
            send(ex, 500, error(e.toString()));
        }
    }

    /** The request body as JSON, or null after answering 400. */
    private static JsonNode readJson(HttpExchange ex) throws IOException {
        try (InputStream in = ex.getRequestBody()) {
            JsonNode n = JSON.readTree(in);
            if (n == null || !n.isObject()) {
                send(ex, 400, error("expected a JSON object"));
                return null;
            }
            return n;
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            send(ex, 400, error("malformed JSON: " + e.getOriginalMessage()));
            return null;
        }
    }

    private static ObjectNode error(String message) {
        return JSON.createObjectNode().put("error", message);
    }

    private static void send(HttpExchange ex, int status, JsonNode body) throws IOException {
        byte[] bytes = JSON.writeValueAsBytes(body);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(bytes);
        }
    }

    @Override
    public void close() {
        server.stop(0);
        batcher.close();
        handlers.shutdownNow();
    }

    /**
     * Runs the service with all-MiniLM-L6-v2 and a 2-class head as the base. Options: {@code --port N} (8080),
     * {@code --adapter id=file} and {@code --peft id=dir} (repeatable), {@code --max-batch N} (32),
     * {@code --max-wait-ms N} (5), {@code --budget-bytes N} (unlimited), {@code --classes N} (2).
     */
    public static void main(String[] args) throws Exception {
        int port = 8080;
        int maxBatch = 32;
        long maxWait = 5;
        long budget = Long.MAX_VALUE;
        int classes = 2;
        List<String[]> adapters = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--port" -> port = Integer.parseInt(args[++i]);
                case "--max-batch" -> maxBatch = Integer.parseInt(args[++i]);
                case "--max-wait-ms" -> maxWait = Long.parseLong(args[++i]);
                case "--budget-bytes" -> budget = Long.parseLong(args[++i]);
                case "--classes" -> classes = Integer.parseInt(args[++i]);
                case "--adapter", "--peft" -> {
                    String[] kv = args[i + 1].split("=", 2);
                    if (kv.length != 2) {
                        throw new IllegalArgumentException(args[i] + ": expected id=path, got " + args[i + 1]);
                    }
                    adapters.add(new String[]{args[i], kv[0], kv[1]});
                    i++;
                }
                default -> throw new IllegalArgumentException("unknown option " + args[i]
                        + "; options: --port, --adapter id=file, --peft id=dir, --max-batch, --max-wait-ms, --budget-bytes, --classes");
            }
        }
        BertWeights w;
        try (InputStream in = ClassificationService.class.getClassLoader().getResourceAsStream("all-minilm-l6-v2.onnx")) {
            w = OnnxBertReader.read(in);
        }
        MultiLayerNetwork base = BertEncoderFactory.builder(w.config()).plain().classifier(classes).build(w);
        AdapterRegistry registry = AdapterRegistry.builder(base).memoryBudgetBytes(budget).build();
        for (String[] a : adapters) {
            if (a[0].equals("--peft")) {
                registry.registerPeft(a[1], Path.of(a[2]), null);
            } else {
                registry.register(a[1], Path.of(a[2]));
            }
        }
        BertTokenizer tok = BertTokenizer.fromClasspath("all-minilm-l6-v2-tokenizer.json", 128, false);
        ClassificationService s = new ClassificationService(registry, tok, DataType.FLOAT, true, new InetSocketAddress(port),
                maxBatch, maxWait, 16);
        Runtime.getRuntime().addShutdownHook(new Thread(s::close));
        System.out.printf("PRILoRA classification service on port %d, adapters %s%n", s.port(), registry.ids());
    }
}
