/* proc.c: daemons, pid files and port probes (see proc.h). */
#include "proc.h"

#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How often stop() and wait_port() look again. */
#define POLL_INTERVAL 0.02
#define PORT_RETRY_INTERVAL 0.1
/* One connect attempt never waits longer than this, so a black-holed
 * address cannot use up the whole budget of the others. */
#define CONNECT_ATTEMPT_MAX 1.0

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_for(double seconds)
{
    if (seconds <= 0)
        return;
    time_t whole = (time_t)seconds;
    struct timespec ts = {whole, (long)((seconds - (double)whole) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Keeps fd away from 0-2 (close-on-exec), so the dup2 calls in the child
 * never overwrite one of its own sources. */
static int lift_fd(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return nfd;
}

/* ---- start_daemon ------------------------------------------------------ */

/* Messages on the report pipe: the intermediate child sends the daemon's
 * pid, the daemon sends a failure before it would exec. Success is EOF. */
enum { REPORT_PID, REPORT_SETSID, REPORT_FORK, REPORT_DUP, REPORT_CHDIR, REPORT_EXEC };

typedef struct report_msg {
    int kind;
    int value; /* pid or errno */
} report_msg;

static void report(int fd, int kind, int value)
{
    report_msg m = {kind, value};
    while (write(fd, &m, sizeof m) < 0 && errno == EINTR)
        ;
}

/* The daemon itself, after the second fork: async-signal-safe calls only. */
static void daemon_exec(const jj_daemon_opts *o, int null_fd, int log_fd, int rep)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++) {
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL); /* ignored signals would be inherited across exec */
    }
    if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0) {
        report(rep, REPORT_DUP, errno);
        _exit(127);
    }
    if (chdir(o->cwd ? o->cwd : "/") != 0) {
        report(rep, REPORT_CHDIR, errno);
        _exit(127);
    }
    umask(077);
    /* Descriptors opened without O_CLOEXEC (Lua's io.open, sockets) must not
     * leak into a process that may live for months; the report pipe goes at
     * exec too, which is how the parent learns of success. */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    if (o->envp)
        execvpe(o->argv[0], (char *const *)o->argv, (char *const *)o->envp);
    else
        execvp(o->argv[0], (char *const *)o->argv);
    report(rep, REPORT_EXEC, errno);
    _exit(127);
}

