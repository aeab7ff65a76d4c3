/* test_proc.c: daemons, pid files, stop escalation and port probes. */
#include "check.h"
#include "fs.h"
#include "proc.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void path_in(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static char *slurp(const char *path)
{
    char *text = NULL;
    size_t len;
    jj_error err;
    if (jj_fs_read_file(path, &text, &len, &err) != 0)
        return NULL;
    return text;
}

/* Waits (bounded) until path holds needle. */
static int wait_for_text(const char *path, const char *needle)
{
    double end = now() + 10;
    while (now() < end) {
        char *t = slurp(path);
        int found = t && strstr(t, needle);
        free(t);
        if (found)
            return 1;
        usleep(20000);
    }
    return 0;
}

static int mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static long parent_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    char state;
    long ppid;
    return p && sscanf(p + 2, "%c %ld", &state, &ppid) == 2 ? ppid : -1;
}

static void test_daemon_lifecycle(void)
{
    char log[300], pidf[300];
    path_in(log, sizeof log, "d1.log");
    path_in(pidf, sizeof pidf, "d1.pid");
    /* A descriptor opened without O_CLOEXEC must not reach the daemon. */
    int leaky = open("/dev/null", O_RDONLY);
    CHECK(leaky >= 3);
    char script[256];
    snprintf(script, sizeof script,
             "echo start; echo \"FOO=$FOO\"; pwd; read x; echo \"read=$?\"; "
             "if [ -e /proc/$$/fd/%d ]; then echo leaked; else echo sealed; fi; exec sleep 30",
             leaky);
    const char *argv[] = {"sh", "-c", script, NULL};
    const char *envp[] = {"FOO=bar", "PATH=/usr/bin:/bin", NULL};
    jj_daemon_opts o = {argv, envp, dir, log, pidf};
    pid_t pid = 0;
    jj_error err;
    CHECK_INT(jj_proc_start_daemon(&o, &pid, &err), 0);
    close(leaky);
    CHECK(pid > 0);
    CHECK(jj_proc_alive(pid));
    CHECK(wait_for_text(log, "sealed") || wait_for_text(log, "leaked"));
    char *text = slurp(log);
    CHECK(text != NULL);
    if (text) {
        CHECK(strstr(text, "start\nFOO=bar\n") != NULL);
        CHECK(strstr(text, dir) != NULL);       /* cwd */
        CHECK(strstr(text, "read=1") != NULL);  /* stdin is /dev/null: EOF */
        CHECK(strstr(text, "sealed") != NULL);
        CHECK(strstr(text, "leaked") == NULL);
    }
    free(text);
    CHECK_INT(mode_of(log), 0600);
    CHECK_INT(mode_of(pidf), 0600);
    pid_t from_file = 0;
    CHECK_INT(jj_proc_read_pid(pidf, &from_file, &err), 0);
    CHECK_INT(from_file, pid);
    /* Detached: another session, and not our child. */
    CHECK(getsid(pid) != getsid(0));
    CHECK(getsid(pid) != pid); /* not a session leader: cannot regain a terminal */
    CHECK(parent_of(pid) != (long)getpid());

    CHECK_INT(jj_proc_stop(0, pidf, 5, &err), 0);
    CHECK(!jj_proc_alive(pid));
    CHECK(!jj_fs_exists(pidf));
    /* Stopping again: nothing to do. */
    CHECK_INT(jj_proc_stop(0, pidf, 5, &err), 0);
}

static void test_stop_escalates_to_sigkill(void)
{
    char pidf[300];
    path_in(pidf, sizeof pidf, "stubborn.pid");
    /* An ignored SIGTERM survives exec, so sleep itself ignores it. */
    const char *argv[] = {"sh", "-c", "trap '' TERM; exec sleep 30", NULL};
    jj_daemon_opts o = {argv, NULL, NULL, NULL, pidf};
    pid_t pid = 0;
    jj_error err;
    CHECK_INT(jj_proc_start_daemon(&o, &pid, &err), 0);
    usleep(100000); /* let the trap be installed before the exec */
    double t0 = now();
    CHECK_INT(jj_proc_stop(pid, pidf, 0.3, &err), 0);
    double took = now() - t0;
    CHECK(took >= 0.3);
    CHECK(took < 5);
    CHECK(!jj_proc_alive(pid));
    CHECK(!jj_fs_exists(pidf));
}

static void test_start_failures(void)
{
    char pidf[300], log[300];
    path_in(pidf, sizeof pidf, "fail.pid");
    jj_error err;
    pid_t pid = 0;
    const char *missing[] = {"/nonexistent/mongod", NULL};
    jj_daemon_opts o = {missing, NULL, NULL, NULL, pidf};
    CHECK_INT(jj_proc_start_daemon(&o, &pid, &err), JJ_ENOENT);
    CHECK(strstr(err.message, "/nonexistent/mongod") != NULL);
    CHECK(!jj_fs_exists(pidf));

    const char *ok[] = {"true", NULL};
    jj_daemon_opts bad_cwd = {ok, NULL, "/nonexistent-dir", NULL, pidf};
    CHECK_INT(jj_proc_start_daemon(&bad_cwd, &pid, &err), JJ_ENOENT);
    CHECK(strstr(err.message, "chdir") != NULL);
    CHECK(!jj_fs_exists(pidf));

    path_in(log, sizeof log, "no/such/dir/x.log");
    jj_daemon_opts bad_log = {ok, NULL, NULL, log, pidf};
    CHECK_INT(jj_proc_start_daemon(&bad_log, &pid, &err), JJ_ENOENT);

    const char *empty[] = {NULL};
    jj_daemon_opts none = {empty, NULL, NULL, NULL, NULL};
    CHECK_INT(jj_proc_start_daemon(&none, &pid, &err), JJ_EINVAL);
}

