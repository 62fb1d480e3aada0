package taskframe;

/**
 * A child added by {@link TaskContext#spawn}: its task id, and its full name in the run
 * ({@code <parent name>/<key>}); {@code existing} when the key had been spawned before.
 */
public record SpawnedChild(String key, String taskId, String name, boolean existing) {}
