package org.prilora.spark;

import org.apache.spark.broadcast.Broadcast;
import org.prilora.parallel.ShardWorker;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Per executor JVM, the network copies of each trainer: built once from the broadcast model (frozen weights arrive
 * once), reused by every later task of that trainer; one copy per concurrently running task.
 */
final class WorkerPool {
    private static final Map<String, ConcurrentLinkedQueue<ShardWorker>> POOLS = new ConcurrentHashMap<>();

    private WorkerPool() {
    }

    static ShardWorker borrow(String trainerId, Broadcast<ModelBytes> model) {
        ShardWorker w = POOLS.computeIfAbsent(trainerId, k -> new ConcurrentLinkedQueue<>()).poll();
        return w != null ? w : new ShardWorker(model.value().restore());
    }

    static void release(String trainerId, ShardWorker worker) {
        ConcurrentLinkedQueue<ShardWorker> q = POOLS.get(trainerId);
        if (q != null) {
            q.offer(worker);
        }
    }

    /** Drops the copies of a closed trainer held in this JVM. */
    static void close(String trainerId) {
        POOLS.remove(trainerId);
    }
}
