/* test_fs.c: core/fs: durability helpers, modes under any umask, exclusive
 * create, tree removal, snapshots and flock locks across processes. */
#include "check.h"
#include "fs.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char base[256];

static void setup(void)
{
    char *d;
    jj_error err;
    if (jj_fs_mkdtemp("/tmp/juju-test-fs-", &d, &err) != 0) {
        fprintf(stderr, "mkdtemp: %s\n", err.message);
        exit(2);
    }
    snprintf(base, sizeof base, "%s", d);
    free(d);
}

static void teardown(void)
{
    jj_error err;
    jj_fs_remove_tree(base, &err);
}

static const char *P(const char *rel)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 512, "%s/%s", base, rel);
    return b;
}

static int mode_of(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return -1;
    return (int)(sb.st_mode & 07777);
}

static char *slurp(const char *path)
{
    char *buf = NULL;
    size_t len;
    jj_error err;
    if (jj_fs_read_file(path, &buf, &len, &err) != 0)
        return NULL;
    return buf;
}

static size_t count_entries(const char *dir)
{
    char **names;
    size_t n = 0;
    jj_error err;
    if (jj_fs_list(dir, &names, &n, &err) != 0)
        return (size_t)-1;
    jj_fs_free_names(names, n);
    return n;
}

static void test_write_atomic(void)
{
    setup();
    jj_error err;
    mode_t old = umask(0);
    CHECK_INT(jj_fs_write_atomic(P("a.jenv"), "one", 3, 0600, &err), 0);
    CHECK_INT(mode_of(P("a.jenv")), 0600);
    umask(0277);
    CHECK_INT(jj_fs_write_atomic(P("b"), "two", 3, 0644, &err), 0);
    CHECK_INT(mode_of(P("b")), 0644);
    umask(old);
    char *s = slurp(P("a.jenv"));
    CHECK_STR(s, "one");
    free(s);
    CHECK_INT(jj_fs_write_atomic(P("a.jenv"), "replaced", 8, 0600, &err), 0);
    s = slurp(P("a.jenv"));
    CHECK_STR(s, "replaced");
    free(s);
    /* only the two targets: no temp file left behind */
    CHECK_INT(count_entries(base), 2);
    /* failure: directory missing */
    CHECK_INT(jj_fs_write_atomic(P("missing/x"), "x", 1, 0600, &err), JJ_ENOENT);
    CHECK(strstr(err.message, "missing/x") != NULL);
    /* failure at rename (target is a non-empty directory): temp removed */
    CHECK_INT(jj_fs_mkdir(P("d"), 0700, &err), 0);
    CHECK_INT(jj_fs_write_atomic(P("d/f"), "x", 1, 0600, &err), 0);
    CHECK(jj_fs_write_atomic(P("d"), "x", 1, 0600, &err) < 0);
    CHECK_INT(count_entries(base), 3);
    CHECK_INT(count_entries(P("d")), 1);
    teardown();
}

static void test_read_file(void)
{
    setup();
    jj_error err;
    char *buf = (char *)1;
    size_t len = 99;
    CHECK_INT(jj_fs_read_file(P("nope"), &buf, &len, &err), JJ_ENOENT);
    CHECK(buf == NULL);
    CHECK_STR(jj_error_code_name(err.code), "ENOENT");
    CHECK_INT(jj_fs_read_file(base, &buf, &len, &err), JJ_EISDIR);
    CHECK_INT(jj_fs_write_atomic(P("empty"), "", 0, 0600, &err), 0);
    CHECK_INT(jj_fs_read_file(P("empty"), &buf, &len, &err), 0);
    CHECK_INT(len, 0);
    CHECK_STR(buf, "");
    free(buf);
    /* binary content with NULs survives */
    CHECK_INT(jj_fs_write_atomic(P("bin"), "a\0b", 3, 0600, &err), 0);
    CHECK_INT(jj_fs_read_file(P("bin"), &buf, &len, &err), 0);
    CHECK_INT(len, 3);
    CHECK(buf && memcmp(buf, "a\0b", 3) == 0);
    free(buf);
    /* files that lie about their size */
    CHECK_INT(jj_fs_read_file("/proc/self/status", &buf, &len, &err), 0);
    CHECK(len > 0 && strstr(buf, "Pid:") != NULL);
    free(buf);
    teardown();
}

