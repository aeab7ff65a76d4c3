/* sys.c: identity, clocks, signal watches and child processes (see sys.h). */
#include "sys.h"

#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Pipe reads go through a fixed chunk; only the result buffers grow. */
#define READ_CHUNK 65536
/* Without a pidfd, how often a waiting parent looks for the exit. */
#define EXIT_POLL_MS 10

/* ---- identity ------------------------------------------------------- */

static int copy_out(char *out, size_t size, const char *value, const char *what, jj_error *err)
{
    size_t n = strlen(value);
    if (n >= size)
        return jj_error_set(err, JJ_ERANGE, "%s too long", what);
    memcpy(out, value, n + 1);
    return 0;
}

/* getpwuid_r for the real uid; field 0 = name, 1 = home. */
static int passwd_field(int field, char *out, size_t size, jj_error *err)
{
    char buf[4096];
    struct passwd pw, *res = NULL;
    if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) != 0 || !res)
        return JJ_ENOENT;
    const char *v = field == 0 ? pw.pw_name : pw.pw_dir;
    if (!v || !*v)
        return JJ_ENOENT;
    return copy_out(out, size, v, field == 0 ? "user name" : "home directory", err);
}

int jj_sys_username(char *out, size_t size, jj_error *err)
{
    int rc = passwd_field(0, out, size, err);
    if (rc != JJ_ENOENT)
        return rc;
    const char *env = getenv("USER");
    if (env && *env)
        return copy_out(out, size, env, "user name", err);
    return jj_error_set(err, JJ_ENOENT, "cannot determine user name: no passwd entry for uid %u "
                        "and $USER is not set", (unsigned)getuid());
}

int jj_sys_home_dir(char *out, size_t size, jj_error *err)
{
    int rc = passwd_field(1, out, size, err);
    if (rc != JJ_ENOENT)
        return rc;
    const char *env = getenv("HOME");
    if (env && *env)
        return copy_out(out, size, env, "home directory", err);
    return jj_error_set(err, JJ_ENOENT, "cannot determine home directory: no passwd entry for "
                        "uid %u and $HOME is not set", (unsigned)getuid());
}

int jj_sys_hostname(char *out, size_t size, jj_error *err)
{
    if (size == 0)
        return jj_error_set(err, JJ_ERANGE, "hostname: no room");
    if (gethostname(out, size) != 0)
        return jj_error_errno(err, errno, "gethostname");
    out[size - 1] = '\0';
    return 0;
}

int jj_sys_uname(struct utsname *u, jj_error *err)
{
    if (uname(u) != 0)
        return jj_error_errno(err, errno, "uname");
    return 0;
}

const char *jj_sys_arch(const char *machine)
{
    static const struct {
        const char *machine, *arch;
    } table[] = {
        {"x86_64", "amd64"},   {"amd64", "amd64"},     {"i386", "i386"},
        {"i486", "i386"},      {"i586", "i386"},       {"i686", "i386"},
        {"aarch64", "arm64"},  {"arm64", "arm64"},     {"armv7l", "armhf"},
        {"armv6l", "armhf"},   {"armhf", "armhf"},     {"ppc64le", "ppc64el"},
        {"ppc64el", "ppc64el"}, {"s390x", "s390x"},
    };
    if (!machine)
        return NULL;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(machine, table[i].machine) == 0)
            return table[i].arch;
    return NULL;
}

/* ---- os-release ----------------------------------------------------- */

