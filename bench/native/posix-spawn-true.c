/*
 * The exec bench's floor: runs /bin/true COUNT times with posix_spawn,
 * keeping PARALLEL processes in flight (waitpid for any, then start the
 * next). Prints nothing; exits 0 when every run exited 0, 1 otherwise,
 * 2 on bad arguments.
 *
 *   posix-spawn-true COUNT PARALLEL
 */
#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

static long positive(const char *text) {
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  return (errno != 0 || *end != '\0' || value < 1) ? -1 : value;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  long count = positive(argv[1]);
  long parallel = positive(argv[2]);
  if (count < 0 || parallel < 0) return 2;
  char *child_argv[] = {"true", NULL};
  long started = 0, running = 0;
  int failed = 0;
  while (started < count || running > 0) {
    while (running < parallel && started < count) {
      pid_t pid;
      if (posix_spawn(&pid, "/bin/true", NULL, NULL, child_argv, environ) != 0) return 1;
      started++;
      running++;
    }
    int status;
    pid_t done = waitpid(-1, &status, 0);
    if (done < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    running--;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
  }
  return failed;
}
