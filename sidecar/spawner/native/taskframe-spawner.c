/*
 * The spawner helper in C: the same protocol and behaviour as
 * spawner-process.ts + process-runner.ts (see proto/taskframe/v1/spawner.proto),
 * without Node's per-spawn cost. Size-delimited SpawnerRequest frames on
 * stdin, SpawnerEvent frames on stdout.
 *
 * Each task runs argv directly (PATH searched in the task's own environment,
 * a file without #! run by /bin/sh, as Node's spawn does), in a session and
 * process group of its own, stdin on /dev/null, stdout and stderr on pipes.
 * A timeout or a StopProcess sends SIGTERM to the group and SIGKILL after
 * the grace; when the main process exits, whatever is left of its group is
 * killed before it is reaped, and pipes still held open after that are
 * closed after PIPE_DRAIN_MS. With TASKFRAME_SPAWNER_LEDGER set, each group
 * is written down in that directory while it runs, in the format
 * process-ledger.ts defines.
 * When stdin closes, every task is stopped and the helper exits.
 *
 * A task without confinement starts through posix_spawn (the fast path). A
 * confined one (cgroup_procs_files, seccomp_filter_path, no_core_dumps, uid
 * or gid set) is forked, and the child, in this order: resets its signal
 * mask and dispositions, starts its session, sets up stdin/stdout/stderr,
 * writes its pid to each cgroup.procs file, sets RLIMIT_CORE to 0, opens the
 * seccomp filter as fd 3 (inherited by exec, for `bwrap --seccomp 3`),
 * switches account (setgroups: the given groups, none when empty; setgid;
 * setuid, then checks that setuid(0) fails), changes to the cwd, searches
 * PATH as that account, marks every other fd close-on-exec, and execs.
 * Whatever fails reports the step and errno through a close-on-exec pipe
 * the parent reads until exec closes it.
 *
 * Spawn errors are reported as errno names (ENOENT...). The message is the
 * bare strerror text when exec failed, or chdir as the helper's own account
 * (the sidecar turns it into the messages runProcess gives), and
 * "cannot <step>: <strerror>" when a confinement step did ("cannot join
 * cgroup PATH: No such file or directory", "cannot switch to uid 1234:
 * Operation not permitted", "cannot enter the working directory DIR as uid
 * 65534: Permission denied").
 *
 * Linux with glibc >= 2.29 (posix_spawn_file_actions_addchdir_np). Built at
 * install by build.mjs; without it the sidecar uses spawner-process.ts.
 *
 *   taskframe-spawner                              the helper
 *   taskframe-spawner --write-seccomp-filter PATH  writes the tasks' seccomp
 *                       filter (see write_seccomp_filter) to PATH; needs
 *                       libseccomp.so.2 at run time (exit 3 without it)
 *   taskframe-spawner --echo     test mode: decodes SpawnerRequest frames and
 *                                writes each back, re-encoded
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

#define PIPE_DRAIN_MS 1000.0
#define STDIN_CLOSED_WAIT_MS 10000.0
#define MAX_FRAME_BYTES (64u << 20)
#define READ_BYTES 65536
#define DEFAULT_PATH "/bin:/usr/bin"

/* SpawnerRequest */
enum { REQ_SPAWN = 1, REQ_STOP = 2 };
/* LogStream */
enum { LOG_STDOUT = 1, LOG_STDERR = 2 };

typedef struct {
  const uint8_t *data;
  size_t len;
} slice;

typedef struct {
  slice key;
  slice value;
} env_entry;

/* A decoded SpawnProcess; strings point into the frame being handled. */
typedef struct {
  uint32_t id;
  slice command;
  slice cwd;
  slice *args;
  size_t nargs, args_cap;
  env_entry *env;
  size_t nenv, env_cap;
  uint64_t timeout_ms;
  uint64_t kill_grace_ms;
  uint64_t output_limit_bytes;
  /* confinement */
  slice *cgroups;
  size_t ncgroups, cgroups_cap;
  slice seccomp_path;
  int no_core_dumps;
  int has_uid, has_gid;
  uint32_t uid, gid;
  uint32_t *groups;
  size_t ngroups, groups_cap;
} spawn_request;

typedef struct {
  int kind; /* 0: none, REQ_SPAWN, REQ_STOP */
  spawn_request spawn;
  uint32_t stop_id;
} request;

struct proc;
/* What an epoll event points at: one of a process's two pipes, or stdin / the SIGCHLD fd. */
typedef struct {
  struct proc *proc;
  int stream; /* LOG_STDOUT, LOG_STDERR; 0 for the helper's own fds */
} watch;

typedef struct proc {
  uint32_t id;
  pid_t pid;
  int fds[2]; /* stdout, stderr read ends; -1 once closed */
  watch watches[2];
  int exited, terminating, timed_out, cancelled, finished;
  int status;
  uint64_t limit, forwarded, dropped;
  uint64_t kill_grace_ms;
  int64_t started_unix_ms;
  double started_ms;
  /* monotonic deadlines in ms; 0: none */
  double timeout_at, grace_at, drain_at;
  long ledger_slot; /* -1: not recorded */
} proc;

static proc **procs;
static size_t nprocs, procs_cap;
static int epfd, sigfd, devnull = -1;
static const char *ledger_dir;
static int ledger_fd = -1;
static char ledger_path[4096];
static long *ledger_free;
static size_t ledger_nfree, ledger_free_cap;
static long ledger_next;
static wire_buf out;
static watch stdin_watch, sigchld_watch;

void wire_out_of_memory(void) {
  fputs("taskframe-spawner: out of memory\n", stderr);
  _exit(70);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) wire_out_of_memory();
  return p;
}

