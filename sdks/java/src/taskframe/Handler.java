package taskframe;

/**
 * A task handler: its return value is the task's result. {@code byte[]} is sent as is
 * ({@code application/octet-stream}), a {@code String} as UTF-8 text, {@code null} as empty output,
 * an {@link Output} with its own content type, anything else as JSON ({@link Json#write}).
 */
@FunctionalInterface
public interface Handler {
  Object handle(TaskContext ctx) throws Exception;
}
