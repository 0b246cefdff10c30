package org.prilora.samples.serving;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.prilora.bert.BertTokenizer;
import org.prilora.serving.AdapterRegistry;
import org.prilora.serving.UnknownAdapterException;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Collects concurrent classification requests into mixed-adapter batches: one worker thread takes the first waiting
 * request, then more until the batch holds {@code maxBatch} texts or {@code maxWaitMillis} have passed, tokenizes them
 * together and runs one {@link AdapterRegistry#predict(List, INDArray, INDArray)} with one adapter id per text.
 * A batch that fails for one request (an adapter unloaded after it was accepted) is rerun request by request, so only
 * that request fails.
 */
final class BatchingQueue implements AutoCloseable {
    /** One HTTP request: its texts, one adapter id per text, and the future of its probabilities. */
    record Request(List<String> texts, List<String> adapters, CompletableFuture<float[][]> result) {
    }

    private final AdapterRegistry registry;
    private final BertTokenizer tokenizer;
    private final DataType dataType;
    private final boolean tokenTypes;
    private final int maxBatch;
    private final long maxWaitNanos;
    private final BlockingQueue<Request> queue = new LinkedBlockingQueue<>();
    private final Thread worker;
    private volatile boolean closed;
    private long batches;
    private long texts;

    BatchingQueue(AdapterRegistry registry, BertTokenizer tokenizer, DataType dataType, boolean tokenTypes, int maxBatch, long maxWaitMillis) {
        if (maxBatch < 1 || maxWaitMillis < 0) {
            throw new IllegalArgumentException("maxBatch: expected >= 1 (got " + maxBatch + "), maxWaitMillis >= 0 (got " + maxWaitMillis + ")");
        }
        this.registry = registry;
        this.tokenizer = tokenizer;
        this.dataType = dataType;
        this.tokenTypes = tokenTypes;
        this.maxBatch = maxBatch;
        this.maxWaitNanos = TimeUnit.MILLISECONDS.toNanos(maxWaitMillis);
        this.worker = new Thread(this::loop, "prilora-batcher");
        this.worker.setDaemon(true);
        this.worker.start();
    }

    CompletableFuture<float[][]> submit(List<String> texts, List<String> adapters) {
        CompletableFuture<float[][]> f = new CompletableFuture<>();
        if (closed) {
            f.completeExceptionally(new IllegalStateException("the service is shutting down"));
            return f;
        }
        queue.add(new Request(texts, adapters, f));
        return f;
    }

    /** Batches run so far and texts in them (for the mean batch size). */
    synchronized long[] stats() {
        return new long[]{batches, texts};
    }

    private void loop() {
        while (!closed) {
            try {
                Request first = queue.poll(100, TimeUnit.MILLISECONDS);
                if (first == null) {
                    continue;
                }
                List<Request> batch = new ArrayList<>(List.of(first));
                int n = first.texts().size();
                long deadline = System.nanoTime() + maxWaitNanos;
                while (n < maxBatch) {
                    Request next = queue.peek();
                    if (next != null && n + next.texts().size() > maxBatch) {
                        break;                                   // next batch
                    }
                    long left = deadline - System.nanoTime();
                    next = left > 0 ? queue.poll(left, TimeUnit.NANOSECONDS) : queue.poll();
                    if (next == null) {
                        break;
                    }
                    batch.add(next);
                    n += next.texts().size();
                }
                run(batch);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } catch (RuntimeException | Error e) {
                // run() completes every future; anything else must not kill the worker
            }
        }
    }

    private void run(List<Request> batch) {
        try {
            float[][] all = predict(batch);
            int row = 0;
            for (Request r : batch) {
                float[][] mine = new float[r.texts().size()][];
                for (int i = 0; i < mine.length; i++) {
                    mine[i] = all[row++];
                }
                r.result().complete(mine);
            }
        } catch (RuntimeException e) {
            if (batch.size() == 1) {
                batch.get(0).result().completeExceptionally(e);
                return;
            }
            for (Request r : batch) {                          // find the failing request(s); the others still answer
                run(List.of(r));
            }
        }
    }

    private float[][] predict(List<Request> batch) {
        List<String> texts = new ArrayList<>();
        List<String> ids = new ArrayList<>();
        for (Request r : batch) {
            texts.addAll(r.texts());
            ids.addAll(r.adapters());
        }
        BertTokenizer.Batch tok;
        synchronized (tokenizer) {
            tok = tokenizer.encode(texts);
        }
        INDArray y = registry.predict(ids, tok.features(dataType, tokenTypes), tok.maskArray(dataType));
        synchronized (this) {
            batches++;
            this.texts += texts.size();
        }
        float[][] out = new float[texts.size()][];
        for (int i = 0; i < out.length; i++) {
            out[i] = y.get(NDArrayIndex.point(i), NDArrayIndex.all()).castTo(DataType.FLOAT).toFloatVector();
        }
        return out;
    }

    /** Whether an error is the client's: an unknown adapter or a malformed request. */
    static boolean isClientError(Throwable t) {
        return t instanceof UnknownAdapterException || t instanceof IllegalArgumentException;
    }

    @Override
    public void close() {
        closed = true;
        worker.interrupt();
        Request r;
        while ((r = queue.poll()) != null) {
            r.result().completeExceptionally(new IllegalStateException("the service is shutting down"));
        }
    }
}