static void test_create_exclusive(void)
{
    setup();
    jj_error err;
    mode_t old = umask(0022);
    CHECK_INT(jj_fs_create_exclusive(P("env.jenv"), "first", 5, 0600, &err), 0);
    CHECK_INT(mode_of(P("env.jenv")), 0600);
    CHECK_INT(jj_fs_create_exclusive(P("env.jenv"), "second", 6, 0600, &err), JJ_EEXIST);
    CHECK(strstr(err.message, "already exists") != NULL);
    char *s = slurp(P("env.jenv"));
    CHECK_STR(s, "first");
    free(s);
    /* a dangling symlink also counts as "something is there" */
    CHECK_INT(jj_fs_symlink(P("nowhere"), P("link"), &err), 0);
    CHECK_INT(jj_fs_create_exclusive(P("link"), "x", 1, 0600, &err), JJ_EEXIST);
    CHECK(!jj_fs_exists(P("nowhere")));
    umask(0777);
    CHECK_INT(jj_fs_create_exclusive(P("open"), "x", 1, 0640, &err), 0);
    CHECK_INT(mode_of(P("open")), 0640);
    umask(old);
    teardown();
}

static void test_append_sync(void)
{
    setup();
    jj_error err;
    mode_t old = umask(0777);
    CHECK_INT(jj_fs_append_sync(P("journal"), "a\n", 2, 0600, &err), 0);
    umask(old);
    CHECK_INT(mode_of(P("journal")), 0600);
    CHECK_INT(jj_fs_append_sync(P("journal"), "b\n", 2, 0644, &err), 0);
    CHECK_INT(mode_of(P("journal")), 0600); /* existing file keeps its mode */
    char *s = slurp(P("journal"));
    CHECK_STR(s, "a\nb\n");
    free(s);
    CHECK_INT(jj_fs_append_sync(P("no/journal"), "x", 1, 0600, &err), JJ_ENOENT);
    teardown();
}

static void test_mkdir(void)
{
    setup();
    jj_error err;
    mode_t old = umask(0777);
    CHECK_INT(jj_fs_mkdir(P("environments"), 0700, &err), 0);
    CHECK_INT(mode_of(P("environments")), 0700);
    CHECK_INT(jj_fs_mkdir(P("environments"), 0700, &err), JJ_EEXIST);
    CHECK_INT(jj_fs_mkdir_p(P("x/y/z"), 0750, &err), 0);
    umask(old);
    CHECK_INT(mode_of(P("x")), 0750);
    CHECK_INT(mode_of(P("x/y/z")), 0750);
    CHECK_INT(jj_fs_mkdir_p(P("x/y/z"), 0700, &err), 0); /* existing: fine, untouched */
    CHECK_INT(mode_of(P("x/y/z")), 0750);
    CHECK_INT(jj_fs_mkdir_p(P("x//y/w/"), 0700, &err), 0);
    CHECK_INT(mode_of(P("x/y/w")), 0700);
    CHECK_INT(jj_fs_write_atomic(P("file"), "", 0, 0600, &err), 0);
    CHECK_INT(jj_fs_mkdir_p(P("file/sub"), 0700, &err), JJ_ENOTDIR);
    CHECK_INT(jj_fs_mkdir_p(P("file"), 0700, &err), JJ_ENOTDIR);
    CHECK_STR(jj_error_code_name(err.code), "ENOTDIR");
    CHECK_INT(jj_fs_mkdir(P("no/such"), 0700, &err), JJ_ENOENT);
    CHECK_INT(jj_fs_mkdir_p("", 0700, &err), JJ_EINVAL);
    teardown();
}

