package taskframe.internal;

import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * SIGTERM and SIGINT handling through {@code sun.misc.Signal} (module jdk.unsupported, looked up
 * reflectively): the first signal runs {@code onSignal} on a thread of its own (the JVM does not
 * exit by itself, so the worker drains and the program ends normally, exit status 0); a second one
 * ends the process at once.
 */
public final class Signals {
  private Signals() {}

  /** Installs the handlers; returns what restores the previous ones, or null if signals cannot be handled. */
  public static Runnable install(Runnable onSignal) {
    try {
      Class<?> signalClass = Class.forName("sun.misc.Signal");
      Class<?> handlerInterface = Class.forName("sun.misc.SignalHandler");
      Constructor<?> newSignal = signalClass.getConstructor(String.class);
      Method handle = signalClass.getMethod("handle", signalClass, handlerInterface);
      Method number = signalClass.getMethod("getNumber");
      AtomicInteger received = new AtomicInteger();
      Object handler =
          Proxy.newProxyInstance(
              Signals.class.getClassLoader(),
              new Class<?>[] {handlerInterface},
              (proxy, method, args) -> {
                switch (method.getName()) {
                  case "handle":
                    if (received.incrementAndGet() == 1) {
                      Thread stopper = new Thread(onSignal, "taskframe-stop");
                      stopper.setDaemon(true);
                      stopper.start();
                    } else {
                      Runtime.getRuntime().halt(128 + (int) number.invoke(args[0]));
                    }
                    return null;
                  case "hashCode":
                    return System.identityHashCode(proxy);
                  case "equals":
                    return proxy == args[0];
                  case "toString":
                    return "taskframe signal handler";
                  default:
                    return null;
                }
              });
      List<Object[]> previous = new ArrayList<>();
      for (String name : List.of("TERM", "INT")) {
        try {
          Object signal = newSignal.newInstance(name);
          previous.add(new Object[] {signal, handle.invoke(null, signal, handler)});
        } catch (ReflectiveOperationException | IllegalArgumentException inUse) {
          if (name.equals("TERM")) throw inUse; // SIGINT may be ignored (a background process): fine
        }
      }
      return () -> {
        for (Object[] entry : previous) {
          try {
            handle.invoke(null, entry[0], entry[1]);
          } catch (ReflectiveOperationException | RuntimeException ignored) {
            // best effort
          }
        }
      };
    } catch (ReflectiveOperationException | RuntimeException | LinkageError unavailable) {
      return null;
    }
  }
}