static void *grow(void *p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return p;
  size_t cap2 = *cap ? *cap * 2 : 8;
  while (cap2 < need) cap2 *= 2;
  void *q = realloc(p, cap2 * size);
  if (!q) wire_out_of_memory();
  *cap = cap2;
  return q;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int64_t unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- decoding requests ---- */

static int decode_env_entry(const uint8_t *data, size_t len, env_entry *e) {
  wire_reader r = {data, data + len};
  e->key = (slice){(const uint8_t *)"", 0};
  e->value = (slice){(const uint8_t *)"", 0};
  while (r.p < r.end) {
    uint32_t field, type;
    if (wire_tag(&r, &field, &type) != 0) return -1;
    if ((field == 1 || field == 2) && type == WIRE_LEN) {
      slice *s = field == 1 ? &e->key : &e->value;
      if (wire_len(&r, &s->data, &s->len) != 0) return -1;
    } else if (wire_skip(&r, field, type) != 0) {
      return -1;
    }
  }
  return 0;
}

static void add_group(spawn_request *s, uint64_t v) {
  s->groups = grow(s->groups, &s->groups_cap, s->ngroups + 1, sizeof *s->groups);
  s->groups[s->ngroups++] = (uint32_t)v;
}

/*
 * Decodes (merges) a SpawnProcess into `s`: scalars replace, repeated fields
 * append (groups packed or not), env keys replace.
 */
static int decode_spawn(const uint8_t *data, size_t len, spawn_request *s) {
  wire_reader r = {data, data + len};
  while (r.p < r.end) {
    uint32_t field, type;
    uint64_t v;
    if (wire_tag(&r, &field, &type) != 0) return -1;
    if (type == WIRE_VARINT && (field == 1 || (field >= 6 && field <= 8) || (field >= 11 && field <= 14))) {
      if (wire_varint(&r, &v) != 0) return -1;
      if (field == 1) s->id = (uint32_t)v;
      else if (field == 6) s->timeout_ms = v;
      else if (field == 7) s->kill_grace_ms = v;
      else if (field == 8) s->output_limit_bytes = v;
      else if (field == 11) s->no_core_dumps = v != 0;
      else if (field == 12) s->has_uid = 1, s->uid = (uint32_t)v;
      else if (field == 13) s->has_gid = 1, s->gid = (uint32_t)v;
      else add_group(s, v);
    } else if (type == WIRE_LEN && ((field >= 2 && field <= 5) || (field >= 9 && field <= 10) || field == 14)) {
      slice value;
      if (wire_len(&r, &value.data, &value.len) != 0) return -1;
      if (field == 2) {
        s->command = value;
      } else if (field == 5) {
        s->cwd = value;
      } else if (field == 3) {
        s->args = grow(s->args, &s->args_cap, s->nargs + 1, sizeof *s->args);
        s->args[s->nargs++] = value;
      } else if (field == 9) {
        s->cgroups = grow(s->cgroups, &s->cgroups_cap, s->ncgroups + 1, sizeof *s->cgroups);
        s->cgroups[s->ncgroups++] = value;
      } else if (field == 10) {
        s->seccomp_path = value;
      } else if (field == 14) {
        /* packed: varints back to back, the last one ending with the field */
        wire_reader packed = {value.data, value.data + value.len};
        while (packed.p < packed.end) {
          if (wire_varint(&packed, &v) != 0) return -1;
          add_group(s, v);
        }
      } else {
        env_entry e;
        if (decode_env_entry(value.data, value.len, &e) != 0) return -1;
        size_t i = 0;
        while (i < s->nenv && !(s->env[i].key.len == e.key.len &&
                                memcmp(s->env[i].key.data, e.key.data, e.key.len) == 0))
          i++;
        if (i == s->nenv) {
          s->env = grow(s->env, &s->env_cap, s->nenv + 1, sizeof *s->env);
          s->nenv++;
        }
        s->env[i] = e;
      }
    } else if (wire_skip(&r, field, type) != 0) {
      return -1;
    }
  }
  return 0;
}

static void reset_spawn(spawn_request *s) {
  spawn_request kept = *s;
  memset(s, 0, sizeof *s);
  /* the arrays are kept for the next request */
  s->args = kept.args;
  s->args_cap = kept.args_cap;
  s->env = kept.env;
  s->env_cap = kept.env_cap;
  s->cgroups = kept.cgroups;
  s->cgroups_cap = kept.cgroups_cap;
  s->groups = kept.groups;
  s->groups_cap = kept.groups_cap;
}

/* Decodes one SpawnerRequest; the oneof keeps its last case, a repeated case merges. */
static int decode_request(const uint8_t *data, size_t len, request *q) {
  wire_reader r = {data, data + len};
  q->kind = 0;
  reset_spawn(&q->spawn);
  q->stop_id = 0;
  while (r.p < r.end) {
    uint32_t field, type;
    if (wire_tag(&r, &field, &type) != 0) return -1;
    if ((field == REQ_SPAWN || field == REQ_STOP) && type == WIRE_LEN) {
      const uint8_t *body;
      size_t body_len;
      if (wire_len(&r, &body, &body_len) != 0) return -1;
      if (q->kind != (int)field) {
        reset_spawn(&q->spawn);
        q->stop_id = 0;
        q->kind = (int)field;
      }
      if (field == REQ_SPAWN) {
        if (decode_spawn(body, body_len, &q->spawn) != 0) return -1;
      } else {
        wire_reader s = {body, body + body_len};
        while (s.p < s.end) {
          uint32_t f, t;
          uint64_t v;
          if (wire_tag(&s, &f, &t) != 0) return -1;
          if (f == 1 && t == WIRE_VARINT) {
            if (wire_varint(&s, &v) != 0) return -1;
            q->stop_id = (uint32_t)v;
          } else if (wire_skip(&s, f, t) != 0) {
            return -1;
          }
        }
      }
    } else if (wire_skip(&r, field, type) != 0) {
      return -1;
    }
  }
  return 0;
}

/*
 * Finds the next complete size-delimited frame in buf[*pos, len): 1 and the
 * frame when there is one, 0 when more bytes are needed, -1 when malformed.
 */
static int next_frame(const uint8_t *buf, size_t len, size_t *pos, const uint8_t **frame, size_t *frame_len) {
  wire_reader r = {buf + *pos, buf + len};
  uint64_t n;
  if (wire_varint(&r, &n) != 0) {
    /* incomplete unless ten bytes are there and still no varint */
    return (len - *pos >= 10) ? -1 : 0;
  }
  if (n > MAX_FRAME_BYTES) return -1;
  if (n > (uint64_t)(r.end - r.p)) return 0;
  *frame = r.p;
  *frame_len = (size_t)n;
  *pos = (size_t)(r.p + n - buf);
  return 1;
}

/* ---- encoding events ---- */

static void put_frame(const wire_buf *message) {
  wire_put_varint(&out, message->len);
  memcpy(wire_reserve(&out, message->len), message->data, message->len);
  out.len += message->len;
}

static void send_output(uint32_t id, int stream, const uint8_t *data, size_t len) {
  /* SpawnerEvent { id = 1; output = 2 { stream = 1; data = 2 } }, written in place */
  size_t inner = 1 + wire_varint_size((uint64_t)stream) + 1 + wire_varint_size(len) + len;
  size_t event = (id ? 1 + wire_varint_size(id) : 0) + 1 + wire_varint_size(inner) + inner;
  wire_put_varint(&out, event);
  wire_put_uint(&out, 1, id);
  wire_put_tag(&out, 2, WIRE_LEN);
  wire_put_varint(&out, inner);
  wire_put_uint(&out, 1, (uint64_t)stream);
  wire_put_bytes(&out, 2, data, len);
}

static const char *signal_name(int sig) {
  static const struct {
    int sig;
    const char *name;
  } names[] = {
      {SIGHUP, "SIGHUP"},       {SIGINT, "SIGINT"},       {SIGQUIT, "SIGQUIT"},     {SIGILL, "SIGILL"},
      {SIGTRAP, "SIGTRAP"},     {SIGABRT, "SIGABRT"},     {SIGBUS, "SIGBUS"},       {SIGFPE, "SIGFPE"},
      {SIGKILL, "SIGKILL"},     {SIGUSR1, "SIGUSR1"},     {SIGSEGV, "SIGSEGV"},     {SIGUSR2, "SIGUSR2"},
      {SIGPIPE, "SIGPIPE"},     {SIGALRM, "SIGALRM"},     {SIGTERM, "SIGTERM"},     {SIGCHLD, "SIGCHLD"},
      {SIGCONT, "SIGCONT"},     {SIGSTOP, "SIGSTOP"},     {SIGTSTP, "SIGTSTP"},     {SIGTTIN, "SIGTTIN"},
      {SIGTTOU, "SIGTTOU"},     {SIGURG, "SIGURG"},       {SIGXCPU, "SIGXCPU"},     {SIGXFSZ, "SIGXFSZ"},
      {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"},     {SIGWINCH, "SIGWINCH"},   {SIGIO, "SIGIO"},
      {SIGSYS, "SIGSYS"},
#ifdef SIGSTKFLT
      {SIGSTKFLT, "SIGSTKFLT"},
#endif
#ifdef SIGPWR
      {SIGPWR, "SIGPWR"},
#endif
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].sig == sig) return names[i].name;
  return "";
}

static const char *errno_name(int err) {
  static const struct {
    int err;
    const char *name;
  } names[] = {
      {ENOENT, "ENOENT"}, {EACCES, "EACCES"},   {ENOTDIR, "ENOTDIR"}, {ENOEXEC, "ENOEXEC"},
      {E2BIG, "E2BIG"},   {EAGAIN, "EAGAIN"},   {ENOMEM, "ENOMEM"},   {EMFILE, "EMFILE"},
      {ENFILE, "ENFILE"}, {ELOOP, "ELOOP"},     {EPERM, "EPERM"},     {ETXTBSY, "ETXTBSY"},
      {EISDIR, "EISDIR"}, {EINVAL, "EINVAL"},   {EIO, "EIO"},         {ELIBBAD, "ELIBBAD"},
      {ENXIO, "ENXIO"},   {EFAULT, "EFAULT"},   {ENODEV, "ENODEV"},   {ENAMETOOLONG, "ENAMETOOLONG"},
      {EBUSY, "EBUSY"},   {ENOSPC, "ENOSPC"},   {EROFS, "EROFS"},     {ESRCH, "ESRCH"},
      {ENOSYS, "ENOSYS"}, {ENOTSUP, "ENOTSUP"}, {EBADF, "EBADF"},     {EEXIST, "EEXIST"},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].err == err) return names[i].name;
  return "UNKNOWN";
}

