/* test_sys.c: core/sys: arch names, os-release parsing, signal watches,
 * interruptible sleep, cancellation tokens, and child processes (exit codes, output, stdin,
 * timeouts, spawn failures). */
#include "check.h"
#include "sys.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_arch(void)
{
    static const char *const table[][2] = {
        {"x86_64", "amd64"},   {"amd64", "amd64"},   {"i386", "i386"},     {"i486", "i386"},
        {"i586", "i386"},      {"i686", "i386"},     {"aarch64", "arm64"}, {"arm64", "arm64"},
        {"armv7l", "armhf"},   {"armv6l", "armhf"},  {"armhf", "armhf"},   {"ppc64le", "ppc64el"},
        {"ppc64el", "ppc64el"}, {"s390x", "s390x"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        CHECK_STR(jj_sys_arch(table[i][0]), table[i][1]);
    CHECK(jj_sys_arch("mips") == NULL);
    CHECK(jj_sys_arch("X86_64") == NULL);
    CHECK(jj_sys_arch("") == NULL);
    CHECK(jj_sys_arch(NULL) == NULL);
    struct utsname u;
    jj_error err;
    CHECK_INT(jj_sys_uname(&u, &err), 0);
    CHECK(u.sysname[0] != '\0');
}

static const char *kv_get(jj_sys_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return kv[i].value;
    return NULL;
}

static const char sample[] =
    "# os-release sample\n"
    "NAME=\"Ubuntu\"\n"
    "VERSION='14.04.5 LTS, Trusty Tahr'\n"
    "ID=ubuntu\n"
    "ID_LIKE=debian\n"
    "PRETTY_NAME=\"Say \\\"hi\\\" \\\\ \\$HOME \\`x\\` \\n\"\n"
    "UNQUOTED=foo\\ bar\n"
    "EMPTY=\n"
    "  INDENTED=\"yes\"   \n"
    "this line is garbage\n"
    "=novalue\n"
    "CRLF=\"dos\"\r\n"
    "SINGLE='a \"b\" \\c'\n"
    "MIXED=\"a\"'b'c\n"
    "DUP=1\n"
    "DUP=2\n"
    "LAST=no-newline";

static void test_os_release_parse(void)
{
    jj_sys_kv *kv;
    size_t n;
    jj_error err;
    CHECK_INT(jj_sys_parse_os_release(sample, sizeof sample - 1, &kv, &n, &err), 0);
    CHECK_STR(kv_get(kv, n, "NAME"), "Ubuntu");
    CHECK_STR(kv_get(kv, n, "VERSION"), "14.04.5 LTS, Trusty Tahr");
    CHECK_STR(kv_get(kv, n, "ID"), "ubuntu");
    CHECK_STR(kv_get(kv, n, "PRETTY_NAME"), "Say \"hi\" \\ $HOME `x` \\n");
    CHECK_STR(kv_get(kv, n, "UNQUOTED"), "foo bar");
    CHECK_STR(kv_get(kv, n, "EMPTY"), "");
    CHECK_STR(kv_get(kv, n, "INDENTED"), "yes");
    CHECK_STR(kv_get(kv, n, "CRLF"), "dos");
    CHECK_STR(kv_get(kv, n, "SINGLE"), "a \"b\" \\c");
    CHECK_STR(kv_get(kv, n, "MIXED"), "abc");
    CHECK_STR(kv_get(kv, n, "DUP"), "2");
    CHECK_STR(kv_get(kv, n, "LAST"), "no-newline");
    CHECK(kv_get(kv, n, "this") == NULL);
    CHECK_INT(n, 13);
    jj_sys_free_kv(kv, n);

    CHECK_INT(jj_sys_parse_os_release("", 0, &kv, &n, &err), 0);
    CHECK_INT(n, 0);
    jj_sys_free_kv(kv, n);
}

static void test_os_release_file(void)
{
    char path[] = "/tmp/juju-test-os-release-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK_INT(write(fd, sample, sizeof sample - 1), (long long)(sizeof sample - 1));
    close(fd);
    jj_sys_kv *kv;
    size_t n;
    jj_error err;
    CHECK_INT(jj_sys_os_release(path, &kv, &n, &err), 0);
    CHECK_STR(kv_get(kv, n, "ID_LIKE"), "debian");
    jj_sys_free_kv(kv, n);
    unlink(path);
    CHECK_INT(jj_sys_os_release(path, &kv, &n, &err), JJ_ENOENT);
    CHECK(strstr(err.message, path) != NULL);
    /* the host's own: present on every machine this runs on */
    CHECK_INT(jj_sys_os_release(NULL, &kv, &n, &err), 0);
    CHECK(kv_get(kv, n, "ID") != NULL);
    jj_sys_free_kv(kv, n);
}

static void test_identity_env_clock(void)
{
    char buf[256];
    jj_error err;
    CHECK_INT(jj_sys_username(buf, sizeof buf, &err), 0);
    CHECK(buf[0] != '\0');
    CHECK_INT(jj_sys_home_dir(buf, sizeof buf, &err), 0);
    CHECK(buf[0] == '/');
    CHECK_INT(jj_sys_hostname(buf, sizeof buf, &err), 0);
    CHECK(buf[0] != '\0');
    CHECK_INT(jj_sys_username(buf, 1, &err), JJ_ERANGE);

    CHECK_INT(jj_sys_setenv("JUJU_TEST_VAR", "value", &err), 0);
    CHECK_STR(getenv("JUJU_TEST_VAR"), "value");
    CHECK_INT(jj_sys_setenv("JUJU_TEST_VAR", NULL, &err), 0);
    CHECK(getenv("JUJU_TEST_VAR") == NULL);
    CHECK_INT(jj_sys_setenv("A=B", "x", &err), JJ_EINVAL);
    CHECK_INT(jj_sys_setenv("", "x", &err), JJ_EINVAL);

    CHECK(jj_sys_time() > 1.6e9);
    double t0 = jj_sys_monotonic();
    CHECK_INT(jj_sys_sleep(0.05, &err), 0);
    double dt = jj_sys_monotonic() - t0;
    CHECK(dt >= 0.049 && dt < 2);
    CHECK_INT(jj_sys_sleep(-1, &err), JJ_EINVAL);
}

static void test_signal_names(void)
{
    CHECK_INT(jj_sys_signal_number("INT"), SIGINT);
    CHECK_INT(jj_sys_signal_number("SIGTERM"), SIGTERM);
    CHECK_INT(jj_sys_signal_number("KILL"), SIGKILL);
    CHECK_INT(jj_sys_signal_number("NOPE"), -1);
    CHECK_INT(jj_sys_signal_number("int"), -1);
    CHECK_STR(jj_sys_signal_name(SIGHUP), "HUP");
    CHECK_STR(jj_sys_signal_name(SIGUSR2), "USR2");
    CHECK(jj_sys_signal_name(0) == NULL);
}

static int previous_hits;
static void previous_handler(int s)
{
    (void)s;
    previous_hits++;
}

static void test_signal_watch(void)
{
    struct sigaction mine, cur;
    memset(&mine, 0, sizeof mine);
    mine.sa_handler = previous_handler;
    sigemptyset(&mine.sa_mask);
    sigaction(SIGUSR1, &mine, NULL);

    jj_sys_sigwatch w, w2;
    jj_error err;
    int sigs[] = {SIGUSR2, SIGUSR1};
    CHECK_INT(jj_sys_sigwatch_open(&w, sigs, 2, &err), 0);
    CHECK_INT(jj_sys_sigwatch_pending(&w), 0);
    unsigned a0 = jj_sys_signal_arrivals();
    raise(SIGUSR1);
    CHECK(jj_sys_signal_arrivals() != a0);
    CHECK_INT(previous_hits, 0); /* recorded, not acted upon */
    CHECK_INT(jj_sys_sigwatch_pending(&w), SIGUSR1);
    CHECK_INT(jj_sys_sigwatch_pending(&w), 0); /* cleared */
    raise(SIGUSR1);
    raise(SIGUSR2);
    CHECK_INT(jj_sys_sigwatch_pending(&w), SIGUSR2); /* order of the watch list */
    CHECK_INT(jj_sys_sigwatch_pending(&w), SIGUSR1);

    /* overlapping watch: the previous handler comes back only at the end */
    int one[] = {SIGUSR1};
    CHECK_INT(jj_sys_sigwatch_open(&w2, one, 1, &err), 0);
    jj_sys_sigwatch_close(&w);
    jj_sys_sigwatch_close(&w); /* idempotent */
    CHECK_INT(jj_sys_sigwatch_pending(&w), 0);
    raise(SIGUSR1);
    CHECK_INT(previous_hits, 0);
    CHECK_INT(jj_sys_sigwatch_pending(&w2), SIGUSR1);
    jj_sys_sigwatch_close(&w2);
    sigaction(SIGUSR1, NULL, &cur);
    CHECK(cur.sa_handler == previous_handler);
    raise(SIGUSR1);
    CHECK_INT(previous_hits, 1);
    signal(SIGUSR1, SIG_DFL);

    int bad[] = {SIGKILL};
    CHECK_INT(jj_sys_sigwatch_open(&w, bad, 1, &err), JJ_EINVAL);
    CHECK_INT(w.active, 0);
}

static void test_sleep_interrupted(void)
{
    jj_sys_sigwatch w;
    jj_error err;
    int sigs[] = {SIGUSR1};
    CHECK_INT(jj_sys_sigwatch_open(&w, sigs, 1, &err), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        usleep(100000);
        kill(parent, SIGUSR1);
        _exit(0);
    }
    double t0 = jj_sys_monotonic();
    CHECK_INT(jj_sys_sleep(10, &err), JJ_EINTERRUPTED);
    CHECK(jj_sys_monotonic() - t0 < 5);
    CHECK_INT(jj_sys_sigwatch_pending(&w), SIGUSR1);
    int st;
    waitpid(pid, &st, 0);
    jj_sys_sigwatch_close(&w);
}

/* A handler that is not a watch: it asks the token to stop, as a C program
 * (or another thread) would. */
static jj_sys_cancel *alarm_token;

static void on_alarm(int signo)
{
    (void)signo;
    if (alarm_token)
        jj_sys_cancel_request(alarm_token);
}

static void test_cancel_token(void)
{
    jj_error err;
    jj_sys_cancel c;
    jj_sys_cancel_scope scope;

    /* Nothing asked: the check passes and a short sleep completes. */
    jj_sys_cancel_init(&c, NULL);
    jj_sys_cancel_begin(&scope, &c);
    CHECK_INT(jj_sys_cancel_check(&scope, "step", &err), 0);
    CHECK_INT(jj_sys_cancel_sleep(&scope, 0.01, "nap", &err), 0);
    CHECK_INT(jj_sys_cancel_sleep(&scope, -1, "nap", &err), JJ_EINVAL);

    /* A request stops the scope at once. */
    jj_sys_cancel_request(&c);
    CHECK_INT(jj_sys_cancel_check(&scope, "step", &err), JJ_EINTERRUPTED);
    CHECK_STR(err.message, "step: interrupted");
    CHECK_INT(jj_sys_cancel_sleep(&scope, 10, "nap", &err), JJ_EINTERRUPTED);

    /* A NULL token: only signals of a watch arriving during the scope. */
    jj_sys_cancel_begin(&scope, NULL);
    CHECK_INT(jj_sys_cancel_check(&scope, "step", &err), 0);

    /* A request from a handler that is not a watch does not interrupt
     * nanosleep; the sleep notices it within its slice. */
    jj_sys_cancel_init(&c, NULL);
    alarm_token = &c;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    CHECK_INT(sigaction(SIGALRM, &sa, &old), 0);
    struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = 200000}};
    CHECK_INT(setitimer(ITIMER_REAL, &it, NULL), 0);
    jj_sys_cancel_begin(&scope, &c);
    double t0 = jj_sys_monotonic();
    CHECK_INT(jj_sys_cancel_sleep(&scope, 10, "nap", &err), JJ_EINTERRUPTED);
    CHECK(jj_sys_monotonic() - t0 < 5); /* far below the 10 s asked */
    sigaction(SIGALRM, &old, NULL);
    alarm_token = NULL;
}

