/* sys.h: the process's view of the host: identity, clocks, signals and
 * child processes.
 *
 * Child processes are started with fork/exec and an argv array, never
 * through a shell, so no quoting bug can turn an argument into a command and
 * secrets never need to be spelled on a command line; their output is
 * collected with poll so neither pipe can deadlock the other.
 *
 * Signals are process-wide by nature. A signal watch is the one deliberate
 * exception to "no global mutable state" in the core: sys.c keeps, per signal
 * number, a pending flag and an arrival counter written by the handler
 * (sig_atomic_t), plus a reference count and the saved previous handler so
 * overlapping watches restore correctly. Watches must be opened and closed
 * from one thread.
 */
#ifndef JUJU_CORE_SYS_H
#define JUJU_CORE_SYS_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/utsname.h>

#include "error.h"

/* --- identity ----------------------------------------------------------- */

/* Login name of the real uid (getpwuid), else $USER; JJ_ENOENT if neither.
 * Writes a NUL-terminated string into out; JJ_ERANGE if it does not fit. */
int jj_sys_username(char *out, size_t size, jj_error *err);

/* Home directory of the real uid (getpwuid), else $HOME; as above. */
int jj_sys_home_dir(char *out, size_t size, jj_error *err);

int jj_sys_hostname(char *out, size_t size, jj_error *err);
int jj_sys_uname(struct utsname *u, jj_error *err);

/* Juju's architecture name for a uname machine string ("x86_64" ->
 * "amd64", "aarch64" -> "arm64" ...), or NULL when Juju has none. */
const char *jj_sys_arch(const char *machine);

/* --- os-release --------------------------------------------------------- */

typedef struct jj_sys_kv {
    char *key;
    char *value;
} jj_sys_kv;

/* Parses os-release(5) text: KEY=VALUE lines, comments, "double" quotes with
 * \" \\ \$ \` escapes, 'single' quotes, backslash escapes outside quotes.
 * Malformed lines are skipped. *out is a malloc'd array owned by the caller;
 * free with jj_sys_free_kv. */
int jj_sys_parse_os_release(const char *text, size_t len, jj_sys_kv **out, size_t *count,
                            jj_error *err);

/* Reads and parses path, or with path NULL /etc/os-release falling back to
 * /usr/lib/os-release. Ownership as jj_sys_parse_os_release. */
int jj_sys_os_release(const char *path, jj_sys_kv **out, size_t *count, jj_error *err);
void jj_sys_free_kv(jj_sys_kv *kv, size_t count);

/* --- environment and clocks --------------------------------------------- */

/* Sets name to value, or unsets it when value is NULL. */
int jj_sys_setenv(const char *name, const char *value, jj_error *err);

double jj_sys_time(void);      /* wall clock, seconds since the epoch */
double jj_sys_monotonic(void); /* CLOCK_MONOTONIC seconds */

/* Sleeps, resuming after unrelated interruptions; returns JJ_EINTERRUPTED
 * as soon as a watched signal (see below) arrives. */
int jj_sys_sleep(double seconds, jj_error *err);

/* --- signals ------------------------------------------------------------ */

/* Signal number for "INT" or "SIGINT" (and the other common names), or -1. */
int jj_sys_signal_number(const char *name);
/* "INT" for SIGINT ...; NULL for numbers without a name here. */
const char *jj_sys_signal_name(int signo);

#define JJ_SYS_WATCH_MAX 16

/* A set of signals whose arrival is recorded instead of acted upon. */
typedef struct jj_sys_sigwatch {
    int signals[JJ_SYS_WATCH_MAX];
    int count;
    int active; /* 0 once closed */
} jj_sys_sigwatch;

/* Installs recording handlers (no SA_RESTART, so blocking calls return
 * EINTR) for signos[0..count). JJ_EINVAL for KILL, STOP or bad numbers. */
int jj_sys_sigwatch_open(jj_sys_sigwatch *w, const int *signos, int count, jj_error *err);

/* The first of w's signals that arrived since the last call (clearing its
 * flag), or 0. */
int jj_sys_sigwatch_pending(jj_sys_sigwatch *w);

/* Restores the handlers in place before the watch. Idempotent. */
void jj_sys_sigwatch_close(jj_sys_sigwatch *w);

/* Increments whenever a watched signal arrives: compare two readings to
 * know whether one arrived in between. */
unsigned jj_sys_signal_arrivals(void);

/* --- cancellation -------------------------------------------------------- */

/* A long operation (an SSH wait, an HTTP transfer or its retry wait, a
 * sleep) stops early with JJ_EINTERRUPTED ("<what>: interrupted (SIGINT)")
 * as soon as one of these holds, checked at least every
 * JJ_SYS_CANCEL_SLICE seconds and at once when a signal interrupts a wait:
 *   - jj_sys_cancel_request() was called on its token (from a signal
 *     handler, another thread or a callback);
 *   - one of the signals of the token's watch is pending, even one that
 *     arrived before the operation began (it is left pending, so the watch's
 *     owner still sees it with jj_sys_sigwatch_pending);
 *   - any watched signal (any jj_sys_sigwatch in the process) arrived since
 *     the operation began (jj_sys_signal_arrivals).
 * Operations take a `const jj_sys_cancel *` that may be NULL (then only
 * the last rule applies). The token is borrowed for the operation only. */