/* Reads one message; 1 when one came, 0 at EOF. */
static int read_report(int fd, report_msg *m)
{
    size_t got = 0;
    while (got < sizeof *m) {
        ssize_t n = read(fd, (char *)m + got, sizeof *m - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        got += (size_t)n;
    }
    return 1;
}

static int report_error(const jj_daemon_opts *o, const report_msg *m, jj_error *err)
{
    const char *prog = o->argv[0];
    switch (m->kind) {
    case REPORT_SETSID: return jj_error_errno(err, m->value, "start daemon %s: setsid", prog);
    case REPORT_FORK: return jj_error_errno(err, m->value, "start daemon %s: fork", prog);
    case REPORT_DUP: return jj_error_errno(err, m->value, "start daemon %s: dup2", prog);
    case REPORT_CHDIR:
        return jj_error_errno(err, m->value, "start daemon %s: chdir %s", prog,
                              o->cwd ? o->cwd : "/");
    default: return jj_error_errno(err, m->value, "start daemon %s", prog);
    }
}

static int write_pid_file(const char *path, pid_t pid, jj_error *err)
{
    char text[32];
    int n = snprintf(text, sizeof text, "%ld\n", (long)pid);
    int rc = jj_fs_write_atomic(path, text, (size_t)n, 0600, err);
    if (rc)
        jj_error_prefix(err, "write pid file");
    return rc;
}

int jj_proc_start_daemon(const jj_daemon_opts *o, pid_t *pid, jj_error *err)
{
    if (!o || !o->argv || !o->argv[0] || !o->argv[0][0])
        return jj_error_set(err, JJ_EINVAL, "start daemon: empty argv");
    int null_fd = -1, log_fd = -1, rep[2] = {-1, -1}, rc = 0;
    null_fd = lift_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (null_fd < 0)
        return jj_error_errno(err, errno, "start daemon %s: open /dev/null", o->argv[0]);
    if (o->log_file) {
        log_fd = lift_fd(open(o->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
        if (log_fd < 0) {
            rc = jj_error_errno(err, errno, "start daemon %s: open log %s", o->argv[0],
                                o->log_file);
            goto out;
        }
    }
    if (pipe2(rep, O_CLOEXEC) != 0 || (rep[0] = lift_fd(rep[0])) < 0 ||
        (rep[1] = lift_fd(rep[1])) < 0) {
        rc = jj_error_errno(err, errno, "start daemon %s: pipe", o->argv[0]);
        goto out;
    }
    pid_t first = fork();
    if (first < 0) {
        rc = jj_error_errno(err, errno, "start daemon %s: fork", o->argv[0]);
        goto out;
    }
    if (first == 0) {
        close(rep[0]);
        if (setsid() < 0) {
            report(rep[1], REPORT_SETSID, errno);
            _exit(1);
        }
        pid_t second = fork();
        if (second < 0) {
            report(rep[1], REPORT_FORK, errno);
            _exit(1);
        }
        if (second == 0)
            daemon_exec(o, null_fd, log_fd >= 0 ? log_fd : null_fd, rep[1]);
        report(rep[1], REPORT_PID, (int)second);
        _exit(0);
    }
    close_fd(&rep[1]);
    int st;
    while (waitpid(first, &st, 0) < 0 && errno == EINTR)
        ;
    report_msg m;
    if (!read_report(rep[0], &m)) {
        rc = jj_error_set(err, JJ_EPROC, "start daemon %s: intermediate process died", o->argv[0]);
        goto out;
    }
    if (m.kind != REPORT_PID) {
        rc = report_error(o, &m, err);
        goto out;
    }
    pid_t daemon_pid = (pid_t)m.value;
    if (read_report(rep[0], &m)) { /* the daemon failed before exec and has exited */
        rc = report_error(o, &m, err);
        goto out;
    }
    if (o->pid_file && (rc = write_pid_file(o->pid_file, daemon_pid, err)) != 0) {
        /* An unrecorded daemon could never be found and stopped again. */
        kill(daemon_pid, SIGKILL);
        goto out;
    }
    *pid = daemon_pid;
out:
    close_fd(&null_fd);
    close_fd(&log_fd);
    close_fd(&rep[0]);
    close_fd(&rep[1]);
    return rc;
}

/* ---- pid files and liveness --------------------------------------------- */

int jj_proc_read_pid(const char *pid_file, pid_t *pid, jj_error *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = jj_fs_read_file(pid_file, &text, &len, err);
    if (rc)
        return rc;
    size_t i = 0;
    long long v = 0;
    while (i < len && text[i] >= '0' && text[i] <= '9' && v <= INT_MAX)
        v = v * 10 + (text[i++] - '0');
    size_t digits = i;
    if (i < len && text[i] == '\n')
        i++;
    free(text);
    if (digits == 0 || i != len || v <= 0 || v > INT_MAX)
        return jj_error_set(err, JJ_ECORRUPT, "%s: not a pid file", pid_file);
    *pid = (pid_t)v;
    return 0;
}

/* The state letter of /proc/<pid>/stat ('R', 'S', 'Z' ...), or 0. */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* "pid (comm) S ...": comm may itself hold ") ", so take the last one. */
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

int jj_proc_alive(pid_t pid)
{
    if (pid <= 0)
        return 0;
    if (kill(pid, 0) != 0 && errno != EPERM)
        return 0;
    char s = proc_state(pid);
    return s != 'Z' && s != 'X';
}

/* Waits until pid is gone or the deadline passes; reaps it if it happens
 * to be our own child (otherwise it would stay a zombie). */
static int wait_gone(pid_t pid, double deadline)
{
    for (;;) {
        while (waitpid(pid, NULL, WNOHANG) < 0 && errno == EINTR)
            ;
        if (!jj_proc_alive(pid))
            return 1;
        double left = deadline - now();
        if (left <= 0)
            return 0;
        pause_for(left < POLL_INTERVAL ? left : POLL_INTERVAL);
    }
}

int jj_proc_stop(pid_t pid, const char *pid_file, double timeout, jj_error *err)
{
    if (!(timeout >= 0) || timeout > 1e6)
        return jj_error_set(err, JJ_EINVAL, "stop: bad timeout %g", timeout);
    if (pid <= 0) {
        if (!pid_file)
            return jj_error_set(err, JJ_EINVAL, "stop: neither a pid nor a pid file");
        jj_error e2;
        int rc = jj_proc_read_pid(pid_file, &pid, &e2);
        if (rc == JJ_ENOENT)
            return 0;
        if (rc) {
            *err = e2;
            return rc;
        }
    }
    if (jj_proc_alive(pid)) {
        if (kill(pid, SIGTERM) != 0 && errno != ESRCH)
            return jj_error_errno(err, errno, "stop %ld: SIGTERM", (long)pid);
        if (!wait_gone(pid, now() + timeout)) {
            if (kill(pid, SIGKILL) != 0 && errno != ESRCH)
                return jj_error_errno(err, errno, "stop %ld: SIGKILL", (long)pid);
            if (!wait_gone(pid, now() + JJ_PROC_KILL_GRACE))
                return jj_error_set(err, JJ_ETIMEOUT,
                                    "stop %ld: still running %g s after SIGKILL", (long)pid,
                                    JJ_PROC_KILL_GRACE);
        }
    }
    if (pid_file) {
        jj_error e2;
        int rc = jj_fs_remove(pid_file, &e2);
        if (rc && rc != JJ_ENOENT) {
            *err = e2;
            return rc;
        }
    }
    return 0;
}

/* ---- wait_port ------------------------------------------------------------ */

/* One non-blocking connect bounded by seconds; 1 when it was accepted. */
static int try_connect(const struct addrinfo *ai, double seconds)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0)
        return 0;
    int ok = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        ok = 1;
    } else if (errno == EINPROGRESS) {
        struct pollfd p = {fd, POLLOUT, 0};
        int ms = (int)(seconds * 1000.0);
        int r;
        do
            r = poll(&p, 1, ms < 1 ? 1 : ms);
        while (r < 0 && errno == EINTR);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
            ok = 1;
    }
    close(fd);
    return ok;
}