typedef struct {
  uint32_t id;
  int has_pid;
  pid_t pid;
  int has_exit_code;
  int exit_code;
  const char *signal;
  int timed_out, cancelled;
  const char *error_code;
  const char *error_message;
  int64_t started_unix_ms;
  double duration_ms;
  uint64_t dropped;
} exit_event;

static void send_exit(const exit_event *e) {
  static wire_buf exit_msg, event;
  exit_msg.len = 0;
  event.len = 0;
  if (e->has_pid) {
    /* optional: written even when 0 */
    wire_put_tag(&exit_msg, 1, WIRE_VARINT);
    wire_put_varint(&exit_msg, (uint32_t)e->pid);
  }
  if (e->has_exit_code) {
    wire_put_tag(&exit_msg, 2, WIRE_VARINT);
    /* int32: negative values are sign-extended to ten bytes */
    wire_put_varint(&exit_msg, (uint64_t)(int64_t)e->exit_code);
  }
  wire_put_string(&exit_msg, 3, e->signal, strlen(e->signal));
  wire_put_uint(&exit_msg, 4, (uint64_t)e->timed_out);
  wire_put_uint(&exit_msg, 5, (uint64_t)e->cancelled);
  wire_put_string(&exit_msg, 6, e->error_code, strlen(e->error_code));
  wire_put_string(&exit_msg, 7, e->error_message, strlen(e->error_message));
  wire_put_uint(&exit_msg, 8, (uint64_t)e->started_unix_ms);
  wire_put_double(&exit_msg, 9, e->duration_ms);
  wire_put_uint(&exit_msg, 10, e->dropped);
  wire_put_uint(&event, 1, e->id);
  wire_put_message(&event, 3, &exit_msg);
  put_frame(&event);
}

/* Writes out everything queued: one write for all the events of a loop turn. */
static void flush_events(void) {
  size_t done = 0;
  while (done < out.len) {
    ssize_t n = write(STDOUT_FILENO, out.data + done, out.len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      /* a non-blocking stdout: wait for room, as Node's synchronous pipe writes do */
      struct pollfd room = {.fd = STDOUT_FILENO, .events = POLLOUT};
      poll(&room, 1, -1);
      continue;
    }
    /* the sidecar went away: nobody hears about these tasks; stdin EOF ends the helper */
    if (n < 0) break;
    done += (size_t)n;
  }
  out.len = 0;
}

/* ---- the process ledger (process-ledger.ts writes the same files) ---- */

static int read_start_time(pid_t pid, char *buf, size_t size) {
  char path[64], stat[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, stat, sizeof stat - 1);
  close(fd);
  if (n <= 0) return -1;
  stat[n] = '\0';
  char *p = strrchr(stat, ')');
  if (!p) return -1;
  /* after ") " come fields 3..: the start time is field 22, the 20th of them */
  p += 2;
  for (int i = 0; i < 19; i++) {
    p = strchr(p, ' ');
    if (!p) return -1;
    p++;
  }
  size_t len = strcspn(p, " ");
  if (len == 0 || len >= size) return -1;
  memcpy(buf, p, len);
  buf[len] = '\0';
  return 0;
}

#define LEDGER_RECORD_BYTES 32