typedef struct jj_sys_cancel {
    volatile sig_atomic_t requested;
    const jj_sys_sigwatch *watch; /* borrowed, or NULL */
} jj_sys_cancel;

#define JJ_SYS_CANCEL_SLICE 0.1

/* A token, not requested, stopping also on watch's signals (watch may be NULL). */
void jj_sys_cancel_init(jj_sys_cancel *c, const jj_sys_sigwatch *watch);

/* Asks every operation using c to stop. Async-signal-safe. */
void jj_sys_cancel_request(jj_sys_cancel *c);

/* What an operation remembers from its start: the token and the arrival
 * counter. */
typedef struct jj_sys_cancel_scope {
    const jj_sys_cancel *token; /* may be NULL */
    unsigned arrivals;
} jj_sys_cancel_scope;

/* Starts a scope: called when the operation begins. */
void jj_sys_cancel_begin(jj_sys_cancel_scope *scope, const jj_sys_cancel *token);

/* 0 while nothing asked to stop; else JJ_EINTERRUPTED, the message
 * "<what>: interrupted (SIGINT)" naming the signal when one caused it. */
int jj_sys_cancel_check(const jj_sys_cancel_scope *scope, const char *what, jj_error *err);

/* Sleeps up to seconds, returning JJ_EINTERRUPTED (message as above) when
 * the scope is cancelled meanwhile; unrelated interruptions resume it. */
int jj_sys_cancel_sleep(const jj_sys_cancel_scope *scope, double seconds, const char *what,
                        jj_error *err);

/* kill(2); an unknown pid is JJ_ENOENT. */
int jj_sys_kill(pid_t pid, int signo, jj_error *err);
int jj_sys_raise(int signo, jj_error *err);

/* --- child processes ---------------------------------------------------- */

typedef enum {
    JJ_STDIO_INHERIT,
    JJ_STDIO_NULL,   /* /dev/null */
    JJ_STDIO_PIPE,   /* collected by the parent (stdout/stderr only) */
    JJ_STDIO_FILE,   /* appended to path (stdout/stderr only), created 0600 */
    JJ_STDIO_DATA    /* stdin fed from a buffer (stdin only) */
} jj_stdio_mode;

typedef struct jj_proc_opts {
    const char *const *argv; /* NULL-terminated; argv[0] is looked up in PATH */
    const char *const *envp; /* NULL-terminated "K=V"; NULL keeps the environment */
    const char *cwd;         /* NULL: unchanged */
    jj_stdio_mode stdin_mode;
    const char *stdin_data; /* JJ_STDIO_DATA: borrowed until jj_proc_close */
    size_t stdin_len;
    jj_stdio_mode stdout_mode;
    const char *stdout_path; /* JJ_STDIO_FILE */
    jj_stdio_mode stderr_mode;
    const char *stderr_path;
} jj_proc_opts;

typedef struct jj_buf {
    char *data; /* malloc'd, owned by the jj_proc; NUL-terminated when non-NULL */
    size_t len, cap;
} jj_buf;

typedef struct jj_proc {
    pid_t pid;   /* -1 before spawn and after close */
    int reaped;  /* status is valid */
    int status;  /* raw waitpid status */
    int pidfd;   /* readable when the child exits; -1 if unsupported */
    int in_fd, out_fd, err_fd; /* parent ends of pipes, -1 when none or done */
    const char *in_data;
    size_t in_len, in_off;
    jj_buf out, err; /* everything read so far from stdout / stderr pipes */
} jj_proc;

void jj_proc_init(jj_proc *p);

/* Starts the child. An exec or chdir failure in the child is reported here
 * (JJ_ENOENT for a missing program ...), not as exit code 127. */
int jj_proc_spawn(jj_proc *p, const jj_proc_opts *o, jj_error *err);

/* Waits for exit, feeding stdin and draining pipes meanwhile (so a chatty
 * child cannot block). timeout < 0 waits forever; JJ_ETIMEOUT leaves the
 * child running; JJ_EINTERRUPTED when a watched signal arrives. *code is
 * the exit status, or 128+signal with *signo set (else *signo = 0). */
int jj_proc_wait(jj_proc *p, double timeout, int *code, int *signo, jj_error *err);

/* Collects stdout and stderr until both reach EOF (feeding stdin too);
 * results accumulate in p->out and p->err. Errors as jj_proc_wait. */
int jj_proc_read_all(jj_proc *p, double timeout, jj_error *err);

/* Sends signo unless the child was already reaped (then nothing to do). */
int jj_proc_kill(jj_proc *p, int signo, jj_error *err);

/* spawn + read_all + wait within timeout (< 0: none). On JJ_ETIMEOUT the
 * child is killed and reaped. Output is in p->out / p->err; the caller
 * still calls jj_proc_close. */
int jj_proc_run(jj_proc *p, const jj_proc_opts *o, double timeout, int *code, int *signo,
                jj_error *err);

/* Reaps the child, killing it (SIGKILL) first if still running; closes the
 * pipes and frees the buffers. Idempotent. */
void jj_proc_close(jj_proc *p);

#endif