static void test_stat_and_links(void)
{
    setup();
    jj_error err;
    jj_fs_stat_t st;
    CHECK_INT(jj_fs_write_atomic(P("f"), "12345", 5, 0640, &err), 0);
    CHECK_INT(jj_fs_symlink("f", P("l"), &err), 0);
    CHECK_INT(jj_fs_stat(P("l"), &st, &err), 0);
    CHECK_INT(st.type, JJ_FS_FILE);
    CHECK_INT(st.mode, 0640);
    CHECK_INT(st.size, 5);
    CHECK_INT(st.uid, getuid());
    CHECK(st.mtime > 1e9);
    CHECK_INT(jj_fs_link(P("f"), P("h"), &err), 0);
    CHECK_INT(jj_fs_stat(P("h"), &st, &err), 0);
    CHECK_INT(st.type, JJ_FS_FILE);
    CHECK_INT(st.size, 5);
    CHECK_INT(jj_fs_link(P("f"), P("h"), &err), JJ_EEXIST);
    CHECK_INT(jj_fs_remove(P("h"), &err), 0);
    CHECK_INT(jj_fs_lstat(P("l"), &st, &err), 0);
    CHECK_INT(st.type, JJ_FS_LINK);
    CHECK_STR(jj_fs_type_name(st.type), "link");
    CHECK_INT(jj_fs_stat(base, &st, &err), 0);
    CHECK_STR(jj_fs_type_name(st.type), "dir");
    CHECK_INT(jj_fs_stat(P("none"), &st, &err), JJ_ENOENT);
    char *s;
    CHECK_INT(jj_fs_readlink(P("l"), &s, &err), 0);
    CHECK_STR(s, "f");
    free(s);
    CHECK_INT(jj_fs_readlink(P("f"), &s, &err), JJ_EINVAL);
    CHECK_INT(jj_fs_realpath(P("l"), &s, &err), 0);
    CHECK_STR(s, P("f"));
    free(s);
    CHECK(jj_fs_exists(P("l")));
    CHECK_INT(jj_fs_chmod(P("f"), 0600, &err), 0);
    CHECK_INT(mode_of(P("f")), 0600);
    CHECK_INT(jj_fs_rename(P("f"), P("g"), &err), 0);
    CHECK(!jj_fs_exists(P("l"))); /* now dangling */
    CHECK_INT(jj_fs_remove(P("l"), &err), 0);
    CHECK_INT(jj_fs_remove(P("l"), &err), JJ_ENOENT);
    CHECK_INT(jj_fs_rename(P("none"), P("x"), &err), JJ_ENOENT);
    teardown();
}

static void test_remove_tree(void)
{
    setup();
    jj_error err;
    CHECK_INT(jj_fs_mkdir_p(P("outside/keep"), 0700, &err), 0);
    CHECK_INT(jj_fs_write_atomic(P("outside/keep/precious"), "x", 1, 0600, &err), 0);
    CHECK_INT(jj_fs_mkdir_p(P("tree/a/b/c"), 0700, &err), 0);
    CHECK_INT(jj_fs_write_atomic(P("tree/a/f1"), "1", 1, 0600, &err), 0);
    CHECK_INT(jj_fs_write_atomic(P("tree/a/b/c/f2"), "2", 1, 0000, &err), 0);
    CHECK_INT(jj_fs_symlink(P("outside"), P("tree/a/link-to-dir"), &err), 0);
    CHECK_INT(jj_fs_symlink("/nonexistent", P("tree/dangling"), &err), 0);
    CHECK_INT(jj_fs_remove_tree(P("tree"), &err), 0);
    CHECK(!jj_fs_exists(P("tree")));
    CHECK(jj_fs_exists(P("outside/keep/precious"))); /* symlink not followed */
    CHECK_INT(jj_fs_remove_tree(P("tree"), &err), 0);   /* missing is fine */
    /* a symlink to a directory is removed itself */
    CHECK_INT(jj_fs_symlink(P("outside"), P("ln"), &err), 0);
    CHECK_INT(jj_fs_remove_tree(P("ln"), &err), 0);
    CHECK(jj_fs_exists(P("outside/keep/precious")));
    struct stat sb;
    CHECK(lstat(P("ln"), &sb) != 0);
    CHECK_INT(jj_fs_remove_tree("/", &err), JJ_EINVAL);
    CHECK_INT(jj_fs_remove_tree("", &err), JJ_EINVAL);
    CHECK_INT(jj_fs_remove(P("outside"), &err), JJ_EIO); /* not empty */
    teardown();
    CHECK(!jj_fs_exists(base));
}