/* One file of fixed records for this helper, named so that no dead helper's file is reused. */
static void ledger_open(void) {
  for (int attempt = 0; attempt < 100 && ledger_fd < 0; attempt++) {
    snprintf(ledger_path, sizeof ledger_path, "%s/spawner-%d-%lld", ledger_dir, (int)getpid(),
             (long long)(unix_ms() + attempt));
    ledger_fd = open(ledger_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (ledger_fd < 0 && errno != EEXIST) break;
  }
  if (ledger_fd < 0) fprintf(stderr, "taskframe-spawner: cannot write the process ledger %s: %s\n", ledger_path, strerror(errno));
}

static void ledger_write(long slot, const char *text) {
  char record[LEDGER_RECORD_BYTES];
  size_t len = strlen(text);
  memcpy(record, text, len);
  memset(record + len, ' ', LEDGER_RECORD_BYTES - 1 - len);
  record[LEDGER_RECORD_BYTES - 1] = '\n';
  ssize_t written = pwrite(ledger_fd, record, sizeof record, (off_t)slot * LEDGER_RECORD_BYTES);
  (void)written; /* a record not written leaves that group to the sidecar's cleanup, as before */
}

static void ledger_record(proc *p) {
  p->ledger_slot = -1;
  if (ledger_fd < 0) return;
  char start[32], text[LEDGER_RECORD_BYTES];
  if (read_start_time(p->pid, start, sizeof start) != 0) return;
  int len = snprintf(text, sizeof text, "%d %s", (int)p->pid, start);
  if (len < 0 || len >= LEDGER_RECORD_BYTES) return;
  p->ledger_slot = ledger_nfree ? ledger_free[--ledger_nfree] : ledger_next++;
  ledger_write(p->ledger_slot, text);
}

static void ledger_forget(proc *p) {
  if (p->ledger_slot < 0) return;
  ledger_write(p->ledger_slot, "");
  ledger_free = grow(ledger_free, &ledger_free_cap, ledger_nfree + 1, sizeof *ledger_free);
  ledger_free[ledger_nfree++] = p->ledger_slot;
  p->ledger_slot = -1;
}

/* Nothing recorded runs any more: the file goes. */
static void ledger_close(void) {
  if (ledger_fd < 0) return;
  close(ledger_fd);
  if (nprocs == 0) unlink(ledger_path);
}

static void mkdirs(const char *dir) {
  char path[4096];
  size_t len = strlen(dir);
  if (len == 0 || len >= sizeof path) return;
  memcpy(path, dir, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (path[i] == '/' || path[i] == '\0') {
      char c = path[i];
      path[i] = '\0';
      mkdir(path, 0777);
      path[i] = c;
    }
  }
}

/* ---- running processes ---- */

static void signal_group(proc *p, int sig) {
  /* ESRCH: the group is gone; EPERM: what is left changed user. Neither is ours to fix. */
  if (p->pid > 0) killpg(p->pid, sig);
}

static void terminate(proc *p, double now) {
  if (p->exited || p->terminating) return;
  p->terminating = 1;
  signal_group(p, SIGTERM);
  p->grace_at = now + (double)p->kill_grace_ms;
  if (p->grace_at <= now) p->grace_at = now + 0.001;
}

static void close_stream(proc *p, int i) {
  if (p->fds[i] < 0) return;
  /*
   * close() alone would leave the epoll set only once every copy of the pipe
   * is closed, and a child being spawned holds copies until its exec closes
   * them, after this helper already runs again: events would then name a
   * process already freed.
   */
  epoll_ctl(epfd, EPOLL_CTL_DEL, p->fds[i], NULL);
  close(p->fds[i]);
  p->fds[i] = -1;
}

static proc *find_id(uint32_t id) {
  for (size_t i = 0; i < nprocs; i++)
    if (procs[i]->id == id && !procs[i]->finished) return procs[i];
  return NULL;
}

static proc *find_pid(pid_t pid) {
  for (size_t i = 0; i < nprocs; i++)
    if (procs[i]->pid == pid && !procs[i]->exited) return procs[i];
  return NULL;
}

static int has_nul(slice s) { return s.len && memchr(s.data, '\0', s.len) != NULL; }

static char *cstring(slice s) {
  char *c = xmalloc(s.len + 1);
  if (s.len) memcpy(c, s.data, s.len);
  c[s.len] = '\0';
  return c;
}

/*
 * Every signal, glibc's two internal ones (32 and 33) included: sigfillset
 * leaves those out, and posix_spawn would then leave them ignored in the
 * task, where Node's spawn resets every signal to its default.
 */
static void fill_every_signal(sigset_t *set) {
  sigfillset(set);
#ifdef __GLIBC__
  unsigned long *words = (unsigned long *)set;
  for (int sig = 32; sig <= 33 && sig < SIGRTMIN; sig++)
    words[(sig - 1) / (8 * sizeof *words)] |= 1UL << ((sig - 1) % (8 * sizeof *words));
#endif
}

static int is_executable_file(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return -errno;
  if (S_ISDIR(st.st_mode)) return -EACCES;
  if (access(path, X_OK) != 0) return -errno;
  return 0;
}

/*
 * execvp's search, in the task's PATH: the first candidate that is an
 * executable file; else EACCES if one was found but refused, else ENOENT.
 * Relative PATH entries are relative to the task's cwd, as in the child.
 * Returns the path to exec (relative to that cwd) or NULL with *err set.
 */
static char *search_path(const char *command, const char *path_env, const char *cwd, int *err) {
  size_t clen = strlen(command);
  int saw_eacces = 0;
  const char *entry = path_env;
  for (;;) {
    const char *colon = strchr(entry, ':');
    size_t elen = colon ? (size_t)(colon - entry) : strlen(entry);
    /* an empty entry is the current directory */
    char *candidate = xmalloc(elen + clen + 2);
    if (elen) {
      memcpy(candidate, entry, elen);
      candidate[elen] = '/';
      memcpy(candidate + elen + 1, command, clen + 1);
    } else {
      memcpy(candidate, command, clen + 1);
    }
    char *checked = candidate;
    if (candidate[0] != '/' && cwd[0] != '\0') {
      size_t wlen = strlen(cwd);
      checked = xmalloc(wlen + strlen(candidate) + 2);
      memcpy(checked, cwd, wlen);
      checked[wlen] = '/';
      strcpy(checked + wlen + 1, candidate);
    }
    int found = is_executable_file(checked);
    if (checked != candidate) free(checked);
    if (found == 0) return candidate;
    free(candidate);
    if (found == -EACCES) saw_eacces = 1;
    else if (found != -ENOENT && found != -ENOTDIR && found != -ESTALE && found != -ENODEV &&
             found != -ETIMEDOUT && found != -ELOOP && found != -ENAMETOOLONG) {
      *err = -found;
      return NULL;
    }
    if (!colon) break;
    entry = colon + 1;
  }
  *err = saw_eacces ? EACCES : ENOENT;
  return NULL;
}

static void spawn_failed(const spawn_request *s, int64_t started_unix, double started, const char *code,
                         const char *message) {
  exit_event e = {0};
  e.id = s->id;
  e.signal = "";
  e.error_code = code;
  e.error_message = message;
  e.started_unix_ms = started_unix;
  e.duration_ms = now_ms() - started;
  send_exit(&e);
}

/* ---- the fast path: posix_spawn ---- */

/* Starts argv (argv[0] free for "/bin/sh") with posix_spawn; returns 0 or an errno. */
static int spawn_fast(char *command, const char *cwd, char **argv, char **envp, const char *path_env,
                      int out_w, int err_w, pid_t *pid) {
  char **args = argv + 1;
  int err = 0;
  char *file = strchr(command, '/') ? command : search_path(command, path_env ? path_env : DEFAULT_PATH, cwd, &err);
  if (!file) return err;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  sigset_t none, all;
  sigemptyset(&none);
  fill_every_signal(&all);
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, devnull, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_w, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_w, STDERR_FILENO);
  if (cwd[0] != '\0') posix_spawn_file_actions_addchdir_np(&actions, cwd);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  err = posix_spawn(pid, file, &actions, &attr, args, envp);
  if (err == ENOEXEC) {
    /* as execvp: a file without #! is a shell script */
    argv[0] = "/bin/sh";
    args[0] = file;
    err = posix_spawn(pid, "/bin/sh", &actions, &attr, argv, envp);
    args[0] = command;
  }
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (file != command) free(file);
  return err;
}

/* ---- the confined path: fork, confine, exec ---- */

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* The fd a seccomp filter is passed on (bwrap --seccomp 3). */
#define SECCOMP_FD 3

typedef struct {
  char **cgroups;
  size_t ncgroups;
  char *seccomp; /* NULL: none */
  int no_core_dumps;
  int has_uid, has_gid;
  uid_t uid;
  gid_t gid;
  gid_t *groups;
  size_t ngroups;
} confinement;

/* What the confined child was doing when it failed. */
enum {
  STEP_EXEC = 1,
  STEP_CHDIR,
  STEP_SIGNALS,
  STEP_SESSION,
  STEP_STDIO,
  STEP_CGROUP,
  STEP_CORE,
  STEP_SECCOMP,
  STEP_GROUPS,
  STEP_GID,
  STEP_UID,
  STEP_ROOT,
  STEP_FDS,
};

/* Sent by the child on its report pipe when a step fails; nothing is sent when exec succeeds. */
typedef struct {
  int32_t step;
  int32_t err;
  int32_t index; /* which cgroup file */
} child_report;

static int is_confined(const spawn_request *s) {
  return s->ncgroups || s->seccomp_path.len || s->no_core_dumps || s->has_uid || s->has_gid;
}

static __attribute__((noreturn)) void child_failed(int report, int step, int err, int index) {
  child_report r = {step, err, index};
  ssize_t n = write(report, &r, sizeof r);
  (void)n; /* the parent then sees the pipe close without a report: reported as an exit */
  _exit(127);
}

/* Marks every fd from `first` up close-on-exec (the report pipe already is). */
static int close_on_exec_from(int first) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)first, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return 0;
#endif
  /* before Linux 5.11: each open fd, as /proc lists them */
  DIR *dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  struct dirent *entry;
  while ((entry = readdir(dir)) != NULL) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    int fd = atoi(entry->d_name);
    if (fd >= first && fd != dirfd(dir) && fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 && errno != EBADF) {
      int err = errno;
      closedir(dir);
      errno = err;
      return -1;
    }
  }
  closedir(dir);
  return 0;
}

