/* The physical floor of a durable, locked replace: what any tool must do
 * (open FILE.lock and flock it, write a temp file beside FILE, fsync it,
 * rename it over FILE, fsync the directory, unlink the lock file) and
 * nothing else: no checks, no messages, no cleanup on errors. A benchmark
 * peer for tests/bench/floor.sh, not part of awrite.
 *
 *   floor [-n] FILE          stdin -> FILE (read and written as it arrives)
 *   floor -i INPUT FILE      INPUT -> FILE with copy_file_range
 *   -n: no lock (the lock-free floor)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static char buf[1 << 17];

static int die(const char *what) { perror(what); return 1; }

int main(int argc, char **argv) {
    int lock = 1, in = 0, opt;
    while ((opt = getopt(argc, argv, "ni:")) != -1) {
        if (opt == 'n') lock = 0;
        else if ((in = open(optarg, O_RDONLY | O_CLOEXEC)) < 0) return die(optarg);
    }
    if (optind != argc - 1) return 2;
    const char *file = argv[optind];
    char lk[4096], tmp[4096], d[4096];
    snprintf(lk, sizeof lk, "%s.lock", file);
    snprintf(tmp, sizeof tmp, "%s.floor-tmp", file);
    snprintf(d, sizeof d, "%s", file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return die(tmp);
    if (in > 0) {
        ssize_t n;
        while ((n = copy_file_range(in, NULL, fd, NULL, 1 << 30, 0)) > 0) {}
        if (n < 0) return die("copy_file_range");
    } else {
        ssize_t n;
        while ((n = read(0, buf, sizeof buf)) > 0)
            if (write(fd, buf, n) != n) return die("write");
        if (n < 0) return die("read");
    }
    if (fsync(fd) < 0) return die("fsync");
    int l = -1;
    if (lock) {
        if ((l = open(lk, O_RDONLY | O_CREAT | O_CLOEXEC, 0644)) < 0) return die(lk);
        if (flock(l, LOCK_EX) < 0) return die("flock");
    }
    if (rename(tmp, file) < 0) return die("rename");
    int dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0) return die("fsync dir");
    if (lock) {
        unlink(lk);
        close(l);
    }
    return close(fd) < 0;
}
