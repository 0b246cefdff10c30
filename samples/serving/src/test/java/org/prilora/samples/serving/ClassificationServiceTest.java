package org.prilora.samples.serving;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.prilora.PriLora;
import org.prilora.PriLoraAdapters;
import org.prilora.bert.BertConfig;
import org.prilora.bert.BertEncoderFactory;
import org.prilora.bert.BertTokenizer;
import org.prilora.bert.PriLoraBertBlock;
import org.prilora.config.PriLoraConfig;
import org.prilora.config.RankSchedule;
import org.prilora.layers.AdapterModule;
import org.prilora.serving.AdapterRegistry;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The service over loopback with the JDK's HttpClient: a small BERT encoder (MiniLM's real tokenizer and vocabulary,
 * two narrow blocks, double precision) and real adapter files. Four clients send 60 mixed requests while a fifth loads
 * and unloads an adapter over HTTP; every answered text equals the merged network of its adapter on that text alone.
 */
class ClassificationServiceTest {
    private static final BertConfig SMALL = new BertConfig(30522, 16, 2, 4, 32, 128, 2, 1e-12);
    private static final List<String> SENTENCES = List.of("She don't like apples.", "The committee approved the budget.",
            "Him and me went to the store.", "Could you send me the report before Friday?", "A", "Dogs bark.",
            "Transformers use self-attention; recurrent networks process tokens one at a time.");
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path dir;
    private static MultiLayerNetwork base;
    private static BertTokenizer tokenizer;
    private static final Map<String, Path> files = new ConcurrentHashMap<>();
    private static final Map<String, MultiLayerNetwork> merged = new ConcurrentHashMap<>();
    private static ClassificationService service;
    private static HttpClient http;

    @BeforeAll
    static void start() throws Exception {
        base = BertEncoderFactory.builder(SMALL).dataType(DataType.DOUBLE).seed(2).plain().classifier(3).build();
        tokenizer = BertTokenizer.fromClasspath("all-minilm-l6-v2-tokenizer.json", 128, false);
        for (String id : List.of("a", "b", "c")) {
            MultiLayerNetwork adapted = PriLora.adapt(base, PriLoraConfig.builder().rankSchedule(RankSchedule.linear(2, 4)).alpha(8)
                    .modulesToSave(BertEncoderFactory.CLASSIFIER_NAME).seed(id.hashCode()).build());
            org.nd4j.linalg.api.rng.Random rng = Nd4j.getRandomFactory().getNewRandomInstance(id.hashCode());
            for (Layer l : adapted.getLayers()) {
                if (l.conf().getLayer() instanceof PriLoraBertBlock) {
                    for (AdapterModule m : ((PriLoraBertBlock) l.conf().getLayer()).adapterModules()) {
                        l.getParam(m.bKey()).assign(Nd4j.randn(l.getParam(m.bKey()).shape(), rng).muli(0.5));
                    }
                }
            }
            INDArray head = adapted.getLayer(BertEncoderFactory.CLASSIFIER_NAME).params();
            head.addi(Nd4j.randn(head.shape(), rng).muli(1.0));
            Path f = dir.resolve(id + ".prilora");
            PriLoraAdapters.save(adapted, f);
            files.put(id, f);
            merged.put(id, PriLora.merge(PriLoraAdapters.load(base, f)));
        }
        merged.put(AdapterRegistry.BASE, base);
        AdapterRegistry registry = AdapterRegistry.builder(base).build();
        registry.register("a", files.get("a"));
        service = new ClassificationService(registry, tokenizer, DataType.DOUBLE, true,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16, 5, 8);
        http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    }

    @AfterAll
    static void stop() {
        if (service != null) {
            service.close();
        }
        tokenizer.close();
        base = null;
        merged.clear();
    }