/* The child of a confined spawn: each step in the order spawner.proto gives, then exec. */
static __attribute__((noreturn)) void confined_child(const confinement *c, int report, int out_w, int err_w,
                                                     char *command, const char *cwd, char **argv, char **envp,
                                                     const char *path_env) {
  /* out of the way of fds 0-3 */
  if (report <= SECCOMP_FD) {
    int moved = fcntl(report, F_DUPFD_CLOEXEC, SECCOMP_FD + 1);
    if (moved < 0) child_failed(report, STEP_FDS, errno, 0);
    report = moved;
  }

  /*
   * As posix_spawn's SETSIGDEF (every signal) and SETSIGMASK (none) do: raw
   * system calls, since glibc refuses to touch its own two signals. A zeroed
   * kernel sigaction is SIG_DFL, no flags, an empty mask, whatever the layout.
   */
  uint64_t default_action[8] = {0}, no_signals[4] = {0};
  for (int sig = 1; sig < _NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, default_action, NULL, _NSIG / 8);
  if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, no_signals, NULL, _NSIG / 8) != 0)
    child_failed(report, STEP_SIGNALS, errno, 0);

  if (setsid() < 0) child_failed(report, STEP_SESSION, errno, 0);
  if (dup2(devnull, STDIN_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0 || dup2(err_w, STDERR_FILENO) < 0)
    child_failed(report, STEP_STDIO, errno, 0);

  char pid_line[24];
  int pid_len = snprintf(pid_line, sizeof pid_line, "%d\n", (int)getpid());
  for (size_t i = 0; i < c->ncgroups; i++) {
    int fd = open(c->cgroups[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0) child_failed(report, STEP_CGROUP, errno, (int)i);
    ssize_t n = write(fd, pid_line, (size_t)pid_len);
    if (n != pid_len) child_failed(report, STEP_CGROUP, n < 0 ? errno : EIO, (int)i);
    close(fd);
  }

  if (c->no_core_dumps) {
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0) child_failed(report, STEP_CORE, errno, 0);
  }

  if (c->seccomp) {
    int fd = open(c->seccomp, O_RDONLY | O_CLOEXEC);
    if (fd < 0) child_failed(report, STEP_SECCOMP, errno, 0);
    struct stat st;
    if (fstat(fd, &st) != 0) child_failed(report, STEP_SECCOMP, errno, 0);
    if (!S_ISREG(st.st_mode)) child_failed(report, STEP_SECCOMP, S_ISDIR(st.st_mode) ? EISDIR : EINVAL, 0);
    if (fd == SECCOMP_FD) {
      if (fcntl(fd, F_SETFD, 0) != 0) child_failed(report, STEP_SECCOMP, errno, 0);
    } else {
      /* dup2 leaves the copy open across exec */
      if (dup2(fd, SECCOMP_FD) < 0) child_failed(report, STEP_SECCOMP, errno, 0);
      close(fd);
    }
  }

  if (c->has_uid || c->has_gid) {
    /* never the helper's own groups: the given ones, or none */
    if (setgroups(c->ngroups, c->ngroups ? c->groups : NULL) != 0) child_failed(report, STEP_GROUPS, errno, 0);
    if (c->has_gid && setgid(c->gid) != 0) child_failed(report, STEP_GID, errno, 0);
    if (c->has_uid && setuid(c->uid) != 0) child_failed(report, STEP_UID, errno, 0);
    /* setuid as root sets the real, effective and saved uids: there is no way back */
    if (c->has_uid && c->uid != 0 && setuid(0) == 0) child_failed(report, STEP_ROOT, EPERM, 0);
  }

  if (cwd[0] != '\0' && chdir(cwd) != 0) child_failed(report, STEP_CHDIR, errno, 0);

  /* searched here, as the account the task runs as, from its cwd */
  int err = 0;
  char **args = argv + 1;
  char *file = strchr(command, '/') ? command : search_path(command, path_env ? path_env : DEFAULT_PATH, "", &err);
  if (!file) child_failed(report, STEP_EXEC, err, 0);

  if (close_on_exec_from(c->seccomp ? SECCOMP_FD + 1 : SECCOMP_FD) != 0) child_failed(report, STEP_FDS, errno, 0);

  execve(file, args, envp);
  err = errno;
  if (err == ENOEXEC) {
    /* as execvp: a file without #! is a shell script */
    argv[0] = "/bin/sh";
    args[0] = file;
    execve("/bin/sh", argv, envp);
    err = errno;
  }
  child_failed(report, STEP_EXEC, err, 0);
}

/*
 * The message for a failed step; NULL for exec, and for chdir as the
 * helper's own account, whose bare strerror the sidecar describes (checking
 * the cwd itself: it cannot as another account).
 */
static const char *describe_step(const confinement *c, const char *cwd, const child_report *r) {
  static char message[8192];
  const char *text = strerror(r->err);
  switch (r->step) {
    case STEP_EXEC:
      return NULL;
    case STEP_CHDIR:
      if (c->has_uid)
        snprintf(message, sizeof message, "cannot enter the working directory %s as uid %u: %s", cwd,
                 (unsigned)c->uid, text);
      else if (c->has_gid)
        snprintf(message, sizeof message, "cannot enter the working directory %s as gid %u: %s", cwd,
                 (unsigned)c->gid, text);
      else
        return NULL;
      break;
    case STEP_SIGNALS:
      snprintf(message, sizeof message, "cannot reset the signal mask: %s", text);
      break;
    case STEP_SESSION:
      snprintf(message, sizeof message, "cannot start a session: %s", text);
      break;
    case STEP_STDIO:
      snprintf(message, sizeof message, "cannot set up stdin, stdout and stderr: %s", text);
      break;
    case STEP_CGROUP:
      snprintf(message, sizeof message, "cannot join cgroup %s: %s",
               r->index >= 0 && (size_t)r->index < c->ncgroups ? c->cgroups[r->index] : "?", text);
      break;
    case STEP_CORE:
      snprintf(message, sizeof message, "cannot disable core dumps: %s", text);
      break;
    case STEP_SECCOMP:
      snprintf(message, sizeof message, "cannot open seccomp filter %s: %s", c->seccomp ? c->seccomp : "?", text);
      break;
    case STEP_GROUPS: {
      size_t len = (size_t)snprintf(message, sizeof message, "cannot set the supplementary groups (");
      for (size_t i = 0; i < c->ngroups && len < sizeof message - 64; i++)
        len += (size_t)snprintf(message + len, sizeof message - len, "%s%u", i ? ", " : "", (unsigned)c->groups[i]);
      snprintf(message + len, sizeof message - len, "%s): %s", c->ngroups ? "" : "none", text);
      break;
    }
    case STEP_GID:
      snprintf(message, sizeof message, "cannot switch to gid %u: %s", (unsigned)c->gid, text);
      break;
    case STEP_UID:
      snprintf(message, sizeof message, "cannot switch to uid %u: %s", (unsigned)c->uid, text);
      break;
    case STEP_ROOT:
      snprintf(message, sizeof message, "cannot drop root: uid %u can still switch back to uid 0", (unsigned)c->uid);
      break;
    case STEP_FDS:
      snprintf(message, sizeof message, "cannot close the inherited file descriptors: %s", text);
      break;
    default:
      snprintf(message, sizeof message, "cannot set up the process (step %d): %s", (int)r->step, text);
  }
  return message;
}

/*
 * Forks a confined child and waits until it has exec'd (its report pipe
 * closes) or failed (a report arrives). Returns 0 or an errno; *why is set to
 * a step's message when a confinement step failed.
 */