static void test_cancel_watch(void)
{
    jj_error err;
    jj_sys_sigwatch w;
    int sigs[] = {SIGUSR1, SIGUSR2};
    CHECK_INT(jj_sys_sigwatch_open(&w, sigs, 2, &err), 0);
    jj_sys_cancel c;
    jj_sys_cancel_init(&c, &w);
    jj_sys_cancel_scope with, without;

    /* A signal that came before the scope: only the token's watch sees it,
     * and leaves it pending for the watch's owner. */
    CHECK_INT(jj_sys_raise(SIGUSR2, &err), 0);
    jj_sys_cancel_begin(&with, &c);
    jj_sys_cancel_begin(&without, NULL);
    CHECK_INT(jj_sys_cancel_check(&without, "step", &err), 0);
    CHECK_INT(jj_sys_cancel_check(&with, "step", &err), JJ_EINTERRUPTED);
    CHECK_STR(err.message, "step: interrupted (SIGUSR2)");
    CHECK_INT(jj_sys_cancel_check(&with, "step", &err), JJ_EINTERRUPTED); /* still pending */
    CHECK_INT(jj_sys_sigwatch_pending(&w), SIGUSR2);
    CHECK_INT(jj_sys_cancel_check(&with, "step", &err), 0);

    /* A signal arriving during a scope stops it with or without the token,
     * naming the signal. */
    jj_sys_cancel_begin(&without, NULL);
    CHECK_INT(jj_sys_raise(SIGUSR1, &err), 0);
    CHECK_INT(jj_sys_cancel_check(&without, "step", &err), JJ_EINTERRUPTED);
    CHECK_STR(err.message, "step: interrupted (SIGUSR1)");
    CHECK_INT(jj_sys_sigwatch_pending(&w), SIGUSR1);

    /* A closed watch cancels nothing. */
    jj_sys_sigwatch_close(&w);
    jj_sys_cancel_begin(&with, &c);
    CHECK_INT(jj_sys_cancel_check(&with, "step", &err), 0);
}