static void write_file(const char *path, const char *text)
{
    jj_error err;
    CHECK_INT(jj_fs_write_atomic(path, text, strlen(text), 0600, &err), 0);
}

static void test_read_pid(void)
{
    char p[300];
    path_in(p, sizeof p, "x.pid");
    jj_error err;
    pid_t pid = 0;
    CHECK_INT(jj_proc_read_pid(p, &pid, &err), JJ_ENOENT);
    write_file(p, "1234\n");
    CHECK_INT(jj_proc_read_pid(p, &pid, &err), 0);
    CHECK_INT(pid, 1234);
    write_file(p, "77");
    CHECK_INT(jj_proc_read_pid(p, &pid, &err), 0);
    CHECK_INT(pid, 77);
    static const char *const bad[] = {"", "\n", "abc\n", "12 \n", "12\n\n", "0\n", "-5\n",
                                      "99999999999\n", " 12\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(p, bad[i]);
        CHECK_INT(jj_proc_read_pid(p, &pid, &err), JJ_ECORRUPT);
    }
}

static void test_alive(void)
{
    CHECK(jj_proc_alive(getpid()));
    CHECK(!jj_proc_alive(0));
    CHECK(!jj_proc_alive(-1));
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    /* Not reaped yet: a zombie is not alive. */
    usleep(100000);
    CHECK(!jj_proc_alive(child));
    waitpid(child, NULL, 0);
    CHECK(!jj_proc_alive(child));
}

static void test_stop_stale_pid_file(void)
{
    char p[300];
    path_in(p, sizeof p, "stale.pid");
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    char text[32];
    snprintf(text, sizeof text, "%ld\n", (long)child);
    write_file(p, text);
    jj_error err;
    CHECK_INT(jj_proc_stop(0, p, 1, &err), 0);
    CHECK(!jj_fs_exists(p));
    write_file(p, "garbage");
    CHECK_INT(jj_proc_stop(0, p, 1, &err), JJ_ECORRUPT);
    CHECK_INT(jj_proc_stop(0, NULL, 1, &err), JJ_EINVAL);
    CHECK_INT(jj_proc_stop(1, NULL, -1, &err), JJ_EINVAL);
}

static int listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static void test_wait_port(void)
{
    int port = 0;
    int fd = listener(&port);
    CHECK(fd >= 0);
    jj_error err;
    CHECK_INT(jj_proc_wait_port("127.0.0.1", port, 2, &err), 0);
    close(fd);
    double t0 = now();
    CHECK_INT(jj_proc_wait_port("127.0.0.1", port, 0.3, &err), JJ_ETIMEOUT);
    double took = now() - t0;
    CHECK(took >= 0.3);
    CHECK(took < 3);
    CHECK(strstr(err.message, "within") != NULL);
    CHECK_INT(jj_proc_wait_port("127.0.0.1", 0, 1, &err), JJ_EINVAL);
    CHECK_INT(jj_proc_wait_port("127.0.0.1", 70000, 1, &err), JJ_EINVAL);
    CHECK_INT(jj_proc_wait_port("", 80, 1, &err), JJ_EINVAL);
    CHECK_INT(jj_proc_wait_port("127.0.0.1", 80, -1, &err), JJ_EINVAL);
}

/* A daemon that starts listening late is found once it does. */
static void test_wait_port_for_daemon(void)
{
    int port = 0;
    int fd = listener(&port);
    CHECK(fd >= 0);
    close(fd); /* the port is now (very likely) free for the daemon */
    char script[256], pidf[300];
    path_in(pidf, sizeof pidf, "py.pid");
    snprintf(script, sizeof script,
             "import socket,time\ntime.sleep(0.3)\ns=socket.socket()\n"
             "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
             "s.bind(('127.0.0.1',%d))\ns.listen(1)\ntime.sleep(30)\n",
             port);
    const char *argv[] = {"/usr/bin/python3", "-c", script, NULL};
    jj_daemon_opts o = {argv, NULL, NULL, NULL, pidf};
    pid_t pid;
    jj_error err;
    CHECK_INT(jj_proc_start_daemon(&o, &pid, &err), 0);
    CHECK_INT(jj_proc_wait_port("127.0.0.1", port, 10, &err), 0);
    CHECK_INT(jj_proc_stop(pid, pidf, 5, &err), 0);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/jj-proc-XXXXXX");
    if (!mkdtemp(dir))
        return 2;
    RUN(test_daemon_lifecycle);
    RUN(test_stop_escalates_to_sigkill);
    RUN(test_start_failures);
    RUN(test_read_pid);
    RUN(test_alive);
    RUN(test_stop_stale_pid_file);
    RUN(test_wait_port);
    RUN(test_wait_port_for_daemon);
    jj_error err;
    jj_fs_remove_tree(dir, &err);
    return check_summary();
}