static int spawn_confined(const spawn_request *s, char *command, const char *cwd, char **argv, char **envp,
                          const char *path_env, int out_w, int err_w, pid_t *pid, const char **why) {
  confinement c = {0};
  c.ncgroups = s->ncgroups;
  c.cgroups = xmalloc(s->ncgroups * sizeof *c.cgroups);
  for (size_t i = 0; i < s->ncgroups; i++) c.cgroups[i] = cstring(s->cgroups[i]);
  c.seccomp = s->seccomp_path.len ? cstring(s->seccomp_path) : NULL;
  c.no_core_dumps = s->no_core_dumps;
  c.has_uid = s->has_uid;
  c.has_gid = s->has_gid;
  c.uid = (uid_t)s->uid;
  c.gid = (gid_t)s->gid;
  c.ngroups = s->ngroups;
  c.groups = xmalloc(s->ngroups * sizeof *c.groups);
  for (size_t i = 0; i < s->ngroups; i++) c.groups[i] = (gid_t)s->groups[i];

  int err = 0;
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    err = errno;
  } else {
    pid_t child = fork();
    if (child == 0) {
      close(report[0]);
      confined_child(&c, report[1], out_w, err_w, command, cwd, argv, envp, path_env);
    }
    if (child < 0) err = errno;
    close(report[1]);
    child_report r;
    size_t got = 0;
    while (child > 0 && got < sizeof r) {
      ssize_t n = read(report[0], (char *)&r + got, sizeof r - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += (size_t)n;
    }
    close(report[0]);
    if (child > 0 && got == 0) {
      *pid = child;
    } else if (child > 0) {
      /* it failed and exits at once: reaped here, never seen by reap() */
      int status;
      while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
      }
      if (got == sizeof r && r.err != 0) {
        err = r.err;
        *why = describe_step(&c, cwd, &r);
      } else {
        err = EIO;
        *why = "cannot set up the process: its report was cut short";
      }
    }
  }

  for (size_t i = 0; i < c.ncgroups; i++) free(c.cgroups[i]);
  free(c.cgroups);
  free(c.seccomp);
  free(c.groups);
  return err;
}

static void start(const spawn_request *s) {
  int64_t started_unix = unix_ms();
  double started = now_ms();
  /* the sidecar sends none of these to this helper (runProcess reports them); refuse them anyway */
  int invalid = s->command.len == 0 || has_nul(s->command) || has_nul(s->cwd) || has_nul(s->seccomp_path);
  for (size_t i = 0; i < s->nargs && !invalid; i++) invalid = has_nul(s->args[i]);
  for (size_t i = 0; i < s->nenv && !invalid; i++)
    invalid = has_nul(s->env[i].key) || has_nul(s->env[i].value);
  for (size_t i = 0; i < s->ncgroups && !invalid; i++) invalid = has_nul(s->cgroups[i]);
  if (invalid) {
    spawn_failed(s, started_unix, started, "ERR_INVALID_ARG_VALUE",
                 "the command is empty, or an argument, the environment, the cwd or a confinement path holds a "
                 "null byte");
    return;
  }

  char *command = cstring(s->command);
  char *cwd = cstring(s->cwd);
  char **argv = xmalloc((s->nargs + 3) * sizeof *argv);
  /* room for "/bin/sh" in front, should the file turn out to be a script without #! */
  char **args = argv + 1;
  args[0] = command;
  for (size_t i = 0; i < s->nargs; i++) args[i + 1] = cstring(s->args[i]);
  args[s->nargs + 1] = NULL;
  char **envp = xmalloc((s->nenv + 1) * sizeof *envp);
  const char *path_env = NULL;
  for (size_t i = 0; i < s->nenv; i++) {
    size_t klen = s->env[i].key.len, vlen = s->env[i].value.len;
    char *kv = xmalloc(klen + vlen + 2);
    if (klen) memcpy(kv, s->env[i].key.data, klen);
    kv[klen] = '=';
    if (vlen) memcpy(kv + klen + 1, s->env[i].value.data, vlen);
    kv[klen + 1 + vlen] = '\0';
    envp[i] = kv;
    if (klen == 4 && memcmp(kv, "PATH", 4) == 0) path_env = kv + 5;
  }
  envp[s->nenv] = NULL;

  int err = 0;
  const char *why = NULL;
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  pid_t pid = -1;
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) err = errno;
  if (!err && is_confined(s))
    err = spawn_confined(s, command, cwd, argv, envp, path_env, out_pipe[1], err_pipe[1], &pid, &why);
  else if (!err)
    err = spawn_fast(command, cwd, argv, envp, path_env, out_pipe[1], err_pipe[1], &pid);
  if (out_pipe[1] >= 0) close(out_pipe[1]);
  if (err_pipe[1] >= 0) close(err_pipe[1]);
  free(command);
  free(cwd);
  for (size_t i = 0; i < s->nargs; i++) free(args[i + 1]);
  free(argv);
  for (size_t i = 0; i < s->nenv; i++) free(envp[i]);
  free(envp);

  if (err) {
    if (out_pipe[0] >= 0) close(out_pipe[0]);
    if (err_pipe[0] >= 0) close(err_pipe[0]);
    spawn_failed(s, started_unix, started, errno_name(err), why ? why : strerror(err));
    return;
  }

  proc *p = xmalloc(sizeof *p);
  memset(p, 0, sizeof *p);
  p->id = s->id;
  p->pid = pid;
  p->fds[0] = out_pipe[0];
  p->fds[1] = err_pipe[0];
  p->limit = s->output_limit_bytes ? s->output_limit_bytes : UINT64_MAX;
  p->kill_grace_ms = s->kill_grace_ms;
  p->started_unix_ms = started_unix;
  p->started_ms = started;
  if (s->timeout_ms) p->timeout_at = started + (double)s->timeout_ms;
  for (int i = 0; i < 2; i++) {
    p->watches[i] = (watch){p, i == 0 ? LOG_STDOUT : LOG_STDERR};
    fcntl(p->fds[i], F_SETFL, O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &p->watches[i]};
    epoll_ctl(epfd, EPOLL_CTL_ADD, p->fds[i], &ev);
  }
  procs = grow(procs, &procs_cap, nprocs + 1, sizeof *procs);
  procs[nprocs++] = p;
  ledger_record(p);
}

static void read_stream(proc *p, int i) {
  static uint8_t buf[READ_BYTES];
  ssize_t n = read(p->fds[i], buf, sizeof buf);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    close_stream(p, i);
    return;
  }
  if (n == 0) {
    close_stream(p, i);
    return;
  }
  uint64_t room = p->limit - p->forwarded;
  size_t kept = (uint64_t)n < room ? (size_t)n : (size_t)room;
  p->forwarded += kept;
  p->dropped += (uint64_t)n - kept;
  if (kept) send_output(p->id, p->watches[i].stream, buf, kept);
}

/* Reaps every ended child; each task's group is killed while its zombie still holds the pid. */
static void reap(double now) {
  for (;;) {
    siginfo_t info;
    info.si_pid = 0;
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
    pid_t pid = info.si_pid;
    proc *p = find_pid(pid);
    /* the main process is gone: nothing of its group may outlive it */
    if (p) killpg(pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!p) continue;
    p->exited = 1;
    p->status = status;
    p->timeout_at = p->grace_at = 0;
    if (p->fds[0] >= 0 || p->fds[1] >= 0) p->drain_at = now + PIPE_DRAIN_MS;
  }
}

static void finish(proc *p) {
  exit_event e = {0};
  e.id = p->id;
  e.has_pid = 1;
  e.pid = p->pid;
  e.signal = "";
  if (WIFEXITED(p->status)) {
    e.has_exit_code = 1;
    e.exit_code = WEXITSTATUS(p->status);
  } else if (WIFSIGNALED(p->status)) {
    e.signal = signal_name(WTERMSIG(p->status));
  }
  e.timed_out = p->timed_out;
  e.cancelled = p->cancelled;
  e.error_code = "";
  e.error_message = "";
  e.started_unix_ms = p->started_unix_ms;
  e.duration_ms = now_ms() - p->started_ms;
  e.dropped = p->dropped;
  send_exit(&e);
  ledger_forget(p);
  p->finished = 1;
}