static jj_proc_opts opts_for(const char *const *argv)
{
    jj_proc_opts o;
    memset(&o, 0, sizeof o);
    o.argv = argv;
    o.stdin_mode = JJ_STDIO_NULL;
    o.stdout_mode = JJ_STDIO_PIPE;
    o.stderr_mode = JJ_STDIO_PIPE;
    return o;
}

static void test_run_output_and_codes(void)
{
    const char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    jj_proc_opts o = opts_for(argv);
    jj_proc p;
    jj_error err;
    int code, sig;
    jj_proc_init(&p);
    CHECK_INT(jj_proc_run(&p, &o, -1, &code, &sig, &err), 0);
    CHECK_INT(code, 3);
    CHECK_INT(sig, 0);
    CHECK_STR(p.out.data, "out\n");
    CHECK_STR(p.err.data, "err\n");
    jj_proc_close(&p);

    const char *argv_sig[] = {"sh", "-c", "kill -TERM $$", NULL};
    o = opts_for(argv_sig);
    CHECK_INT(jj_proc_run(&p, &o, -1, &code, &sig, &err), 0);
    CHECK_INT(sig, SIGTERM);
    CHECK_INT(code, 128 + SIGTERM);
    jj_proc_close(&p);

    /* an argument is never re-parsed by a shell */
    const char *argv_lit[] = {"printf", "%s", "$(id); rm -rf /", NULL};
    o = opts_for(argv_lit);
    CHECK_INT(jj_proc_run(&p, &o, -1, &code, &sig, &err), 0);
    CHECK_STR(p.out.data, "$(id); rm -rf /");
    jj_proc_close(&p);
}

