# Sourced by the hello tasks: one directory per run, shared by its tasks
# (TASKFRAME_RUN_DIR: a jailed task's /tmp is its own).
WORK="${TASKFRAME_RUN_DIR:-${TMPDIR:-/tmp}/taskframe-hello-${TASKFRAME_RUN_ID:?run me with task run}}"
mkdir -p "$WORK"
