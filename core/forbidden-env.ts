/*
 * Environment variables a task's own `env` may not set (SECURITY.md "Hostile input").
 *
 * They change what *every* program of a runtime does, whatever program the task names: the
 * dynamic loader (LD_*, glibc's GCONV_PATH and friends), Node, Python's startup file, Perl,
 * Ruby, bash and POSIX sh startup files, the JVM. A task chooses its own program anyway, so
 * they give it nothing it needs; what they could reach is a program the framework runs for
 * the task (the jail's bwrap, the sidecar's own `task` for builtin steps and `task spawn`,
 * dependency checks, installs). Variables that only pick modules for the program being run
 * (PYTHONPATH, NODE_PATH, CLASSPATH, PERL5LIB) are allowed: examples rely on them.
 *
 * TASKFRAME_* are the framework's own (task id, attempt, hub URL, task token): never a task's.
 * A pool's policy (`--pool-policy`, `allow_env`) can allow the others; the sidecar strips what
 * its own `--allow-env` does not allow, as defence in depth.
 */

export const FORBIDDEN_ENV_NAMES: ReadonlySet<string> = new Set([
  // glibc: variables it ignores for setuid programs (unsecure-envvars.h), the loader's and others
  "GCONV_PATH",
  "GETCONF_DIR",
  "HOSTALIASES",
  "LOCALDOMAIN",
  "LOCPATH",
  "MALLOC_TRACE",
  "NIS_PATH",
  "NLSPATH",
  "RESOLV_HOST_CONF",
  "RES_OPTIONS",
  "TZDIR",
  // interpreters and runtimes that load code named by the environment into any program
  "NODE_OPTIONS",
  "PYTHONSTARTUP",
  "PYTHONINSPECT",
  "PYTHONHOME",
  "PERL5OPT",
  "PERL5DB",
  "RUBYOPT",
  "BASH_ENV",
  "ENV",
  "SHELLOPTS",
  "BASHOPTS",
  "PS4",
  "JAVA_TOOL_OPTIONS",
  "_JAVA_OPTIONS",
  "JDK_JAVA_OPTIONS",
]);

/** Whole families: the loader (Linux and macOS), exported bash functions, the framework's own. */
export const FORBIDDEN_ENV_PREFIXES: readonly string[] = ["LD_", "DYLD_", "BASH_FUNC_", "TASKFRAME_"];

/** The framework's own prefix: no policy can allow it. */
const OWN_PREFIX = "TASKFRAME_";

/** Why a task may not set `name`, or undefined if it may (given what its pool allows). */
export function forbiddenEnvReason(
  name: string,
  allowed: ReadonlySet<string> = new Set(),
): string | undefined {
  if (name === "" || name.includes("=") || name.includes("\0"))
    return "is not a valid variable name (empty, or with '=' or NUL)";
  if (name.startsWith(OWN_PREFIX)) return "is Taskframe's own (TASKFRAME_*): the sidecar sets these";
  if (allowed.has(name)) return undefined;
  if (FORBIDDEN_ENV_NAMES.has(name) || FORBIDDEN_ENV_PREFIXES.some((prefix) => name.startsWith(prefix)))
    return "changes how programs load code (loader or interpreter injection); a pool policy's allow_env can allow it";
  return undefined;
}

/** The task's `env` without what it may not set, and the names left out. */
export function permittedTaskEnv(
  env: Readonly<Record<string, string>>,
  allowed: ReadonlySet<string> = new Set(),
): { env: Record<string, string>; stripped: string[] } {
  const kept: Record<string, string> = Object.create(null);
  const stripped: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (forbiddenEnvReason(name, allowed) === undefined) kept[name] = value;
    else stripped.push(name);
  }
  return { env: kept, stripped };
}
