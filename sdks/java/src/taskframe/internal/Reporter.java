package taskframe.internal;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import taskframe.Json;
import taskframe.RunnerException;

/**
 * Sends what handlers report, in batches, from one thread: what accumulates within {@link
 * #FLUSH_MS} travels in one call of each kind (log lines first, then progress heartbeats, then
 * completions, so that a task's lines arrive before its result); and a heartbeat of every running
 * task each heartbeat interval.
 */
final class Reporter {
  static final long FLUSH_MS = 5;
  private static final int MAX_ITEMS_PER_CALL = 1000;
  private static final int MAX_CHARS_PER_CALL = 8 * 1024 * 1024;
  private static final long[] RETRY_DELAYS_MS = {50, 250, 1000};

  private final Session session;
  private final long heartbeatNanos;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private List<String> completions = new ArrayList<>();
  private List<String> lines = new ArrayList<>();
  private List<String> progress = new ArrayList<>();
  /** nanoTime of the oldest report not sent yet; -1: none. */
  private long pendingSince = -1;
  private boolean closing;
  private final Thread thread;

  Reporter(Session session, long heartbeatIntervalMs) {
    this.session = session;
    this.heartbeatNanos = TimeUnit.MILLISECONDS.toNanos(heartbeatIntervalMs);
    this.thread = new Thread(this::loop, "taskframe-reporter");
    thread.setDaemon(true);
  }

  void start() {
    thread.start();
  }

  void completion(String json) {
    add(json, 0);
  }

  void line(String json) {
    add(json, 1);
  }

  void progress(String json) {
    add(json, 2);
  }

  private void add(String json, int kind) {
    lock.lock();
    try {
      (kind == 0 ? completions : kind == 1 ? lines : progress).add(json);
      if (pendingSince < 0) {
        pendingSince = System.nanoTime();
        changed.signal();
      }
    } finally {
      lock.unlock();
    }
  }

  /** Sends what is pending, stops the thread; waits at most {@code timeoutMs}. */
  void close(long timeoutMs) throws InterruptedException {
    lock.lock();
    try {
      closing = true;
      changed.signal();
    } finally {
      lock.unlock();
    }
    thread.join(timeoutMs);
  }

  private void loop() {
    long nextHeartbeat = System.nanoTime() + heartbeatNanos;
    while (true) {
      List<String> sendCompletions;
      List<String> sendLines;
      List<String> sendProgress;
      boolean heartbeatDue = false;
      lock.lock();
      try {
        while (true) {
          long now = System.nanoTime();
          if (pendingSince >= 0) {
            long flushAt = pendingSince + TimeUnit.MILLISECONDS.toNanos(FLUSH_MS);
            if (closing || now - flushAt >= 0) break;
            changed.awaitNanos(flushAt - now);
          } else if (closing) {
            return;
          } else if (now - nextHeartbeat >= 0) {
            heartbeatDue = true;
            break;
          } else {
            changed.awaitNanos(nextHeartbeat - now);
          }
        }
        sendCompletions = completions;
        sendLines = lines;
        sendProgress = progress;
        completions = new ArrayList<>();
        lines = new ArrayList<>();
        progress = new ArrayList<>();
        pendingSince = -1;
      } catch (InterruptedException e) {
        return;
      } finally {
        lock.unlock();
      }
      send(sendLines, sendProgress, sendCompletions);
      if (heartbeatDue || System.nanoTime() - nextHeartbeat >= 0) {
        nextHeartbeat = System.nanoTime() + heartbeatNanos;
        if (!session.streamEnded()) heartbeat(session.runningProgress());
      }
    }
  }

  private void send(List<String> lines, List<String> progress, List<String> completions) {
    for (int from = 0; from < lines.size(); ) {
      int to = batchEnd(lines, from);
      call("Log", "lines", lines.subList(from, to));
      from = to;
    }
    if (!progress.isEmpty()) heartbeat(progress);
    for (int from = 0; from < completions.size(); ) {
      int to = batchEnd(completions, from);
      Map<String, Object> response = call("Complete", "completions", completions.subList(from, to));
      if (response != null) checkReceipts(response);
      from = to;
    }
  }

  private void heartbeat(List<String> tasks) {
    if (tasks.isEmpty()) return;
    Map<String, Object> response = call("Heartbeat", "tasks", tasks);
    if (response == null) return;
    for (Object taskId : Assignment.list(response, "lostTaskIds")) {
      if (taskId instanceof String) session.lost((String) taskId);
    }
  }

  private void checkReceipts(Map<String, Object> response) {
    for (Object receipt : Assignment.list(response, "receipts")) {
      if (!(receipt instanceof Map)) continue;
      Map<?, ?> r = (Map<?, ?>) receipt;
      if (!Boolean.TRUE.equals(r.get("accepted"))) {
        session.note(
            "the sidecar did not accept the completion of task "
                + Assignment.string(r, "taskId")
                + ": "
                + Assignment.string(r, "reason"));
      }
    }
  }

  private static int batchEnd(List<String> items, int from) {
    int to = from;
    long chars = 0;
    while (to < items.size() && to - from < MAX_ITEMS_PER_CALL) {
      chars += items.get(to).length();
      if (to > from && chars > MAX_CHARS_PER_CALL) break;
      to++;
    }
    return to;
  }

  /** One call with {"workerId": …, field: [items]}; retried a few times if the sidecar cannot be reached. */
  private Map<String, Object> call(String method, String field, List<String> items) {
    StringBuilder body = new StringBuilder(64 + items.stream().mapToInt(String::length).sum() + items.size());
    body.append("{\"workerId\":");
    Json.writeString(session.workerId(), body);
    body.append(",\"").append(field).append("\":[");
    for (int i = 0; i < items.size(); i++) {
      if (i > 0) body.append(',');
      body.append(items.get(i));
    }
    body.append("]}");
    String request = body.toString();
    for (int attempt = 0; ; attempt++) {
      try {
        return session.client().call(method, request);
      } catch (RunnerException e) {
        session.note(method + " failed: " + e.getMessage());
        return null;
      } catch (IOException e) {
        if (attempt >= RETRY_DELAYS_MS.length || session.streamEnded()) {
          session.note(method + " failed: " + e);
          return null;
        }
        try {
          Thread.sleep(RETRY_DELAYS_MS[attempt]);
        } catch (InterruptedException interrupted) {
          return null;
        }
      }
    }
  }
}
