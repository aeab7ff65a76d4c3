/* proc.h: supervised background processes (daemons) and readiness probes.
 *
 * When systemd is not available, mongod (juju-db) and the machine agent
 * run as daemons we start ourselves: detached from our session (double fork
 * + setsid) so they outlive the starting process and never get our
 * terminal's signals, with their pid recorded in a pid file that later runs
 * use to find, check and stop them. Short-lived children that the caller
 * waits for belong to sys.h (jj_proc_spawn and friends); the names below
 * share its jj_proc_ prefix but not its types.
 *
 * A pid file holds the decimal pid and a newline. A stale pid file may name
 * a pid the kernel has since reused; jj_proc_stop cannot tell and would
 * signal that process (pid files have this weakness everywhere; callers that
 * care compare a recorded definition first, as lua/juju/mongod.lua does).
 */
#ifndef JUJU_CORE_PROC_H
#define JUJU_CORE_PROC_H

#include <sys/types.h>

#include "error.h"

typedef struct jj_daemon_opts {
    const char *const *argv; /* NULL-terminated; argv[0] without '/' is looked up in PATH */
    const char *const *envp; /* NULL-terminated "K=V"; NULL keeps our environment */
    const char *cwd;         /* NULL: "/" (a daemon must not pin a mount point) */
    const char *log_file;    /* stdout+stderr appended here (created 0600); NULL: /dev/null */
    const char *pid_file;    /* written atomically (0600) with the pid; NULL: none */
} jj_daemon_opts;

/* Starts argv as a daemon: fork, setsid, fork again (so the daemon is no
 * session leader and is reparented away from us), stdin from /dev/null,
 * stdout/stderr to the log file, umask 077, default signal dispositions,
 * inherited descriptors other than 0-2 closed on exec. Returns once the
 * exec succeeded, with the daemon's pid in *pid and the pid file written;
 * an exec or chdir failure is reported here (JJ_ENOENT for a missing
 * program ...) and leaves no pid file. The daemon is not our child: nobody
 * here reaps it. */
int jj_proc_start_daemon(const jj_daemon_opts *o, pid_t *pid, jj_error *err);

/* Reads a pid file. JJ_ENOENT when absent, JJ_ECORRUPT when it does not
 * hold one positive decimal pid (optionally followed by a newline). */
int jj_proc_read_pid(const char *pid_file, pid_t *pid, jj_error *err);

/* 1 when a process with this pid exists and is not a zombie (a daemon whose
 * reaper is slow still counts as gone), else 0. Signalling permission is
 * not needed (EPERM means it exists). */
int jj_proc_alive(pid_t pid);

/* Stops a daemon: SIGTERM, wait up to timeout seconds for it to go, then
 * SIGKILL and wait up to JJ_PROC_KILL_GRACE more. pid <= 0 means "read it
 * from pid_file". A process that is already gone (or a missing pid file)
 * is success. The pid file (when given) is removed once the process is
 * gone. JJ_ETIMEOUT if it survives SIGKILL (uninterruptible sleep). */
int jj_proc_stop(pid_t pid, const char *pid_file, double timeout, jj_error *err);

#define JJ_PROC_KILL_GRACE 5.0

/* Polls until a TCP connect to host:port succeeds (the connection is closed
 * again at once) or timeout seconds pass: JJ_ETIMEOUT "nothing accepted
 * connections on host:port within Ns". Each connect attempt is bounded by
 * what is left of the timeout; name resolution (getaddrinfo) is not, so
 * pass numeric addresses or names resolved from /etc/hosts. */
int jj_proc_wait_port(const char *host, int port, double timeout, jj_error *err);

#endif
