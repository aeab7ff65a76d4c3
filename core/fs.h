/* fs.h: the file-system operations the client's state depends on.
 *
 * JUJU_HOME holds secrets (.jenv files with admin-secret and provider
 * credentials) and a journal that must survive kill -9, so every write here
 * is durable (fsync of the file and of its directory), atomic where a reader
 * could otherwise see half a file (temp file + rename), exclusive where two
 * concurrent `prepare`s must not silently overwrite each other (O_EXCL), and
 * gets exactly the permission bits asked for whatever the umask is. Locks are
 * flock(2) locks, which the kernel drops when the holder dies.
 *
 * All descriptors are opened O_CLOEXEC so child processes never inherit a
 * lock or a secret file. Every function returns 0 or a negative JJ_E* code
 * and fills `err` (which may be NULL).
 */
#ifndef JUJU_CORE_FS_H
#define JUJU_CORE_FS_H

#include <stddef.h>
#include <limits.h>
#include <sys/types.h>

#include "error.h"

/* Reads the whole file. On success *out is a malloc'd buffer of *len bytes
 * plus a terminating NUL, owned by the caller (free()). EISDIR for a dir. */
int jj_fs_read_file(const char *path, char **out, size_t *len, jj_error *err);

/* Reads a configuration file the user named: a regular file only (a FIFO,
 * a device such as /dev/zero or a socket is JJ_EINVAL "not a regular
 * file", opened without blocking so a FIFO never hangs), at most max_size
 * bytes (JJ_ERANGE beyond, also when it grows while read). Same ownership
 * as jj_fs_read_file. */
int jj_fs_read_regular(const char *path, size_t max_size, char **out, size_t *len, jj_error *err);

/* Replaces path with data so that readers see the old or the new content,
 * never a mix: a temp file in the same directory (created O_EXCL, given
 * mode), fsync, rename over path, fsync the directory. The temp file is
 * removed on failure. */
int jj_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                       jj_error *err);
/* The same, durable only when durable != 0 (0: atomic for readers, but no
 * fsync: for files whose durability is not the client's to promise). */
int jj_fs_write_atomic_ex(const char *path, const void *data, size_t len, mode_t mode, int durable,
                          jj_error *err);

/* The steps of jj_fs_write_atomic, for modules that stream a file into
 * place (storage objects, unpacked tools): begin creates the temporary
 * file beside path with exactly mode; the caller writes to af->fd; commit
 * fsyncs, renames over path and fsyncs the directory (the temp file is
 * removed if any step fails); abort removes the temp file. path is
 * borrowed until commit or abort. */
typedef struct jj_fs_atomic {
    int fd;
    const char *path;
    int durable; /* 1 after begin; 0 makes commit skip both fsyncs (still atomic) */
    char tmp[PATH_MAX];
} jj_fs_atomic;
int jj_fs_atomic_begin(jj_fs_atomic *af, const char *path, mode_t mode, jj_error *err);
int jj_fs_atomic_commit(jj_fs_atomic *af, jj_error *err);
void jj_fs_atomic_abort(jj_fs_atomic *af);

/* write(2) until done, retrying EINTR; 0, or -1 with errno set. */
int jj_fs_write_all(int fd, const void *data, size_t len);

/* fsyncs the directory holding path ("." for a bare name), which makes a
 * rename, a new name or a removal durable; file systems that refuse fsync
 * on directories (EINVAL) are taken as done. */
int jj_fs_fsync_parent(const char *path, jj_error *err);

/* Creates path, failing with JJ_EEXIST if anything is there; writes data,
 * fsyncs file and directory. On a write failure the new file is removed. */
int jj_fs_create_exclusive(const char *path, const void *data, size_t len, mode_t mode,
                           jj_error *err);

/* Appends data with O_APPEND and fsyncs (journal records). A new file gets
 * `mode` and its directory is fsynced so the file itself survives a crash. */
int jj_fs_append_sync(const char *path, const void *data, size_t len, mode_t mode,
                      jj_error *err);
/* The same; durable == 0: no fsync (the append still lands whole). */
int jj_fs_append_ex(const char *path, const void *data, size_t len, mode_t mode, int durable,
                    jj_error *err);

/* mkdir with exactly `mode` (umask does not apply); JJ_EEXIST if present. */
int jj_fs_mkdir(const char *path, mode_t mode, jj_error *err);

/* Creates path and missing parents with exactly `mode`; existing
 * directories are left alone; a non-directory component is JJ_ENOTDIR. */
int jj_fs_mkdir_p(const char *path, mode_t mode, jj_error *err);

typedef enum { JJ_FS_FILE, JJ_FS_DIR, JJ_FS_LINK, JJ_FS_OTHER } jj_fs_type;

typedef struct jj_fs_stat_t {
    jj_fs_type type;
    mode_t mode;     /* permission bits only (07777) */
    long long size;
    double mtime;    /* seconds since the epoch, with sub-second part */
    uid_t uid;
    gid_t gid;
} jj_fs_stat_t;

/* Returns the type name used by the Lua API: "file", "dir", "link", "other". */
const char *jj_fs_type_name(jj_fs_type type);

