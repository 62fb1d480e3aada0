package taskframe.test;

import taskframe.Worker;

/** A worker process for the SIGTERM test: its one handler takes a second. */
public final class SignalWorker {
  private SignalWorker() {}

  public static void main(String[] args) {
    Worker worker = new Worker(Worker.options().name("signal-test"));
    worker.handle("slow", ctx -> {
      ctx.log("started");
      Thread.sleep(1_000);
      return "done";
    });
    worker.run();
    System.out.println("run returned");
  }
}