static void test_run_stdin_and_big_output(void)
{
    size_t big = 1 << 20; /* far beyond a pipe buffer, both ways */
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)('a' + i % 26);
    const char *argv[] = {"sh", "-c", "tee /dev/stderr", NULL};
    jj_proc_opts o = opts_for(argv);
    o.stdin_mode = JJ_STDIO_DATA;
    o.stdin_data = data;
    o.stdin_len = big;
    jj_proc p;
    jj_error err;
    int code, sig;
    jj_proc_init(&p);
    CHECK_INT(jj_proc_run(&p, &o, 30, &code, &sig, &err), 0);
    CHECK_INT(code, 0);
    CHECK_INT(p.out.len, big);
    CHECK_INT(p.err.len, big);
    CHECK(p.out.data && memcmp(p.out.data, data, big) == 0);
    CHECK(p.err.data && memcmp(p.err.data, data, big) == 0);
    jj_proc_close(&p);

    /* a child that ignores its stdin must not kill us with SIGPIPE */
    const char *argv_true[] = {"true", NULL};
    o = opts_for(argv_true);
    o.stdin_mode = JJ_STDIO_DATA;
    o.stdin_data = data;
    o.stdin_len = big;
    CHECK_INT(jj_proc_run(&p, &o, 30, &code, &sig, &err), 0);
    CHECK_INT(code, 0);
    jj_proc_close(&p);
    free(data);
}