/* Fires due timers, finishes what is done, frees it; returns the next deadline (0: none). */
static double tend(double now) {
  double next = 0;
  size_t kept = 0;
  for (size_t i = 0; i < nprocs; i++) {
    proc *p = procs[i];
    if (p->timeout_at && now >= p->timeout_at) {
      p->timeout_at = 0;
      if (!p->exited && !p->terminating) {
        p->timed_out = 1;
        terminate(p, now);
      }
    }
    if (p->grace_at && now >= p->grace_at) {
      p->grace_at = 0;
      signal_group(p, SIGKILL);
    }
    if (p->drain_at && now >= p->drain_at) {
      p->drain_at = 0;
      close_stream(p, 0);
      close_stream(p, 1);
    }
    if (p->exited && p->fds[0] < 0 && p->fds[1] < 0) {
      finish(p);
      free(p);
      continue;
    }
    double deadlines[3] = {p->timeout_at, p->grace_at, p->drain_at};
    for (int d = 0; d < 3; d++)
      if (deadlines[d] && (!next || deadlines[d] < next)) next = deadlines[d];
    procs[kept++] = p;
  }
  nprocs = kept;
  return next;
}

static void handle_request(const request *q, double now) {
  if (q->kind == REQ_SPAWN) {
    start(&q->spawn);
  } else if (q->kind == REQ_STOP) {
    proc *p = find_id(q->stop_id);
    if (p && !p->exited && !p->terminating) {
      p->cancelled = 1;
      terminate(p, now);
    }
  }
}

static void fatal_protocol(void) {
  fputs("taskframe-spawner: malformed request frame from the sidecar; stopping every task\n", stderr);
  for (size_t i = 0; i < nprocs; i++) signal_group(procs[i], SIGKILL);
  flush_events();
  _exit(1);
}

/* ---- test mode: decode and re-encode requests ---- */

static void encode_request(const request *q, wire_buf *b) {
  static wire_buf body, entry;
  body.len = 0;
  if (q->kind == REQ_SPAWN) {
    const spawn_request *s = &q->spawn;
    wire_put_uint(&body, 1, s->id);
    wire_put_string(&body, 2, (const char *)s->command.data, s->command.len);
    for (size_t i = 0; i < s->nargs; i++) wire_put_bytes(&body, 3, s->args[i].data, s->args[i].len);
    for (size_t i = 0; i < s->nenv; i++) {
      entry.len = 0;
      wire_put_string(&entry, 1, (const char *)s->env[i].key.data, s->env[i].key.len);
      wire_put_string(&entry, 2, (const char *)s->env[i].value.data, s->env[i].value.len);
      wire_put_message(&body, 4, &entry);
    }
    wire_put_string(&body, 5, (const char *)s->cwd.data, s->cwd.len);
    wire_put_uint(&body, 6, s->timeout_ms);
    wire_put_uint(&body, 7, s->kill_grace_ms);
    wire_put_uint(&body, 8, s->output_limit_bytes);
    for (size_t i = 0; i < s->ncgroups; i++) wire_put_bytes(&body, 9, s->cgroups[i].data, s->cgroups[i].len);
    wire_put_string(&body, 10, (const char *)s->seccomp_path.data, s->seccomp_path.len);
    wire_put_uint(&body, 11, (uint64_t)s->no_core_dumps);
    /* optional: written even when 0 */
    if (s->has_uid) {
      wire_put_tag(&body, 12, WIRE_VARINT);
      wire_put_varint(&body, s->uid);
    }
    if (s->has_gid) {
      wire_put_tag(&body, 13, WIRE_VARINT);
      wire_put_varint(&body, s->gid);
    }
    if (s->ngroups) {
      /* packed, as protobuf-es writes it */
      entry.len = 0;
      for (size_t i = 0; i < s->ngroups; i++) wire_put_varint(&entry, s->groups[i]);
      wire_put_message(&body, 14, &entry);
    }
    wire_put_message(b, REQ_SPAWN, &body);
  } else if (q->kind == REQ_STOP) {
    wire_put_uint(&body, 1, q->stop_id);
    wire_put_message(b, REQ_STOP, &body);
  }
}

static int read_all(int fd, wire_buf *b) {
  for (;;) {
    ssize_t n = read(fd, wire_reserve(b, READ_BYTES), READ_BYTES);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) return 0;
    b->len += (size_t)n;
  }
}

static int echo(void) {
  wire_buf in = {0}, message = {0};
  request q = {0};
  if (read_all(STDIN_FILENO, &in) != 0) return 1;
  size_t pos = 0;
  while (pos < in.len) {
    const uint8_t *frame;
    size_t len;
    int found = next_frame(in.data, in.len, &pos, &frame, &len);
    if (found != 1) return 3;
    if (decode_request(frame, len, &q) != 0) return 3;
    message.len = 0;
    encode_request(&q, &message);
    put_frame(&message);
  }
  flush_events();
  return 0;
}

/* ---- the seccomp filter of confined tasks ---- */

/*
 * libseccomp's stable ABI (seccomp.h of libseccomp 2.x), declared here so
 * that building the helper needs no libseccomp headers: the library is
 * loaded at run time by the one mode that uses it.
 */
typedef void *scmp_filter_ctx;
enum { SCMP_CMP_EQ = 4, SCMP_CMP_MASKED_EQ = 7 };
struct scmp_arg_cmp {
  unsigned int arg; /* argument number, from 0 */
  int op;           /* enum scmp_compare */
  uint64_t datum_a; /* SCMP_CMP_MASKED_EQ: the mask */
  uint64_t datum_b; /* SCMP_CMP_MASKED_EQ: the value, once masked */
};
#define SCMP_ACT_KILL_PROCESS 0x80000000U
#define SCMP_ACT_KILL_THREAD 0x00000000U
#define SCMP_ACT_ERRNO(x) (0x00050000U | ((uint32_t)(x) & 0x0000ffffU))
#define SCMP_ACT_ALLOW 0x7fff0000U
#define SCMP_FLTATR_ACT_BADARCH 2

/*
 * dlopen is in libc from glibc 2.34, in libdl before: weak, so that the
 * helper still builds (without -ldl) on glibc 2.29..2.33, where this mode
 * then reports that it cannot load libseccomp.
 */
#pragma weak dlopen
#pragma weak dlsym

/* Refused with EPERM: what a task has no business doing on a shared host. */
static const char *const denied_syscalls[] = {
    "mount",          "umount2",        "pivot_root",        "setns",           "unshare",
    "keyctl",         "add_key",        "request_key",       "bpf",             "perf_event_open",
    "ptrace",         "process_vm_readv", "process_vm_writev", "kexec_load",    "kexec_file_load",
    "init_module",    "finit_module",   "delete_module",     "open_by_handle_at", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "acct",            "swapon",
    "swapoff",        "reboot",         "syslog",            "quotactl",        "lookup_dcookie",
    "fsopen",         "fsmount",        "move_mount",        "open_tree",       "fsconfig",
    "fspick",         "mount_setattr",
};

/*
 * Compiles the filter given to `bwrap --seccomp 3` for confined tasks and
 * writes it (a BPF program, seccomp_export_bpf) to `path`, mode 0644:
 * everything allowed but the syscalls above (EPERM); clone with
 * CLONE_NEWUSER (EPERM); clone3 (ENOSYS, so that glibc falls back to clone,
 * whose flags the filter can see); ioctl TIOCSTI (EPERM; compared on the low
 * 32 bits, as the kernel reads the command). Syscalls this libseccomp does not
 * know are left out. A syscall of another ABI than the native one (i386 on
 * x86-64, x32) kills the task: libseccomp's default for a filter with the
 * native architecture alone, checked here.
 * Returns the exit status: 0, 1 (failed), 3 (no libseccomp).
 */
