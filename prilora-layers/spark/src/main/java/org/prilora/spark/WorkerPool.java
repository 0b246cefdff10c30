package org.prilora.spark;

import org.apache.spark.broadcast.Broadcast;
import org.prilora.parallel.ShardWorker;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Per executor JVM, the network copies of each trainer: built once from the broadcast model (frozen weights arrive
 * once), reused by every later task of that trainer; one copy per concurrently running task. A trainer's
 * {@code close()} drops its copies only in the driver's JVM, so each executor keeps the copies of at most
 * {@link #TRAINERS_KEPT} trainers, the ones it served last: a program that trains many runs one after another (the
 * main job's {@code --compare}) does not pile up network copies on long-lived executors.
 */
final class WorkerPool {
    /** Trainers whose copies an executor keeps; more than the runs a driver trains at the same time. */
    static final int TRAINERS_KEPT = 4;

    private static final Map<String, ConcurrentLinkedQueue<ShardWorker>> POOLS =
            new LinkedHashMap<>(16, 0.75f, true) {
                @Override
                protected boolean removeEldestEntry(Map.Entry<String, ConcurrentLinkedQueue<ShardWorker>> eldest) {
                    return size() > TRAINERS_KEPT;
                }
            };

    private WorkerPool() {
    }

    static ShardWorker borrow(String trainerId, Broadcast<ModelBytes> model) {
        ConcurrentLinkedQueue<ShardWorker> q;
        synchronized (POOLS) {
            q = POOLS.computeIfAbsent(trainerId, k -> new ConcurrentLinkedQueue<>());
        }
        ShardWorker w = q.poll();
        return w != null ? w : new ShardWorker(model.value().restore());
    }

    static void release(String trainerId, ShardWorker worker) {
        ConcurrentLinkedQueue<ShardWorker> q;
        synchronized (POOLS) {
            q = POOLS.get(trainerId);
        }
        if (q != null) {
            q.offer(worker);
        }
    }

    /** Drops the copies of a closed trainer held in this JVM. */
    static void close(String trainerId) {
        synchronized (POOLS) {
            POOLS.remove(trainerId);
        }
    }

    /** Trainers with copies in this JVM (for tests). */
    static int trainers() {
        synchronized (POOLS) {
            return POOLS.size();
        }
    }
}