void jj_sys_free_kv(jj_sys_kv *kv, size_t count)
{
    if (!kv)
        return;
    for (size_t i = 0; i < count; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static int is_key_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Decodes the shell-like value in [p, end) into out (which has room for
 * end - p + 1 bytes): quotes removed, escapes resolved, stops at unquoted
 * whitespace (anything after it is a comment or garbage). */
static void decode_value(const char *p, const char *end, char *out)
{
    char quote = 0;
    size_t n = 0;
    while (p < end) {
        char c = *p++;
        if (quote == '\'') {
            if (c == '\'')
                quote = 0;
            else
                out[n++] = c;
        } else if (quote == '"') {
            if (c == '"')
                quote = 0;
            else if (c == '\\' && p < end && strchr("\"\\$`", *p))
                out[n++] = *p++;
            else
                out[n++] = c;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '\\' && p < end) {
            out[n++] = *p++;
        } else if (c == ' ' || c == '\t') {
            break;
        } else {
            out[n++] = c;
        }
    }
    out[n] = '\0';
}

static int add_kv(jj_sys_kv **v, size_t *n, size_t *cap, const char *key, size_t klen,
                  const char *val, const char *vend, jj_error *err)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        jj_sys_kv *nv = realloc(*v, ncap * sizeof *nv);
        if (!nv)
            return jj_error_set(err, JJ_ENOMEM, "os-release: out of memory");
        *v = nv;
        *cap = ncap;
    }
    char *k = strndup(key, klen);
    char *d = malloc((size_t)(vend - val) + 1);
    if (!k || !d) {
        free(k);
        free(d);
        return jj_error_set(err, JJ_ENOMEM, "os-release: out of memory");
    }
    decode_value(val, vend, d);
    /* A later assignment of the same key wins, as when the shell sources it. */
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*v)[i].key, k) == 0) {
            free(k);
            free((*v)[i].value);
            (*v)[i].value = d;
            return 0;
        }
    }
    (*v)[*n].key = k;
    (*v)[*n].value = d;
    (*n)++;
    return 0;
}

int jj_sys_parse_os_release(const char *text, size_t len, jj_sys_kv **out, size_t *count,
                            jj_error *err)
{
    jj_sys_kv *v = NULL;
    size_t n = 0, cap = 0;
    const char *p = text, *end = text + len;
    *out = NULL;
    *count = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *line = p;
        p = eol < end ? eol + 1 : end;
        while (line < eol && (*line == ' ' || *line == '\t'))
            line++;
        const char *lend = eol;
        while (lend > line && (lend[-1] == '\r' || lend[-1] == ' ' || lend[-1] == '\t'))
            lend--;
        if (line == lend || *line == '#')
            continue;
        const char *k = line;
        while (k < lend && is_key_char(*k))
            k++;
        if (k == line || k == lend || *k != '=')
            continue; /* not an assignment: skipped like systemd does */
        int rc = add_kv(&v, &n, &cap, line, (size_t)(k - line), k + 1, lend, err);
        if (rc) {
            jj_sys_free_kv(v, n);
            return rc;
        }
    }
    *out = v;
    *count = n;
    return 0;
}

int jj_sys_os_release(const char *path, jj_sys_kv **out, size_t *count, jj_error *err)
{
    char *text;
    size_t len;
    int rc;
    *out = NULL;
    *count = 0;
    if (path) {
        rc = jj_fs_read_file(path, &text, &len, err);
    } else {
        rc = jj_fs_read_file("/etc/os-release", &text, &len, err);
        if (rc == JJ_ENOENT)
            rc = jj_fs_read_file("/usr/lib/os-release", &text, &len, err);
    }
    if (rc)
        return rc;
    rc = jj_sys_parse_os_release(text, len, out, count, err);
    free(text);
    return rc;
}

/* ---- environment and clocks ----------------------------------------- */

int jj_sys_setenv(const char *name, const char *value, jj_error *err)
{
    if (!*name || strchr(name, '='))
        return jj_error_set(err, JJ_EINVAL, "invalid environment variable name \"%s\"", name);
    int rc = value ? setenv(name, value, 1) : unsetenv(name);
    if (rc != 0)
        return jj_error_errno(err, errno, "setenv %s", name);
    return 0;
}