static void test_list(void)
{
    setup();
    jj_error err;
    const char *names[] = {"zeta", "Alpha", "beta", ".hidden"};
    for (int i = 0; i < 4; i++)
        CHECK_INT(jj_fs_write_atomic(P(names[i]), "", 0, 0600, &err), 0);
    char **v;
    size_t n;
    CHECK_INT(jj_fs_list(base, &v, &n, &err), 0);
    CHECK_INT(n, 4);
    if (n == 4) {
        CHECK_STR(v[0], ".hidden");
        CHECK_STR(v[1], "Alpha");
        CHECK_STR(v[2], "beta");
        CHECK_STR(v[3], "zeta");
    }
    jj_fs_free_names(v, n);
    CHECK_INT(jj_fs_list(P("none"), &v, &n, &err), JJ_ENOENT);
    CHECK_INT(jj_fs_list(P("zeta"), &v, &n, &err), JJ_ENOTDIR);
    teardown();
}

static void test_copy_file(void)
{
    setup();
    jj_error err;
    size_t big = 300000; /* several copy chunks */
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)(i * 31 + 7);
    CHECK_INT(jj_fs_write_atomic(P("src"), data, big, 0755, &err), 0);
    CHECK_INT(jj_fs_copy_file(P("src"), P("dst"), -1, &err), 0);
    CHECK_INT(mode_of(P("dst")), 0755);
    char *got;
    size_t len;
    CHECK_INT(jj_fs_read_file(P("dst"), &got, &len, &err), 0);
    CHECK_INT(len, big);
    CHECK(got && memcmp(got, data, big) == 0);
    free(got);
    CHECK_INT(jj_fs_copy_file(P("src"), P("dst2"), 0600, &err), 0);
    CHECK_INT(mode_of(P("dst2")), 0600);
    CHECK_INT(jj_fs_copy_file(P("none"), P("dst3"), -1, &err), JJ_ENOENT);
    CHECK_INT(jj_fs_copy_file(base, P("dst3"), -1, &err), JJ_EISDIR);
    /* a read error mid-copy (reading /proc/self/mem at 0 fails with EIO)
     * leaves neither the target nor a temp file */
    CHECK_INT(jj_fs_copy_file("/proc/self/mem", P("dst3"), 0600, &err), JJ_EIO);
    CHECK_INT(count_entries(base), 3);
    free(data);
    teardown();
}

static void test_mkdtemp(void)
{
    setup();
    jj_error err;
    char *d;
    mode_t old = umask(0777);
    CHECK_INT(jj_fs_mkdtemp(P("juju-tools-"), &d, &err), 0);
    umask(old);
    CHECK(d && strncmp(d, P("juju-tools-"), strlen(P("juju-tools-"))) == 0);
    CHECK_INT(strlen(d), strlen(P("juju-tools-")) + 6);
    CHECK_INT(mode_of(d), 0700);
    free(d);
    CHECK_INT(jj_fs_mkdtemp(P("no/such-"), &d, &err), JJ_ENOENT);
    CHECK(d == NULL);
    teardown();
}

