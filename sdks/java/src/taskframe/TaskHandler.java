package taskframe;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Marks a method as the handler of the named tasks. The method takes one {@link TaskContext} and
 * returns the task's result ({@code byte[]}, {@code String}, {@link Output}, a JSON value, or
 * nothing); register the object that declares it with {@link Worker#register(Object)}.
 *
 * <pre>{@code
 * @TaskHandler("resize")
 * public byte[] resize(TaskContext ctx) { ... }
 * }</pre>
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.METHOD)
public @interface TaskHandler {
  /** The handler name that tasks name in {@code handler:}. */
  String value();
}