    private static HttpResponse<String> call(String method, String path, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + service.port() + path))
                .timeout(Duration.ofSeconds(60)).header("Content-Type", "application/json");
        b = body == null ? b.method(method, HttpRequest.BodyPublishers.noBody()) : b.method(method, HttpRequest.BodyPublishers.ofString(body));
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** The merged network's probabilities for one text alone. */
    private static double[] reference(String adapter, String text) {
        BertTokenizer.Batch t;
        synchronized (tokenizer) {
            t = tokenizer.encode(List.of(text));
        }
        MultiLayerNetwork net = merged.get(adapter);
        synchronized (net) {
            return net.output(t.features(DataType.DOUBLE, true), false, t.maskArray(DataType.DOUBLE), null).toDoubleVector();
        }
    }

    private static String load(String id) {
        return "{\"id\": \"" + id + "\", \"path\": " + JSON.valueToTree(files.get(id).toString()) + ", \"format\": \"prilora\"}";
    }

    @Test
    void concurrentMixedRequestsWhileAdaptersLoadAndUnloadAllEqualTheMergedNetworks() throws Exception {
        assertThat(call("POST", "/v1/adapters", load("b")).statusCode()).isEqualTo(201);
        ExecutorService pool = Executors.newFixedThreadPool(5);
        AtomicInteger ok = new AtomicInteger();
        AtomicInteger notFound = new AtomicInteger();
        List<Future<?>> fs = new ArrayList<>();
        fs.add(pool.submit(() -> {
            for (int i = 0; i < 8; i++) {
                assertThat(call("POST", "/v1/adapters", load("c")).statusCode()).isEqualTo(201);
                Thread.sleep(20);
                assertThat(call("DELETE", "/v1/adapters/c", null).statusCode()).isEqualTo(200);
                Thread.sleep(5);
            }
            return null;
        }));
        for (int c = 0; c < 4; c++) {
            long seed = c;
            fs.add(pool.submit(() -> {
                Random r = new Random(seed);
                String[] ids = {"a", "b", "c", AdapterRegistry.BASE};
                for (int i = 0; i < 15; i++) {
                    int n = 1 + r.nextInt(3);
                    List<String> texts = new ArrayList<>();
                    List<String> adapters = new ArrayList<>();
                    boolean single = r.nextBoolean();
                    String one = ids[r.nextInt(ids.length)];
                    for (int j = 0; j < n; j++) {
                        texts.add(SENTENCES.get(r.nextInt(SENTENCES.size())));
                        adapters.add(single ? one : ids[r.nextInt(ids.length)]);
                    }
                    String body = single ? JSON.writeValueAsString(Map.of("adapter", one, "texts", texts))
                            : JSON.writeValueAsString(Map.of("adapters", adapters, "texts", texts));
                    HttpResponse<String> resp = call("POST", "/v1/classify", body);
                    JsonNode json = JSON.readTree(resp.body());
                    if (resp.statusCode() == 404) {
                        assertThat(adapters).contains("c");
                        assertThat(json.get("error").asText()).contains("'c'");
                        notFound.incrementAndGet();
                        continue;
                    }
                    assertThat(resp.statusCode()).as(resp.body()).isEqualTo(200);
                    JsonNode results = json.get("results");
                    assertThat(results.size()).isEqualTo(n);
                    for (int j = 0; j < n; j++) {
                        JsonNode res = results.get(j);
                        assertThat(res.get("adapter").asText()).isEqualTo(adapters.get(j));
                        double[] ref = reference(adapters.get(j), texts.get(j));
                        double max = 0;
                        for (int k = 0; k < ref.length; k++) {
                            max = Math.max(max, Math.abs(res.get("probabilities").get(k).asDouble() - ref[k]));
                        }
                        // probabilities travel as float32: within 1e-6 of the double-precision merged network
                        assertThat(max).as("adapter %s, text '%s'", adapters.get(j), texts.get(j)).isLessThan(1e-6);
                    }
                    ok.incrementAndGet();
                }
                return null;
            }));
        }
        pool.shutdown();
        assertThat(pool.awaitTermination(120, TimeUnit.SECONDS)).as("finished within 120 s").isTrue();
        for (Future<?> f : fs) {
            f.get();
        }
        assertThat(ok.get() + notFound.get()).isEqualTo(60);
        long[] stats = service.batchStats();
        System.out.printf("service: %d answered, %d unknown-adapter answers, %d batches for %d texts%n", ok.get(), notFound.get(),
                stats[0], stats[1]);
        JsonNode list = JSON.readTree(call("GET", "/v1/adapters", null).body());
        assertThat(list.get("adapters").findValuesAsText("id")).containsExactly("a", "b");
    }

    @Test
    void badRequestsGetClearErrors() throws Exception {
        HttpResponse<String> r = call("POST", "/v1/classify", "{\"adapter\": \"zzz\", \"texts\": [\"hi\"]}");
        assertThat(r.statusCode()).isEqualTo(404);
        assertThat(r.body()).contains("'zzz' is not registered");
        r = call("POST", "/v1/classify", "{\"adapters\": [\"a\"], \"texts\": [\"hi\", \"there\"]}");
        assertThat(r.statusCode()).isEqualTo(400);
        assertThat(r.body()).contains("one adapter id per text (2)");
        r = call("POST", "/v1/classify", "{not json");
        assertThat(r.statusCode()).isEqualTo(400);
        assertThat(r.body()).contains("malformed JSON");
        r = call("POST", "/v1/classify", "{\"adapter\": \"a\", \"texts\": []}");
        assertThat(r.statusCode()).isEqualTo(400);
        r = call("DELETE", "/v1/adapters/zzz", null);
        assertThat(r.statusCode()).isEqualTo(404);
        r = call("POST", "/v1/adapters", "{\"id\": \"x\", \"path\": \"" + dir.resolve("none.prilora").toString().replace("\\", "/") + "\"}");
        assertThat(r.statusCode()).isEqualTo(400);
        assertThat(r.body()).contains("does not exist");
        r = call("POST", "/v1/adapters", load("a").replace("\"id\": \"a\"", "\"id\": \"a\""));
        assertThat(r.statusCode()).isEqualTo(409);
    }
}