static double clock_seconds(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double jj_sys_time(void)
{
    return clock_seconds(CLOCK_REALTIME);
}

double jj_sys_monotonic(void)
{
    return clock_seconds(CLOCK_MONOTONIC);
}

/* ---- signals: the deliberate process-wide state ----------------------- */

static volatile sig_atomic_t sig_pending[NSIG];
static volatile sig_atomic_t sig_arrivals;
static int sig_refs[NSIG];
static struct sigaction sig_saved[NSIG];

static volatile sig_atomic_t sig_last; /* the latest watched signal to arrive */

static void record_signal(int signo)
{
    if (signo > 0 && signo < NSIG)
        sig_pending[signo] = 1;
    sig_last = signo;
    sig_arrivals = (sig_arrivals + 1) & 0x3fffffff;
}

unsigned jj_sys_signal_arrivals(void)
{
    return (unsigned)sig_arrivals;
}

static const struct {
    int no;
    const char *name;
} signal_table[] = {
    {SIGHUP, "HUP"},   {SIGINT, "INT"},     {SIGQUIT, "QUIT"},   {SIGILL, "ILL"},
    {SIGTRAP, "TRAP"}, {SIGABRT, "ABRT"},   {SIGBUS, "BUS"},     {SIGFPE, "FPE"},
    {SIGKILL, "KILL"}, {SIGUSR1, "USR1"},   {SIGSEGV, "SEGV"},   {SIGUSR2, "USR2"},
    {SIGPIPE, "PIPE"}, {SIGALRM, "ALRM"},   {SIGTERM, "TERM"},   {SIGCHLD, "CHLD"},
    {SIGCONT, "CONT"}, {SIGSTOP, "STOP"},   {SIGTSTP, "TSTP"},   {SIGTTIN, "TTIN"},
    {SIGTTOU, "TTOU"}, {SIGURG, "URG"},     {SIGXCPU, "XCPU"},   {SIGXFSZ, "XFSZ"},
    {SIGVTALRM, "VTALRM"}, {SIGPROF, "PROF"}, {SIGWINCH, "WINCH"}, {SIGIO, "IO"},
    {SIGSYS, "SYS"},
};

int jj_sys_signal_number(const char *name)
{
    if (!name)
        return -1;
    if (strncmp(name, "SIG", 3) == 0)
        name += 3;
    for (size_t i = 0; i < sizeof signal_table / sizeof signal_table[0]; i++)
        if (strcmp(name, signal_table[i].name) == 0)
            return signal_table[i].no;
    return -1;
}

const char *jj_sys_signal_name(int signo)
{
    for (size_t i = 0; i < sizeof signal_table / sizeof signal_table[0]; i++)
        if (signal_table[i].no == signo)
            return signal_table[i].name;
    return NULL;
}

static void watch_remove(int s)
{
    if (sig_refs[s] > 0 && --sig_refs[s] == 0) {
        sigaction(s, &sig_saved[s], NULL);
        sig_pending[s] = 0;
    }
}

static int watch_add(int s, jj_error *err)
{
    if (sig_refs[s] == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = record_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0; /* no SA_RESTART: blocking calls must notice */
        if (sigaction(s, &sa, &sig_saved[s]) != 0)
            return jj_error_errno(err, errno, "watch signal %d", s);
        sig_pending[s] = 0;
    }
    sig_refs[s]++;
    return 0;
}

int jj_sys_sigwatch_open(jj_sys_sigwatch *w, const int *signos, int count, jj_error *err)
{
    w->count = 0;
    w->active = 0;
    if (count < 0 || count > JJ_SYS_WATCH_MAX)
        return jj_error_set(err, JJ_EINVAL, "can watch at most %d signals", JJ_SYS_WATCH_MAX);
    for (int i = 0; i < count; i++) {
        int s = signos[i];
        if (s <= 0 || s >= NSIG || s == SIGKILL || s == SIGSTOP)
            return jj_error_set(err, JJ_EINVAL, "signal %d cannot be watched", s);
    }
    for (int i = 0; i < count; i++) {
        int rc = watch_add(signos[i], err);
        if (rc) {
            while (i-- > 0)
                watch_remove(signos[i]);
            return rc;
        }
        w->signals[i] = signos[i];
    }
    w->count = count;
    w->active = 1;
    return 0;
}

int jj_sys_sigwatch_pending(jj_sys_sigwatch *w)
{
    if (!w->active)
        return 0;
    for (int i = 0; i < w->count; i++) {
        int s = w->signals[i];
        if (sig_pending[s]) {
            sig_pending[s] = 0;
            return s;
        }
    }
    return 0;
}

void jj_sys_sigwatch_close(jj_sys_sigwatch *w)
{
    if (!w->active)
        return;
    for (int i = w->count; i-- > 0;)
        watch_remove(w->signals[i]);
    w->active = 0;
    w->count = 0;
}

static struct timespec to_timespec(double s)
{
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_nsec = 999999999L;
    if (ts.tv_nsec < 0)
        ts.tv_nsec = 0;
    return ts;
}

/* ---- cancellation --------------------------------------------------- */

void jj_sys_cancel_init(jj_sys_cancel *c, const jj_sys_sigwatch *watch)
{
    c->requested = 0;
    c->watch = watch;
}

void jj_sys_cancel_request(jj_sys_cancel *c)
{
    c->requested = 1;
}

void jj_sys_cancel_begin(jj_sys_cancel_scope *scope, const jj_sys_cancel *token)
{
    scope->token = token;
    scope->arrivals = jj_sys_signal_arrivals();
}

/* The first of w's signals that is pending, without clearing it; or 0. */
static int watch_peek(const jj_sys_sigwatch *w)
{
    if (!w || !w->active)
        return 0;
    for (int i = 0; i < w->count; i++)
        if (sig_pending[w->signals[i]])
            return w->signals[i];
    return 0;
}

static int interrupted(jj_error *err, const char *what, int signo)
{
    const char *name = signo > 0 ? jj_sys_signal_name(signo) : NULL;
    if (name)
        return jj_error_set(err, JJ_EINTERRUPTED, "%s: interrupted (SIG%s)", what, name);
    return jj_error_set(err, JJ_EINTERRUPTED, "%s: interrupted", what);
}

int jj_sys_cancel_check(const jj_sys_cancel_scope *scope, const char *what, jj_error *err)
{
    const jj_sys_cancel *t = scope->token;
    int s;
    if (t && t->requested)
        return interrupted(err, what, 0);
    if (t && (s = watch_peek(t->watch)) != 0)
        return interrupted(err, what, s);
    if (jj_sys_signal_arrivals() != scope->arrivals)
        return interrupted(err, what, sig_last);
    return 0;
}

int jj_sys_cancel_sleep(const jj_sys_cancel_scope *scope, double seconds, const char *what,
                        jj_error *err)
{
    if (!(seconds >= 0) || seconds > 1e9)
        return jj_error_set(err, JJ_EINVAL, "%s: bad duration %g", what, seconds);
    double end = jj_sys_monotonic() + seconds;
    for (;;) {
        int rc = jj_sys_cancel_check(scope, what, err);
        if (rc)
            return rc;
        double left = end - jj_sys_monotonic();
        if (left <= 0)
            return 0;
        /* Slices: a request from another thread or a handler that is not a
         * watch does not interrupt nanosleep. */
        struct timespec ts = to_timespec(left < JJ_SYS_CANCEL_SLICE ? left : JJ_SYS_CANCEL_SLICE);
        if (nanosleep(&ts, NULL) != 0 && errno != EINTR)
            return jj_error_errno(err, errno, "%s", what);
    }
}

int jj_sys_sleep(double seconds, jj_error *err)
{
    jj_sys_cancel_scope scope;
    jj_sys_cancel_begin(&scope, NULL);
    return jj_sys_cancel_sleep(&scope, seconds, "sleep", err);
}

static int kill_error(jj_error *err, int e, pid_t pid, int signo)
{
    if (e == ESRCH)
        return jj_error_set_lib(err, JJ_ENOENT, e, "kill %ld: no such process", (long)pid);
    return jj_error_errno(err, e, "kill %ld with signal %d", (long)pid, signo);
}

int jj_sys_kill(pid_t pid, int signo, jj_error *err)
{
    if (kill(pid, signo) != 0)
        return kill_error(err, errno, pid, signo);
    return 0;
}

int jj_sys_raise(int signo, jj_error *err)
{
    if (raise(signo) != 0)
        return jj_error_errno(err, errno, "raise signal %d", signo);
    return 0;
}

/* ---- child processes ------------------------------------------------ */

void jj_proc_init(jj_proc *p)
{
    memset(p, 0, sizeof *p);
    p->pid = -1;
    p->pidfd = -1;
    p->in_fd = p->out_fd = p->err_fd = -1;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* What the child reports through the exec-status pipe when it fails. */
typedef struct spawn_failure {
    int stage; /* 0: exec, 1: chdir, 2: dup2 */
    int errnum;
} spawn_failure;

/* The child's ends of its standard descriptors, held above 2 so that
 * dup2 never clobbers one with another. */
typedef struct child_fds {
    int fd[3];
} child_fds;

static void close_child_fds(child_fds *c)
{
    for (int i = 0; i < 3; i++)
        close_fd(&c->fd[i]);
}

/* Moves fd above 2 (close-on-exec) so it survives the dup2 dance. */
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

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Prepares stream i (0 stdin, 1 stdout, 2 stderr): the child's end in
 * c->fd[i], the parent's end (pipes) in *parent. */
static int open_stdio(int i, jj_stdio_mode mode, const char *path, child_fds *c, int *parent,
                      jj_error *err)
{
    static const char *const names[] = {"stdin", "stdout", "stderr"};
    int fds[2];
    switch (mode) {
    case JJ_STDIO_INHERIT:
        return 0;
    case JJ_STDIO_NULL:
        c->fd[i] = lift_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
        if (c->fd[i] < 0)
            return jj_error_errno(err, errno, "open /dev/null for %s", names[i]);
        return 0;
    case JJ_STDIO_FILE:
        if (i == 0 || !path)
            break;
        c->fd[i] = lift_fd(open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
        if (c->fd[i] < 0)
            return jj_error_errno(err, errno, "open %s for %s", path, names[i]);
        return 0;
    case JJ_STDIO_PIPE:
    case JJ_STDIO_DATA:
        if ((mode == JJ_STDIO_DATA) != (i == 0))
            break;
        if (pipe2(fds, O_CLOEXEC) != 0)
            return jj_error_errno(err, errno, "pipe for %s", names[i]);
        /* stdin: the child reads fds[0]; outputs: the child writes fds[1] */
        c->fd[i] = lift_fd(fds[i == 0 ? 0 : 1]);
        *parent = lift_fd(fds[i == 0 ? 1 : 0]);
        if (c->fd[i] < 0 || *parent < 0 || set_nonblock(*parent) != 0) {
            int e = errno;
            close_fd(parent);
            return jj_error_errno(err, e, "pipe for %s", names[i]);
        }
        return 0;
    }
    return jj_error_set(err, JJ_EINVAL, "invalid %s mode %d", names[i], (int)mode);
}

/* Runs in the forked child: only async-signal-safe calls until exec. */
static void child_exec(const jj_proc_opts *o, child_fds *c, int report)
{
    spawn_failure f = {2, 0};
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL); /* an ignored SIGPIPE would be inherited */
    for (int i = 0; i < 3; i++) {
        if (c->fd[i] >= 0 && dup2(c->fd[i], i) < 0)
            goto fail;
    }
    if (o->cwd && chdir(o->cwd) != 0) {
        f.stage = 1;
        goto fail;
    }
    /* Descriptors the host opened without O_CLOEXEC (Lua's io.open) must
     * not leak into the child; the report pipe stays open until exec. */
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    f.stage = 0;
    if (o->envp)
        execvpe(o->argv[0], (char *const *)o->argv, (char *const *)o->envp);
    else
        execvp(o->argv[0], (char *const *)o->argv);
fail:
    f.errnum = errno;
    while (write(report, &f, sizeof f) < 0 && errno == EINTR)
        ;
    _exit(127);
}

static void try_reap(jj_proc *p, int block)
{
    if (p->reaped || p->pid <= 0)
        return;
    int st;
    pid_t r;
    do
        r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == p->pid) {
        p->reaped = 1;
        p->status = st;
        close_fd(&p->pidfd);
    } else if (r < 0 && errno == ECHILD) {
        /* Somebody else reaped it (SIGCHLD ignored?): the status is lost. */
        p->reaped = 1;
        p->status = -1;
        close_fd(&p->pidfd);
    }
}

int jj_proc_spawn(jj_proc *p, const jj_proc_opts *o, jj_error *err)
{
    if (p->pid > 0)
        return jj_error_set(err, JJ_EINVAL, "spawn: process already started");
    if (!o->argv || !o->argv[0] || !o->argv[0][0])
        return jj_error_set(err, JJ_EINVAL, "spawn: empty argv");
    child_fds c = {{-1, -1, -1}};
    int in = -1, out = -1, errfd = -1, report[2] = {-1, -1};
    int rc = open_stdio(0, o->stdin_mode, NULL, &c, &in, err);
    if (!rc)
        rc = open_stdio(1, o->stdout_mode, o->stdout_path, &c, &out, err);
    if (!rc)
        rc = open_stdio(2, o->stderr_mode, o->stderr_path, &c, &errfd, err);
    if (!rc && pipe2(report, O_CLOEXEC) != 0)
        rc = jj_error_errno(err, errno, "spawn %s: pipe", o->argv[0]);
    pid_t pid = -1;
    if (!rc) {
        pid = fork();
        if (pid == 0)
            child_exec(o, &c, report[1]);
        if (pid < 0)
            rc = jj_error_errno(err, errno, "spawn %s: fork", o->argv[0]);
    }
    close_child_fds(&c);
    close_fd(&report[1]);
    if (!rc) {
        spawn_failure f;
        ssize_t n;
        do
            n = read(report[0], &f, sizeof f);
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)sizeof f) {
            int st;
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            if (f.stage == 1)
                rc = jj_error_errno(err, f.errnum, "spawn %s: chdir %s", o->argv[0], o->cwd);
            else
                rc = jj_error_errno(err, f.errnum, "spawn %s", o->argv[0]);
        }
    }
    close_fd(&report[0]);
    if (rc) {
        close_fd(&in);
        close_fd(&out);
        close_fd(&errfd);
        return rc;
    }
    p->pid = pid;
    p->reaped = 0;
    p->pidfd = pidfd_open(pid, 0); /* always close-on-exec; -1 on old kernels */
    p->in_fd = in;
    p->out_fd = out;
    p->err_fd = errfd;
    p->in_data = o->stdin_data;
    p->in_len = o->stdin_mode == JJ_STDIO_DATA ? o->stdin_len : 0;
    p->in_off = 0;
    if (p->in_fd >= 0 && p->in_len == 0)
        close_fd(&p->in_fd); /* nothing to feed: EOF right away */
    return 0;
}

