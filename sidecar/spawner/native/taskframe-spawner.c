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
 * Spawn errors are reported as errno names (ENOENT...) with strerror text;
 * the sidecar turns them into the messages runProcess gives.
 *
 * Linux with glibc >= 2.29 (posix_spawn_file_actions_addchdir_np). Built at
 * install by build.mjs; without it the sidecar uses spawner-process.ts.
 *
 *   taskframe-spawner            the helper
 *   taskframe-spawner --echo     test mode: decodes SpawnerRequest frames and
 *                                writes each back, re-encoded
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
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

/* Decodes (merges) a SpawnProcess into `s`: scalars replace, args append, env keys replace. */
static int decode_spawn(const uint8_t *data, size_t len, spawn_request *s) {
  wire_reader r = {data, data + len};
  while (r.p < r.end) {
    uint32_t field, type;
    uint64_t v;
    if (wire_tag(&r, &field, &type) != 0) return -1;
    if (type == WIRE_VARINT && (field == 1 || (field >= 6 && field <= 8))) {
      if (wire_varint(&r, &v) != 0) return -1;
      if (field == 1) s->id = (uint32_t)v;
      else if (field == 6) s->timeout_ms = v;
      else if (field == 7) s->kill_grace_ms = v;
      else s->output_limit_bytes = v;
    } else if (type == WIRE_LEN && field >= 2 && field <= 5) {
      slice value;
      if (wire_len(&r, &value.data, &value.len) != 0) return -1;
      if (field == 2) {
        s->command = value;
      } else if (field == 5) {
        s->cwd = value;
      } else if (field == 3) {
        s->args = grow(s->args, &s->args_cap, s->nargs + 1, sizeof *s->args);
        s->args[s->nargs++] = value;
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
  slice *args = s->args;
  env_entry *env = s->env;
  size_t args_cap = s->args_cap, env_cap = s->env_cap;
  memset(s, 0, sizeof *s);
  s->args = args;
  s->args_cap = args_cap;
  s->env = env;
  s->env_cap = env_cap;
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

static void start(const spawn_request *s) {
  int64_t started_unix = unix_ms();
  double started = now_ms();
  /* the sidecar sends none of these to this helper (runProcess reports them); refuse them anyway */
  int invalid = s->command.len == 0 || has_nul(s->command) || has_nul(s->cwd);
  for (size_t i = 0; i < s->nargs && !invalid; i++) invalid = has_nul(s->args[i]);
  for (size_t i = 0; i < s->nenv && !invalid; i++)
    invalid = has_nul(s->env[i].key) || has_nul(s->env[i].value);
  if (invalid) {
    spawn_failed(s, started_unix, started, "ERR_INVALID_ARG_VALUE",
                 "the command is empty, or an argument, the environment or the cwd holds a null byte");
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
  char *file = strchr(command, '/') ? command : search_path(command, path_env ? path_env : DEFAULT_PATH, cwd, &err);
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  pid_t pid = -1;
  if (file) {
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) err = errno;
  }
  if (file && !err) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    sigset_t none, all;
    sigemptyset(&none);
    fill_every_signal(&all);
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, devnull, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
    if (cwd[0] != '\0') posix_spawn_file_actions_addchdir_np(&actions, cwd);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    err = posix_spawn(&pid, file, &actions, &attr, args, envp);
    if (err == ENOEXEC) {
      /* as execvp: a file without #! is a shell script */
      argv[0] = "/bin/sh";
      args[0] = file;
      err = posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, envp);
      args[0] = command;
    }
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
  }
  if (out_pipe[1] >= 0) close(out_pipe[1]);
  if (err_pipe[1] >= 0) close(err_pipe[1]);
  if (file != command) free(file);
  free(command);
  free(cwd);
  for (size_t i = 0; i < s->nargs; i++) free(args[i + 1]);
  free(argv);
  for (size_t i = 0; i < s->nenv; i++) free(envp[i]);
  free(envp);

  if (err) {
    if (out_pipe[0] >= 0) close(out_pipe[0]);
    if (err_pipe[0] >= 0) close(err_pipe[0]);
    spawn_failed(s, started_unix, started, errno_name(err), strerror(err));
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

/* ---- the helper ---- */

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--echo") == 0) return echo();
  if (argc != 1) {
    fputs("usage: taskframe-spawner [--echo]\n", stderr);
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