static void test_tree_snapshot(void)
{
    setup();
    jj_error err;
    CHECK_INT(jj_fs_mkdir_p(P("environments"), 0700, &err), 0);
    CHECK_INT(jj_fs_write_atomic(P("environments/x.jenv"), "abc", 3, 0600, &err), 0);
    CHECK_INT(jj_fs_write_atomic(P("environments.yaml"), "", 0, 0644, &err), 0);
    CHECK_INT(jj_fs_symlink("environments", P("current"), &err), 0);
    jj_fs_entry *e;
    size_t n;
    CHECK_INT(jj_fs_tree_snapshot(base, &e, &n, &err), 0);
    CHECK_INT(n, 4);
    if (n == 4) {
        CHECK_STR(e[0].path, "current");
        CHECK_INT(e[0].st.type, JJ_FS_LINK);
        CHECK_STR(e[0].target, "environments");
        CHECK_STR(e[1].path, "environments");
        CHECK_INT(e[1].st.type, JJ_FS_DIR);
        CHECK_INT(e[1].st.mode, 0700);
        CHECK_STR(e[2].path, "environments.yaml");
        CHECK_INT(e[2].st.mode, 0644);
        CHECK_STR(e[3].path, "environments/x.jenv");
        CHECK_INT(e[3].st.size, 3);
        CHECK(e[3].target == NULL);
    }
    jj_fs_free_entries(e, n);
    CHECK_INT(jj_fs_tree_snapshot(P("none"), &e, &n, &err), JJ_ENOENT);
    teardown();
}

static void test_umask(void)
{
    mode_t old = jj_fs_umask(0027);
    CHECK_INT(jj_fs_umask(old), 0027);
}

/* Child: try the lock once; exit 0 if acquired, 1 if LOCKED with the
 * expected holder message in the error, 2 otherwise. */