static int write_seccomp_filter(const char *path) {
  void *lib = dlopen ? dlopen("libseccomp.so.2", RTLD_NOW | RTLD_LOCAL) : NULL;
  if (!lib) {
    fputs("libseccomp.so.2 not found: install libseccomp2\n", stderr);
    return 3;
  }
  scmp_filter_ctx (*init)(uint32_t) = (scmp_filter_ctx(*)(uint32_t))dlsym(lib, "seccomp_init");
  int (*rule_add)(scmp_filter_ctx, uint32_t, int, unsigned int, ...) =
      (int (*)(scmp_filter_ctx, uint32_t, int, unsigned int, ...))dlsym(lib, "seccomp_rule_add");
  int (*resolve)(const char *) = (int (*)(const char *))dlsym(lib, "seccomp_syscall_resolve_name");
  int (*attr_get)(scmp_filter_ctx, int, uint32_t *) =
      (int (*)(scmp_filter_ctx, int, uint32_t *))dlsym(lib, "seccomp_attr_get");
  int (*export_bpf)(scmp_filter_ctx, int) = (int (*)(scmp_filter_ctx, int))dlsym(lib, "seccomp_export_bpf");
  void (*release)(scmp_filter_ctx) = (void (*)(scmp_filter_ctx))dlsym(lib, "seccomp_release");
  if (!init || !rule_add || !resolve || !attr_get || !export_bpf || !release) {
    fputs("libseccomp.so.2 not found: install libseccomp2 (the library found lacks a function)\n", stderr);
    return 3;
  }

  scmp_filter_ctx ctx = init(SCMP_ACT_ALLOW);
  if (!ctx) {
    fputs("taskframe-spawner: seccomp_init failed\n", stderr);
    return 1;
  }
  int rc = 0;
  const char *failed = NULL;
  uint32_t bad_arch = SCMP_ACT_ALLOW;
  if ((rc = attr_get(ctx, SCMP_FLTATR_ACT_BADARCH, &bad_arch)) < 0) {
    failed = "seccomp_attr_get";
  } else if (bad_arch != SCMP_ACT_KILL_THREAD && bad_arch != SCMP_ACT_KILL_PROCESS) {
    fprintf(stderr, "taskframe-spawner: libseccomp's action for other ABIs is 0x%08x, not a kill\n", bad_arch);
    release(ctx);
    return 1;
  }
  for (size_t i = 0; !failed && i < sizeof denied_syscalls / sizeof denied_syscalls[0]; i++) {
    int nr = resolve(denied_syscalls[i]);
    /* unknown (__NR_SCMP_ERROR), or not a syscall of this architecture (a negative pseudo number) */
    if (nr < 0) continue;
    if ((rc = rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0)) < 0) failed = denied_syscalls[i];
  }
  int nr;
  if (!failed && (nr = resolve("clone")) >= 0) {
    /* the flags are the first argument on the architectures this helper runs on (not s390) */
    struct scmp_arg_cmp new_user = {0, SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER};
    if ((rc = rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1, new_user)) < 0) failed = "clone";
  }
  if (!failed && (nr = resolve("clone3")) >= 0) {
    if ((rc = rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0)) < 0) failed = "clone3";
  }
  if (!failed && (nr = resolve("ioctl")) >= 0) {
    struct scmp_arg_cmp sti = {1, SCMP_CMP_MASKED_EQ, 0xffffffffU, TIOCSTI};
    if ((rc = rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1, sti)) < 0) failed = "ioctl";
  }
  if (failed) {
    fprintf(stderr, "taskframe-spawner: cannot add the seccomp rule for %s: %s\n", failed, strerror(-rc));
    release(ctx);
    return 1;
  }

  /* written aside and renamed: nobody reads half a filter */
  size_t len = strlen(path);
  char *partial = xmalloc(len + 32);
  snprintf(partial, len + 32, "%s.%d.tmp", path, (int)getpid());
  int fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const char *doing = "create";
  int err = 0;
  if (fd < 0) {
    err = errno;
  } else {
    if (fchmod(fd, 0644) != 0) {
      err = errno;
      doing = "chmod";
    } else if ((rc = export_bpf(ctx, fd)) < 0) {
      err = -rc;
      doing = "export";
    } else if (fsync(fd) != 0) {
      err = errno;
      doing = "sync";
    }
    if (close(fd) != 0 && !err) {
      err = errno;
      doing = "close";
    }
    if (!err && rename(partial, path) != 0) {
      err = errno;
      doing = "rename";
    }
    if (err) unlink(partial);
  }
  release(ctx);
  if (err) {
    fprintf(stderr, "taskframe-spawner: cannot write the seccomp filter %s (%s): %s\n", path, doing, strerror(err));
    free(partial);
    return 1;
  }
  free(partial);
  return 0;
}

/* ---- the helper ---- */

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--echo") == 0) return echo();
  if (argc == 3 && strcmp(argv[1], "--write-seccomp-filter") == 0) return write_seccomp_filter(argv[2]);
  if (argc != 1) {
    fputs("usage: taskframe-spawner [--echo | --write-seccomp-filter PATH]\n", stderr);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (sigfd < 0 || epfd < 0 || devnull < 0) {
    perror("taskframe-spawner");
    return 1;
  }
  ledger_dir = getenv("TASKFRAME_SPAWNER_LEDGER");
  if (ledger_dir && *ledger_dir) {
    mkdirs(ledger_dir);
    ledger_open();
  }
  fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &stdin_watch};
  epoll_ctl(epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev);
  ev.data.ptr = &sigchld_watch;
  epoll_ctl(epfd, EPOLL_CTL_ADD, sigfd, &ev);

  wire_buf in = {0};
  request q = {0};
  int stdin_open = 1;
  double closed_deadline = 0, next = 0;
  struct epoll_event events[64];
  for (;;) {
    double now = now_ms();
    double deadline = next;
    if (!stdin_open && (!deadline || closed_deadline < deadline)) deadline = closed_deadline;
    int timeout = !deadline ? -1 : deadline <= now ? 0 : (int)(deadline - now) + 1;
    int n = epoll_wait(epfd, events, 64, timeout);
    if (n < 0 && errno != EINTR) {
      perror("taskframe-spawner: epoll_wait");
      return 1;
    }
    now = now_ms();
    int reaped = 0;
    for (int i = 0; i < n; i++) {
      watch *w = events[i].data.ptr;
      if (w == &stdin_watch) {
        ssize_t got;
        while ((got = read(STDIN_FILENO, wire_reserve(&in, READ_BYTES), READ_BYTES)) > 0) in.len += (size_t)got;
        int read_error = got < 0 ? errno : 0;
        size_t pos = 0;
        const uint8_t *frame;
        size_t len;
        int found;
        while ((found = next_frame(in.data, in.len, &pos, &frame, &len)) == 1) {
          if (decode_request(frame, len, &q) != 0) fatal_protocol();
          handle_request(&q, now);
        }
        if (found < 0) fatal_protocol();
        memmove(in.data, in.data + pos, in.len - pos);
        in.len -= pos;
        if (got == 0 || (read_error != 0 && read_error != EAGAIN && read_error != EINTR)) {
          /* the sidecar is gone, and nobody would hear about these tasks */
          stdin_open = 0;
          epoll_ctl(epfd, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
          closed_deadline = now + STDIN_CLOSED_WAIT_MS;
          for (size_t j = 0; j < nprocs; j++) {
            if (!procs[j]->exited && !procs[j]->terminating) {
              procs[j]->cancelled = 1;
              terminate(procs[j], now);
            }
          }
        }
      } else if (w == &sigchld_watch) {
        struct signalfd_siginfo info;
        while (read(sigfd, &info, sizeof info) > 0) {
        }
        reaped = 1;
      } else if (w->proc->fds[w->stream - 1] >= 0) {
        read_stream(w->proc, w->stream - 1);
      }
    }
    if (reaped) reap(now);
    next = tend(now);
    flush_events();
    if (!stdin_open && (nprocs == 0 || now_ms() >= closed_deadline)) {
      ledger_close();
      return 0;
    }
  }
}