int jj_fs_stat(const char *path, jj_fs_stat_t *st, jj_error *err);
int jj_fs_lstat(const char *path, jj_fs_stat_t *st, jj_error *err); /* no symlink follow */

/* 1 if path exists (following symlinks), else 0. */
int jj_fs_exists(const char *path);

int jj_fs_chmod(const char *path, mode_t mode, jj_error *err);

/* Removes a file, symlink or empty directory. */
int jj_fs_remove(const char *path, jj_error *err);

/* Removes path recursively without following symlinks (a symlink to a
 * directory is removed, not its target). A missing path is success; ""
 * and "/" are refused (JJ_EINVAL). */
int jj_fs_remove_tree(const char *path, jj_error *err);

int jj_fs_rename(const char *from, const char *to, jj_error *err);
int jj_fs_symlink(const char *target, const char *path, jj_error *err);
/* A second name (hard link) for the existing file; fails across
 * filesystems and when path exists (err carries the errno). */
int jj_fs_link(const char *existing, const char *path, jj_error *err);

/* *out is a malloc'd NUL-terminated string owned by the caller. */
int jj_fs_readlink(const char *path, char **out, jj_error *err);
/* *out is a malloc'd NUL-terminated string owned by the caller. */
int jj_fs_realpath(const char *path, char **out, jj_error *err);

/* Directory entries without "." and "..", sorted bytewise. *names is a
 * malloc'd array of *count malloc'd strings, owned by the caller; free it
 * with jj_fs_free_names. */
int jj_fs_list(const char *dir, char ***names, size_t *count, jj_error *err);
void jj_fs_free_names(char **names, size_t count);

/* Streams src into dst with a fixed buffer, atomically like
 * jj_fs_write_atomic. mode < 0 keeps src's permission bits. */
int jj_fs_copy_file(const char *src, const char *dst, int mode, jj_error *err);

/* Creates a fresh 0700 directory named prefix + 6 random characters.
 * *out is the malloc'd path, owned by the caller. */
int jj_fs_mkdtemp(const char *prefix, char **out, jj_error *err);

/* One entry of a tree snapshot: path relative to the root, lstat data and,
 * for symlinks, the link target. */
typedef struct jj_fs_entry {
    char *path;
    char *target; /* symlinks only, else NULL */
    jj_fs_stat_t st;
} jj_fs_entry;

/* Recursive lstat listing of everything under dir (dir itself excluded),
 * sorted by path; symlinks are listed, never followed. *entries is a
 * malloc'd array owned by the caller; free with jj_fs_free_entries. */
int jj_fs_tree_snapshot(const char *dir, jj_fs_entry **entries, size_t *count, jj_error *err);
void jj_fs_free_entries(jj_fs_entry *entries, size_t count);

/* A stamp of the files under dir whose names end in suffix (".lua"), in
 * dir and in its folders named [A-Za-z0-9_-]+ (recursively, following
 * symlinks): "rel=SIZE:SEC.NSEC;..." sorted bytewise by relative path (the
 * modification time to the nanosecond), "rel=missing" for a file that
 * cannot be stat'ed. It
 * changes whenever one of those files is edited, added or removed.
 * Unreadable folders count as empty. *out is malloc'd, owned by the caller.
 * (lua/juju/provider_list.lua: one call instead of a list and a stat per
 * file from Lua on every `juju help`.) */
int jj_fs_tree_stamp(const char *dir, const char *suffix, char **out, jj_error *err);

/* Sets the process umask and returns the previous one. */
mode_t jj_fs_umask(mode_t mask);

/* An advisory, process-death-safe lock: flock(LOCK_EX) on a lock file. */
typedef struct jj_fs_lock {
    int fd; /* -1 when not held */
} jj_fs_lock;

/* Marks lk as not held (call before jj_fs_lock_acquire). */
void jj_fs_lock_init(jj_fs_lock *lk);

/* Takes the lock on `path` (created 0600 if missing; when the file was
 * removed or replaced while waiting, the new one is opened), retrying every
 * `interval` seconds until `timeout` seconds have passed on the monotonic
 * clock (timeout 0: try once). On success writes `message` (may be NULL)
 * into the lock file so contenders can say who holds it. On contention
 * returns JJ_ELOCKED with "lock <path> held by <holder message>". */
int jj_fs_lock_acquire(jj_fs_lock *lk, const char *path, double timeout, double interval,
                       const char *message, jj_error *err);

/* Replaces the holder message of a held lock. */
int jj_fs_lock_set_message(jj_fs_lock *lk, const char *message, jj_error *err);

/* Clears the holder message and drops the lock. Idempotent. */
void jj_fs_lock_release(jj_fs_lock *lk);

/* Removes the lock file at path while the lock is held, then drops the
 * lock: what is locked is gone (an environment destroyed). Safe against
 * contenders: jj_fs_lock_acquire re-opens when the file it locked was
 * unlinked or replaced. A missing file is fine. */
int jj_fs_lock_remove(jj_fs_lock *lk, const char *path, jj_error *err);

/* If someone holds the lock on path, *out is their message (malloc'd,
 * caller frees; "" if they wrote none); *out is NULL if nobody holds it or
 * the lock file does not exist. */
int jj_fs_lock_holder(const char *path, char **out, jj_error *err);

#endif