static void test_spawn_options(void)
{
    jj_proc p;
    jj_error err;
    int code, sig;
    jj_proc_init(&p);

    const char *argv_pwd[] = {"pwd", NULL};
    jj_proc_opts o = opts_for(argv_pwd);
    o.cwd = "/tmp";
    CHECK_INT(jj_proc_run(&p, &o, -1, &code, &sig, &err), 0);
    CHECK_STR(p.out.data, "/tmp\n");
    jj_proc_close(&p);
    o.cwd = "/nonexistent-dir";
    CHECK_INT(jj_proc_run(&p, &o, -1, &code, &sig, &err), JJ_ENOENT);
    CHECK(strstr(err.message, "chdir") != NULL);
    jj_proc_close(&p);

    const char *argv_env[] = {"env", NULL};
    const char *envp[] = {"FOO=bar", "EMPTY=", NULL};
    o = opts_for(argv_env);
    o.envp = envp;
    CHECK_INT(jj_proc_run(&p, &o, -1, &code, &sig, &err), 0);
    CHECK_STR(p.out.data, "FOO=bar\nEMPTY=\n");
    jj_proc_close(&p);

    const char *argv_missing[] = {"juju-no-such-program-xyz", NULL};
    o = opts_for(argv_missing);
    CHECK_INT(jj_proc_run(&p, &o, -1, &code, &sig, &err), JJ_ENOENT);
    CHECK(strstr(err.message, "juju-no-such-program-xyz") != NULL);
    jj_proc_close(&p);

    const char *argv_empty[] = {NULL};
    o = opts_for(argv_empty);
    CHECK_INT(jj_proc_spawn(&p, &o, &err), JJ_EINVAL);

    /* output appended to a file; stderr discarded */
    char path[] = "/tmp/juju-test-out-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    const char *argv_echo[] = {"sh", "-c", "echo line; echo noise >&2", NULL};
    o = opts_for(argv_echo);
    o.stdout_mode = JJ_STDIO_FILE;
    o.stdout_path = path;
    o.stderr_mode = JJ_STDIO_NULL;
    for (int i = 0; i < 2; i++) {
        CHECK_INT(jj_proc_run(&p, &o, -1, &code, &sig, &err), 0);
        CHECK_INT(p.out.len, 0);
        CHECK_INT(p.err.len, 0);
        jj_proc_close(&p);
    }
    FILE *f = fopen(path, "r");
    char buf[64] = {0};
    CHECK(f && fread(buf, 1, sizeof buf - 1, f) > 0);
    if (f)
        fclose(f);
    CHECK_STR(buf, "line\nline\n");
    unlink(path);
}

static void test_wait_timeout_kill_close(void)
{
    jj_proc p;
    jj_error err;
    int code, sig;
    jj_proc_init(&p);
    const char *argv[] = {"sleep", "30", NULL};
    jj_proc_opts o = opts_for(argv);
    CHECK_INT(jj_proc_spawn(&p, &o, &err), 0);
    CHECK(p.pid > 0);
    double t0 = jj_sys_monotonic();
    CHECK_INT(jj_proc_wait(&p, 0.1, &code, &sig, &err), JJ_ETIMEOUT);
    CHECK(jj_sys_monotonic() - t0 < 5);
    CHECK_INT(jj_proc_kill(&p, SIGKILL, &err), 0);
    CHECK_INT(jj_proc_wait(&p, 10, &code, &sig, &err), 0);
    CHECK_INT(sig, SIGKILL);
    CHECK_INT(code, 128 + SIGKILL);
    CHECK_INT(jj_proc_kill(&p, SIGTERM, &err), 0); /* reaped: nothing to do */
    jj_proc_close(&p);

    /* close kills and reaps a running child */
    CHECK_INT(jj_proc_spawn(&p, &o, &err), 0);
    pid_t pid = p.pid;
    jj_proc_close(&p);
    jj_proc_close(&p);
    CHECK(kill(pid, 0) != 0 && errno == ESRCH);

    /* run's own timeout kills the child */
    t0 = jj_sys_monotonic();
    CHECK_INT(jj_proc_run(&p, &o, 0.2, &code, &sig, &err), JJ_ETIMEOUT);
    CHECK(jj_sys_monotonic() - t0 < 5);
    CHECK(p.reaped);
    jj_proc_close(&p);

    CHECK_INT(jj_sys_kill(pid, 0, &err), JJ_ENOENT);
}

int main(void)
{
    RUN(test_arch);
    RUN(test_os_release_parse);
    RUN(test_os_release_file);
    RUN(test_identity_env_clock);
    RUN(test_signal_names);
    RUN(test_signal_watch);
    RUN(test_sleep_interrupted);
    RUN(test_cancel_token);
    RUN(test_cancel_watch);
    RUN(test_run_output_and_codes);
    RUN(test_run_stdin_and_big_output);
    RUN(test_spawn_options);
    RUN(test_wait_timeout_kill_close);
    return check_summary();
}
