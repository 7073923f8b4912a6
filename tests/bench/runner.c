/* Run a command N times and report its cost per run, measured without a
 * shell in between: wall time (fork to reap) and CPU time (user + system
 * of the command and everything it waited for, from wait4), and the peak
 * RSS of the largest run. Used by tests/bench/floor.sh.
 *
 *   runner N [-f INPUT | -p INPUT] [-o OUTPUT] -- COMMAND [ARGS...]
 *   -f INPUT: stdin is INPUT (a regular file, rewound for every run)
 *   -p INPUT: stdin is a pipe fed with INPUT by a separate process (whose
 *             CPU time is not counted; its wall time is, for every peer)
 *   -o OUTPUT: stdout goes to OUTPUT (created or truncated)
 * Prints: wall_us cpu_us maxrss_kib (the first two are means per run).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void feed(const char *path, int out) {
    static char buf[1 << 17];
    int in = open(path, O_RDONLY);
    ssize_t n;
    if (in < 0) _exit(1);
    while ((n = read(in, buf, sizeof buf)) > 0)
        for (ssize_t o = 0; o < n;) {
            ssize_t w = write(out, buf + o, n - o);
            if (w <= 0) _exit(0); /* the reader stopped reading */
            o += w;
        }
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    int n = atoi(argv[1]), a = 2;
    const char *file = NULL, *piped = NULL, *out = NULL;
    for (; a < argc && strcmp(argv[a], "--"); a++) {
        if (!strcmp(argv[a], "-f")) file = argv[++a];
        else if (!strcmp(argv[a], "-p")) piped = argv[++a];
        else if (!strcmp(argv[a], "-o")) out = argv[++a];
    }
    char **cmd = argv + a + 1;
    double wall = 0, cpu = 0;
    long rss = 0;
    for (int i = 0; i < n; i++) {
        int p[2] = {-1, -1}, in = -1;
        pid_t feeder = -1;
        if (piped) {
            if (pipe(p) < 0) return 1;
        } else if (file && (in = open(file, O_RDONLY)) < 0) {
            perror(file);
            return 1;
        }
        double t0 = now_us();
        if (piped && (feeder = fork()) == 0) {
            close(p[0]);
            feed(piped, p[1]);
        }
        pid_t pid = fork();
        if (pid == 0) {
            if (piped) dup2(p[0], 0), close(p[0]), close(p[1]);
            else if (in >= 0) dup2(in, 0), close(in);
            if (out) {
                int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (o < 0) _exit(126);
                dup2(o, 1), close(o);
            }
            execvp(cmd[0], cmd);
            _exit(127);
        }
        if (piped) close(p[0]), close(p[1]);
        if (in >= 0) close(in);
        int st;
        struct rusage ru;
        if (wait4(pid, &st, 0, &ru) < 0) return 1;
        if (feeder > 0) waitpid(feeder, NULL, 0);
        wall += now_us() - t0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "runner: %s failed (status %d)\n", cmd[0], st);
            return 1;
        }
        cpu += ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec +
               ru.ru_stime.tv_sec * 1e6 + ru.ru_stime.tv_usec;
        if (ru.ru_maxrss > rss) rss = ru.ru_maxrss;
    }
    printf("%.1f %.1f %ld\n", wall / n, cpu / n, rss);
    return 0;
}