static int buf_read(jj_buf *b, int *fd, jj_error *err)
{
    if (b->cap - b->len < READ_CHUNK + 1) {
        size_t ncap = b->cap ? b->cap : READ_CHUNK + 1;
        while (ncap - b->len < READ_CHUNK + 1)
            ncap *= 2;
        char *nd = realloc(b->data, ncap);
        if (!nd)
            return jj_error_set(err, JJ_ENOMEM, "read child output: out of memory");
        b->data = nd;
        b->cap = ncap;
    }
    ssize_t n = read(*fd, b->data + b->len, READ_CHUNK);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return 0;
        int e = errno;
        close_fd(fd);
        return jj_error_errno(err, e, "read child output");
    }
    if (n == 0)
        close_fd(fd);
    b->len += (size_t)n;
    b->data[b->len] = '\0';
    return 0;
}

/* Writes the next piece of stdin. A child that stops reading (EPIPE) is
 * its own business; SIGPIPE is blocked around the write so it cannot kill
 * this process. */
static int feed_stdin(jj_proc *p, jj_error *err)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigprocmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t n = write(p->in_fd, p->in_data + p->in_off, p->in_len - p->in_off);
    int e = errno;
    if (n < 0 && e == EPIPE && !sigismember(&old, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (n < 0) {
        if (e == EINTR || e == EAGAIN)
            return 0;
        close_fd(&p->in_fd);
        if (e == EPIPE)
            return 0;
        return jj_error_errno(err, e, "write child stdin");
    }
    p->in_off += (size_t)n;
    if (p->in_off >= p->in_len)
        close_fd(&p->in_fd);
    return 0;
}

/* Poll timeout in ms until deadline (< 0: none), capped at cap_ms (< 0:
 * no cap). */
static int poll_ms(double deadline, int cap_ms)
{
    int ms = -1;
    if (deadline >= 0) {
        double left = (deadline - jj_sys_monotonic()) * 1000.0;
        if (left <= 0)
            ms = 0;
        else if (left >= INT_MAX)
            ms = INT_MAX;
        else
            ms = (int)left + ((double)(int)left < left); /* round up: never spin */
    }
    if (cap_ms >= 0 && (ms < 0 || ms > cap_ms))
        ms = cap_ms;
    return ms;
}

/* Moves data between the pipes and the buffers until the child has exited
 * (want_exit) or both output pipes reached EOF (otherwise), or deadline. */
static int pump(jj_proc *p, int want_exit, double deadline, jj_error *err)
{
    unsigned arrivals = jj_sys_signal_arrivals();
    for (;;) {
        if (want_exit)
            try_reap(p, 0);
        if (want_exit ? p->reaped : (p->out_fd < 0 && p->err_fd < 0))
            return 0;
        if (deadline >= 0 && jj_sys_monotonic() >= deadline)
            return jj_error_set(err, JJ_ETIMEOUT, "process %ld: %s timed out", (long)p->pid,
                                want_exit ? "wait" : "reading output");
        struct pollfd pf[4];
        int n = 0, i_in = -1, i_out = -1, i_err = -1;
        if (p->in_fd >= 0)
            pf[i_in = n++] = (struct pollfd){p->in_fd, POLLOUT, 0};
        if (p->out_fd >= 0)
            pf[i_out = n++] = (struct pollfd){p->out_fd, POLLIN, 0};
        if (p->err_fd >= 0)
            pf[i_err = n++] = (struct pollfd){p->err_fd, POLLIN, 0};
        if (want_exit && p->pidfd >= 0)
            pf[n++] = (struct pollfd){p->pidfd, POLLIN, 0};
        int cap = want_exit && p->pidfd < 0 ? EXIT_POLL_MS : -1;
        int r = poll(pf, (nfds_t)n, poll_ms(deadline, cap));
        if (r < 0) {
            if (errno != EINTR)
                return jj_error_errno(err, errno, "poll child process");
            if (jj_sys_signal_arrivals() != arrivals)
                return jj_error_set(err, JJ_EINTERRUPTED, "process %ld: interrupted by a signal",
                                    (long)p->pid);
            continue;
        }
        int rc = 0;
        if (i_in >= 0 && pf[i_in].revents)
            rc = feed_stdin(p, err);
        if (!rc && i_out >= 0 && pf[i_out].revents)
            rc = buf_read(&p->out, &p->out_fd, err);
        if (!rc && i_err >= 0 && pf[i_err].revents)
            rc = buf_read(&p->err, &p->err_fd, err);
        if (rc)
            return rc;
    }
}

static double deadline_after(double timeout)
{
    return timeout < 0 ? -1 : jj_sys_monotonic() + timeout;
}

int jj_proc_wait(jj_proc *p, double timeout, int *code, int *signo, jj_error *err)
{
    *code = -1;
    *signo = 0;
    if (p->pid <= 0)
        return jj_error_set(err, JJ_EINVAL, "wait: no process");
    int rc = pump(p, 1, deadline_after(timeout), err);
    if (rc)
        return rc;
    if (p->status == -1)
        return jj_error_set(err, JJ_EPROC, "process %ld was reaped elsewhere; exit status lost",
                            (long)p->pid);
    if (WIFEXITED(p->status)) {
        *code = WEXITSTATUS(p->status);
    } else if (WIFSIGNALED(p->status)) {
        *signo = WTERMSIG(p->status);
        *code = 128 + *signo;
    }
    return 0;
}

int jj_proc_read_all(jj_proc *p, double timeout, jj_error *err)
{
    if (p->pid <= 0)
        return jj_error_set(err, JJ_EINVAL, "read_all: no process");
    return pump(p, 0, deadline_after(timeout), err);
}

int jj_proc_kill(jj_proc *p, int signo, jj_error *err)
{
    if (p->pid <= 0)
        return jj_error_set(err, JJ_EINVAL, "kill: no process");
    if (p->reaped)
        return 0; /* its pid may already belong to someone else */
    if (p->pidfd >= 0) {
        if (pidfd_send_signal(p->pidfd, signo, NULL, 0) == 0)
            return 0;
        if (errno != ENOSYS)
            return kill_error(err, errno, p->pid, signo);
    }
    return jj_sys_kill(p->pid, signo, err);
}

int jj_proc_run(jj_proc *p, const jj_proc_opts *o, double timeout, int *code, int *signo,
                jj_error *err)
{
    *code = -1;
    *signo = 0;
    double deadline = deadline_after(timeout);
    int rc = jj_proc_spawn(p, o, err);
    if (rc)
        return rc;
    rc = pump(p, 0, deadline, err);
    if (!rc) {
        double left = deadline < 0 ? -1 : deadline - jj_sys_monotonic();
        rc = jj_proc_wait(p, deadline < 0 ? -1 : left > 0 ? left : 0, code, signo, err);
    }
    if (rc == JJ_ETIMEOUT) {
        jj_proc_kill(p, SIGKILL, NULL);
        try_reap(p, 1);
        jj_error_set(err, JJ_ETIMEOUT, "%s did not finish within %g seconds: killed",
                     o->argv[0], timeout);
    }
    return rc;
}

void jj_proc_close(jj_proc *p)
{
    close_fd(&p->in_fd);
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
    if (p->pid > 0 && !p->reaped) {
        try_reap(p, 0);
        if (!p->reaped) {
            if (p->pidfd < 0 || pidfd_send_signal(p->pidfd, SIGKILL, NULL, 0) != 0)
                kill(p->pid, SIGKILL);
            try_reap(p, 1);
        }
    }
    close_fd(&p->pidfd);
    free(p->out.data);
    free(p->err.data);
    jj_proc_init(p);
}