static int child_try_lock(const char *path, const char *expect_holder)
{
    pid_t pid = fork();
    if (pid == 0) {
        jj_fs_lock lk;
        jj_error err;
        jj_fs_lock_init(&lk);
        int rc = jj_fs_lock_acquire(&lk, path, 0, 0.01, "child", &err);
        if (rc == 0)
            _exit(0);
        if (rc == JJ_ELOCKED && strstr(err.message, expect_holder) && strstr(err.message, path))
            _exit(1);
        _exit(2);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_lock_contention(void)
{
    setup();
    jj_error err;
    jj_fs_lock lk;
    jj_fs_lock_init(&lk);
    const char *path = P("env.lock");
    mode_t old = umask(0277);
    CHECK_INT(jj_fs_lock_acquire(&lk, path, 0, 0.05, "pid: 123, operation: writing", &err), 0);
    umask(old);
    CHECK_INT(mode_of(path), 0600);
    CHECK_INT(child_try_lock(path, "held by pid: 123, operation: writing"), 1);
    char *holder;
    CHECK_INT(jj_fs_lock_holder(path, &holder, &err), 0);
    CHECK_STR(holder, "pid: 123, operation: writing");
    free(holder);
    /* a second handle in the same process contends too */
    jj_fs_lock lk2;
    jj_fs_lock_init(&lk2);
    CHECK_INT(jj_fs_lock_acquire(&lk2, path, 0.1, 0.02, "other", &err), JJ_ELOCKED);
    CHECK(strncmp(err.message, "lock ", 5) == 0 && strstr(err.message, path) != NULL);
    CHECK(strstr(err.message, "held by pid: 123") != NULL);
    CHECK_INT(jj_fs_lock_set_message(&lk, "pid: 123, operation: destroying", &err), 0);
    CHECK_INT(child_try_lock(path, "operation: destroying"), 1);
    jj_fs_lock_release(&lk);
    jj_fs_lock_release(&lk); /* idempotent */
    CHECK_INT(jj_fs_lock_holder(path, &holder, &err), 0);
    CHECK(holder == NULL);
    CHECK_INT(child_try_lock(path, ""), 0);
    CHECK_INT(jj_fs_lock_holder(P("no-such.lock"), &holder, &err), 0);
    CHECK(holder == NULL);
    CHECK_INT(jj_fs_lock_acquire(&lk2, P("no/dir.lock"), 0, 0.05, NULL, &err), JJ_ENOENT);
    teardown();
}

static void test_lock_dies_with_holder(void)
{
    setup();
    const char *path = P("env.lock");
    int ready[2];
    CHECK_INT(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {
        jj_fs_lock lk;
        jj_error err;
        jj_fs_lock_init(&lk);
        char msg[64];
        snprintf(msg, sizeof msg, "pid: %d, operation: writing", (int)getpid());
        char ok = jj_fs_lock_acquire(&lk, path, 0, 0.05, msg, &err) == 0 ? 'y' : 'n';
        if (write(ready[1], &ok, 1) != 1)
            _exit(3);
        for (;;)
            pause();
    }
    close(ready[1]);
    char ok = 0;
    CHECK_INT(read(ready[0], &ok, 1), 1);
    close(ready[0]);
    CHECK_INT(ok, 'y');
    char expect[64];
    snprintf(expect, sizeof expect, "pid: %d, operation: writing", (int)pid);
    jj_error err;
    char *holder = NULL;
    CHECK_INT(jj_fs_lock_holder(path, &holder, &err), 0);
    CHECK_STR(holder, expect);
    free(holder);
    jj_fs_lock lk;
    jj_fs_lock_init(&lk);
    CHECK_INT(jj_fs_lock_acquire(&lk, path, 0, 0.05, "me", &err), JJ_ELOCKED);
    CHECK(strstr(err.message, expect) != NULL);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    /* the stale message is not reported once nobody holds the lock */
    CHECK_INT(jj_fs_lock_holder(path, &holder, &err), 0);
    CHECK(holder == NULL);
    CHECK_INT(jj_fs_lock_acquire(&lk, path, 0, 0.05, "me", &err), 0);
    CHECK_INT(jj_fs_lock_holder(path, &holder, &err), 0);
    CHECK_STR(holder, "me");
    free(holder);
    jj_fs_lock_release(&lk);
    teardown();
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_lock_waits(void)
{
    setup();
    const char *path = P("env.lock");
    int ready[2];
    CHECK_INT(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {
        jj_fs_lock lk;
        jj_error err;
        jj_fs_lock_init(&lk);
        char ok = jj_fs_lock_acquire(&lk, path, 0, 0.05, "brief holder", &err) == 0 ? 'y' : 'n';
        if (write(ready[1], &ok, 1) != 1)
            _exit(3);
        usleep(300000);
        jj_fs_lock_release(&lk);
        _exit(0);
    }
    close(ready[1]);
    char ok = 0;
    CHECK_INT(read(ready[0], &ok, 1), 1);
    close(ready[0]);
    jj_fs_lock lk;
    jj_fs_lock_init(&lk);
    jj_error err;
    double t0 = now();
    CHECK_INT(jj_fs_lock_acquire(&lk, path, 5, 0.02, "waiter", &err), 0);
    double waited = now() - t0;
    CHECK(waited > 0.15 && waited < 4);
    jj_fs_lock_release(&lk);
    int st;
    waitpid(pid, &st, 0);
    teardown();
}

int main(void)
{
    RUN(test_write_atomic);
    RUN(test_read_file);
    RUN(test_create_exclusive);
    RUN(test_append_sync);
    RUN(test_mkdir);
    RUN(test_stat_and_links);
    RUN(test_remove_tree);
    RUN(test_list);
    RUN(test_copy_file);
    RUN(test_mkdtemp);
    RUN(test_tree_snapshot);
    RUN(test_umask);
    RUN(test_lock_contention);
    RUN(test_lock_dies_with_holder);
    RUN(test_lock_waits);
    return check_summary();
}
