# Sourced by the hello tasks: one scratch directory per run, shared by its tasks.
WORK="${TMPDIR:-/tmp}/taskframe-hello-${TASKFRAME_RUN_ID:?run me with task run}"
mkdir -p "$WORK"