int jj_proc_wait_port(const char *host, int port, double timeout, jj_error *err)
{
    if (!host || !*host)
        return jj_error_set(err, JJ_EINVAL, "wait_port: empty host");
    if (port < 1 || port > 65535)
        return jj_error_set(err, JJ_EINVAL, "wait_port: bad port %d", port);
    if (!(timeout >= 0) || timeout > 1e6)
        return jj_error_set(err, JJ_EINVAL, "wait_port: bad timeout %g", timeout);
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo *list = NULL;
    int g = getaddrinfo(host, service, &hints, &list);
    if (g != 0)
        return jj_error_set_lib(err, JJ_ENOENT, g, "wait_port: cannot resolve %s: %s", host,
                                gai_strerror(g));
    double deadline = now() + timeout;
    int ok = 0;
    for (;;) {
        for (const struct addrinfo *ai = list; ai && !ok; ai = ai->ai_next) {
            double left = deadline - now();
            ok = try_connect(ai, left > CONNECT_ATTEMPT_MAX ? CONNECT_ATTEMPT_MAX : left);
        }
        double left = deadline - now();
        if (ok || left <= 0)
            break;
        pause_for(left < PORT_RETRY_INTERVAL ? left : PORT_RETRY_INTERVAL);
    }
    freeaddrinfo(list);
    if (!ok)
        return jj_error_set(err, JJ_ETIMEOUT, "nothing accepted connections on %s:%d within %g s",
                            host, port, timeout);
    return 0;
}
