/* fs.c: durable, atomic, exclusive file operations and flock locks (see fs.h). */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Fixed copy buffer: copy_file streams in constant memory. */
#define COPY_CHUNK 65536
/* Holder messages are one short line; anything longer is cut. */
#define HOLDER_MAX 1024

int jj_fs_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes the directory part of path ("." when there is none) into out. */
static int dir_of(const char *path, char *out, size_t size, jj_error *err)
{
    const char *slash = strrchr(path, '/');
    int n;
    if (!slash)
        n = snprintf(out, size, ".");
    else if (slash == path)
        n = snprintf(out, size, "/");
    else
        n = snprintf(out, size, "%.*s", (int)(slash - path), path);
    if (n < 0 || (size_t)n >= size)
        return jj_error_set(err, JJ_ERANGE, "path too long: %s", path);
    return 0;
}

/* A rename or a new name is only durable once its directory is fsynced.
 * Some file systems refuse fsync on directories (EINVAL): nothing to do. */
int jj_fs_fsync_parent(const char *path, jj_error *err)
{
    char dir[PATH_MAX];
    int rc = dir_of(path, dir, sizeof dir, err);
    if (rc)
        return rc;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return jj_error_errno(err, errno, "open directory %s", dir);
    if (fsync(fd) != 0 && errno != EINVAL) {
        int e = errno;
        close(fd);
        return jj_error_errno(err, e, "fsync directory %s", dir);
    }
    close(fd);
    return 0;
}

static int sync_and_close(int fd, const char *shown, jj_error *err)
{
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return jj_error_errno(err, e, "fsync %s", shown);
    }
    if (close(fd) != 0)
        return jj_error_errno(err, errno, "close %s", shown);
    return 0;
}


/* Creates ".<base>.tmp-XXXXXX" beside path with exactly mode (mkostemp
 * opens O_EXCL; fchmod makes the umask irrelevant). */
int jj_fs_atomic_begin(jj_fs_atomic *af, const char *path, mode_t mode, jj_error *err)
{
    af->fd = -1;
    af->path = path;
    af->durable = 1;
    af->tmp[0] = '\0';
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base)
        return jj_error_set(err, JJ_EISDIR, "write %s: not a file name", path);
    int n = snprintf(af->tmp, sizeof af->tmp, "%.*s.%s.tmp-XXXXXX",
                     (int)(base - path), path, base);
    if (n < 0 || (size_t)n >= sizeof af->tmp)
        return jj_error_set(err, JJ_ERANGE, "path too long: %s", path);
    af->fd = mkostemp(af->tmp, O_CLOEXEC);
    if (af->fd < 0)
        return jj_error_errno(err, errno, "create temporary file for %s", path);
    if (fchmod(af->fd, mode) != 0) {
        int e = errno;
        close(af->fd);
        af->fd = -1;
        unlink(af->tmp);
        return jj_error_errno(err, e, "chmod %s", af->tmp);
    }
    return 0;
}

void jj_fs_atomic_abort(jj_fs_atomic *af)
{
    if (af->fd >= 0)
        close(af->fd);
    af->fd = -1;
    if (af->tmp[0])
        unlink(af->tmp);
    af->tmp[0] = '\0';
}

int jj_fs_atomic_commit(jj_fs_atomic *af, jj_error *err)
{
    const char *path = af->path;
    int fd = af->fd;
    af->fd = -1;
    int rc;
    if (af->durable)
        rc = sync_and_close(fd, af->tmp, err);
    else
        rc = close(fd) != 0 ? jj_error_errno(err, errno, "close %s", af->tmp) : 0;
    if (rc) {
        unlink(af->tmp);
        return rc;
    }
    if (rename(af->tmp, path) != 0) {
        int e = errno;
        unlink(af->tmp);
        return jj_error_errno(err, e, "rename %s to %s", af->tmp, path);
    }
    return af->durable ? jj_fs_fsync_parent(path, err) : 0;
}

/* Reads fd to its end into a malloc'd, NUL-terminated buffer and closes it.
 * st_size is a hint only (/proc files say 0, files may grow); more than
 * max_size bytes is JJ_ERANGE. */
static int read_all(int fd, const char *path, off_t hint, size_t max_size, char **out, size_t *len,
                    jj_error *err)
{
    size_t cap = hint > 0 ? (size_t)hint + 2 : 4096;
    if (cap > max_size + 2 && max_size < SIZE_MAX - 2)
        cap = max_size + 2; /* room to see growth past max_size */
    size_t used = 0;
    char *buf = malloc(cap);
    int rc = 0;
    if (!buf) {
        rc = jj_error_set(err, JJ_ENOMEM, "read %s: out of memory", path);
        goto out;
    }
    for (;;) {
        if (used + 1 >= cap) {
            char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                rc = jj_error_set(err, JJ_ENOMEM, "read %s: out of memory", path);
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + used, cap - used - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = jj_error_errno(err, errno, "read %s", path);
            goto out;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > max_size) {
            rc = jj_error_set(err, JJ_ERANGE, "read %s: file is larger than %zu bytes", path, max_size);
            goto out;
        }
    }
    buf[used] = '\0';
    *out = buf;
    *len = used;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

/* Opens path for reading into *fd and fstats it; a directory is EISDIR. */
static int open_for_read(const char *path, int flags, struct stat *sb, int *fd, jj_error *err)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC | flags);
    if (*fd < 0)
        return jj_error_errno(err, errno, "open %s", path);
    int rc = 0;
    if (fstat(*fd, sb) != 0)
        rc = jj_error_errno(err, errno, "stat %s", path);
    else if (S_ISDIR(sb->st_mode))
        rc = jj_error_errno(err, EISDIR, "read %s", path);
    if (rc) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

int jj_fs_read_file(const char *path, char **out, size_t *len, jj_error *err)
{
    *out = NULL;
    *len = 0;
    struct stat sb;
    int fd, rc = open_for_read(path, 0, &sb, &fd, err);
    if (rc)
        return rc;
    return read_all(fd, path, sb.st_size, SIZE_MAX, out, len, err);
}

int jj_fs_read_regular(const char *path, size_t max_size, char **out, size_t *len, jj_error *err)
{
    *out = NULL;
    *len = 0;
    struct stat sb;
    int fd, rc = open_for_read(path, O_NONBLOCK | O_NOCTTY, &sb, &fd, err);
    if (rc)
        return rc;
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return jj_error_set(err, JJ_EINVAL, "read %s: not a regular file", path);
    }
    if ((uintmax_t)sb.st_size > (uintmax_t)max_size) {
        close(fd);
        return jj_error_set(err, JJ_ERANGE, "read %s: file is larger than %zu bytes", path, max_size);
    }
    return read_all(fd, path, sb.st_size, max_size, out, len, err);
}

int jj_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                       jj_error *err)
{
    return jj_fs_write_atomic_ex(path, data, len, mode, 1, err);
}

int jj_fs_write_atomic_ex(const char *path, const void *data, size_t len, mode_t mode, int durable,
                          jj_error *err)
{
    jj_fs_atomic af;
    int rc = jj_fs_atomic_begin(&af, path, mode, err);
    if (rc)
        return rc;
    af.durable = durable != 0;
    if (jj_fs_write_all(af.fd, data, len) != 0) {
        int e = errno;
        jj_fs_atomic_abort(&af);
        return jj_error_errno(err, e, "write %s", path);
    }
    return jj_fs_atomic_commit(&af, err);
}

int jj_fs_create_exclusive(const char *path, const void *data, size_t len, mode_t mode,
                           jj_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode & 07777);
    if (fd < 0) {
        int e = errno;
        if (e == EEXIST)
            return jj_error_set_lib(err, JJ_EEXIST, e, "%s already exists", path);
        return jj_error_errno(err, e, "create %s", path);
    }
    int rc = 0;
    if (fchmod(fd, mode) != 0)
        rc = jj_error_errno(err, errno, "chmod %s", path);
    else if (jj_fs_write_all(fd, data, len) != 0)
        rc = jj_error_errno(err, errno, "write %s", path);
    if (rc) {
        close(fd);
        unlink(path);
        return rc;
    }
    rc = sync_and_close(fd, path, err);
    if (rc) {
        unlink(path);
        return rc;
    }
    return jj_fs_fsync_parent(path, err);
}

int jj_fs_append_sync(const char *path, const void *data, size_t len, mode_t mode,
                      jj_error *err)
{
    return jj_fs_append_ex(path, data, len, mode, 1, err);
}

int jj_fs_append_ex(const char *path, const void *data, size_t len, mode_t mode, int durable,
                    jj_error *err)
{
    int created = 0;
    int fd;
    /* Know whether we created the file: only then set its mode and make its
     * directory entry durable. Retry if it vanishes in between. */
    for (;;) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
        if (fd >= 0) {
            created = 1;
            break;
        }
        if (errno != EEXIST)
            return jj_error_errno(err, errno, "create %s", path);
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd >= 0)
            break;
        if (errno != ENOENT)
            return jj_error_errno(err, errno, "open %s", path);
    }
    if (created && fchmod(fd, mode) != 0) {
        int e = errno;
        close(fd);
        return jj_error_errno(err, e, "chmod %s", path);
    }
    if (jj_fs_write_all(fd, data, len) != 0) {
        int e = errno;
        close(fd);
        return jj_error_errno(err, e, "append to %s", path);
    }
    if (!durable)
        return close(fd) != 0 ? jj_error_errno(err, errno, "close %s", path) : 0;
    int rc = sync_and_close(fd, path, err);
    if (rc == 0 && created)
        rc = jj_fs_fsync_parent(path, err);
    return rc;
}

int jj_fs_mkdir(const char *path, mode_t mode, jj_error *err)
{
    if (mkdir(path, mode & 07777) != 0) {
        int e = errno;
        if (e == EEXIST)
            return jj_error_set_lib(err, JJ_EEXIST, e, "mkdir %s: already exists", path);
        return jj_error_errno(err, e, "mkdir %s", path);
    }
    if (chmod(path, mode) != 0)
        return jj_error_errno(err, errno, "chmod %s", path);
    return 0;
}

/* One step of mkdir_p: `prefix` must end up a directory. */
static int ensure_dir(const char *prefix, const char *path, mode_t mode, jj_error *err)
{
    if (mkdir(prefix, mode & 07777) == 0) {
        if (chmod(prefix, mode) != 0)
            return jj_error_errno(err, errno, "chmod %s", prefix);
        return 0;
    }
    int e = errno;
    struct stat sb;
    if (e == EEXIST || e == EACCES || e == EROFS) {
        if (stat(prefix, &sb) == 0) {
            if (S_ISDIR(sb.st_mode))
                return 0;
            return jj_error_set_lib(err, JJ_ENOTDIR, ENOTDIR, "mkdir %s: %s is not a directory",
                                    path, prefix);
        }
    }
    return jj_error_errno(err, e, "mkdir %s", prefix);
}

int jj_fs_mkdir_p(const char *path, mode_t mode, jj_error *err)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0)
        return jj_error_set(err, JJ_EINVAL, "mkdir: empty path");
    /* The common case, a directory that exists: one stat, not a mkdir and
     * a stat per component. */
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return 0;
    if (n >= sizeof buf)
        return jj_error_set(err, JJ_ERANGE, "path too long: %s", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        if (buf[i - 1] == '/')
            continue; /* "//" or trailing "/" */
        char saved = buf[i];
        buf[i] = '\0';
        int rc = ensure_dir(buf, path, mode, err);
        buf[i] = saved;
        if (rc)
            return rc;
    }
    return 0;
}

const char *jj_fs_type_name(jj_fs_type type)
{
    switch (type) {
    case JJ_FS_FILE: return "file";
    case JJ_FS_DIR: return "dir";
    case JJ_FS_LINK: return "link";
    default: return "other";
    }
}

static void fill_stat(jj_fs_stat_t *st, const struct stat *sb)
{
    if (S_ISREG(sb->st_mode))
        st->type = JJ_FS_FILE;
    else if (S_ISDIR(sb->st_mode))
        st->type = JJ_FS_DIR;
    else if (S_ISLNK(sb->st_mode))
        st->type = JJ_FS_LINK;
    else
        st->type = JJ_FS_OTHER;
    st->mode = sb->st_mode & 07777;
    st->size = (long long)sb->st_size;
    st->mtime = (double)sb->st_mtim.tv_sec + (double)sb->st_mtim.tv_nsec / 1e9;
    st->uid = sb->st_uid;
    st->gid = sb->st_gid;
}

int jj_fs_stat(const char *path, jj_fs_stat_t *st, jj_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return jj_error_errno(err, errno, "stat %s", path);
    fill_stat(st, &sb);
    return 0;
}

int jj_fs_lstat(const char *path, jj_fs_stat_t *st, jj_error *err)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return jj_error_errno(err, errno, "lstat %s", path);
    fill_stat(st, &sb);
    return 0;
}

int jj_fs_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

int jj_fs_chmod(const char *path, mode_t mode, jj_error *err)
{
    if (chmod(path, mode) != 0)
        return jj_error_errno(err, errno, "chmod %s", path);
    return 0;
}

int jj_fs_remove(const char *path, jj_error *err)
{
    if (remove(path) != 0)
        return jj_error_errno(err, errno, "remove %s", path);
    return 0;
}

/* Appends "/name" to the path shown in messages; returns the old length. */
static size_t path_push(char *buf, size_t size, const char *name)
{
    size_t old = strlen(buf);
    snprintf(buf + old, size - old, "/%s", name);
    return old;
}

/* Empties the directory open as dfd (consumed). `shown` is its path, used
 * in messages and extended in place while recursing. */
static int remove_contents(int dfd, char *shown, size_t size, jj_error *err)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = errno;
        close(dfd);
        return jj_error_errno(err, e, "open directory %s", shown);
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        size_t old = path_push(shown, size, name);
        struct stat sb;
        if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT)
                rc = jj_error_errno(err, errno, "lstat %s", shown);
        } else if (S_ISDIR(sb.st_mode)) {
            int cfd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (cfd < 0)
                rc = jj_error_errno(err, errno, "open directory %s", shown);
            else
                rc = remove_contents(cfd, shown, size, err);
            if (rc == 0 && unlinkat(dirfd(d), name, AT_REMOVEDIR) != 0 && errno != ENOENT)
                rc = jj_error_errno(err, errno, "rmdir %s", shown);
        } else if (unlinkat(dirfd(d), name, 0) != 0 && errno != ENOENT) {
            rc = jj_error_errno(err, errno, "unlink %s", shown);
        }
        shown[old] = '\0';
    }
    if (rc == 0 && errno != 0)
        rc = jj_error_errno(err, errno, "read directory %s", shown);
    closedir(d);
    return rc;
}

int jj_fs_remove_tree(const char *path, jj_error *err)
{
    if (path[strspn(path, "/")] == '\0')
        return jj_error_set(err, JJ_EINVAL, "remove_tree: refusing to remove \"%s\"", path);
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        if (errno == ENOENT)
            return 0;
        return jj_error_errno(err, errno, "lstat %s", path);
    }
    if (!S_ISDIR(sb.st_mode)) {
        if (unlink(path) != 0 && errno != ENOENT)
            return jj_error_errno(err, errno, "unlink %s", path);
        return 0;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return jj_error_errno(err, errno, "open directory %s", path);
    char shown[PATH_MAX];
    snprintf(shown, sizeof shown, "%s", path);
    int rc = remove_contents(fd, shown, sizeof shown, err);
    if (rc)
        return rc;
    if (rmdir(path) != 0 && errno != ENOENT)
        return jj_error_errno(err, errno, "rmdir %s", path);
    return 0;
}

int jj_fs_rename(const char *from, const char *to, jj_error *err)
{
    if (rename(from, to) != 0)
        return jj_error_errno(err, errno, "rename %s to %s", from, to);
    return 0;
}

int jj_fs_link(const char *existing, const char *path, jj_error *err)
{
    if (link(existing, path) != 0)
        return jj_error_errno(err, errno, "link %s", path);
    return 0;
}

int jj_fs_symlink(const char *target, const char *path, jj_error *err)
{
    if (symlink(target, path) != 0)
        return jj_error_errno(err, errno, "symlink %s", path);
    return 0;
}

/* readlinkat into a malloc'd string (*out), growing until it fits. */
static int read_link_at(int dfd, const char *name, const char *shown, char **out, jj_error *err)
{
    *out = NULL;
    for (size_t cap = 256;; cap *= 2) {
        char *buf = malloc(cap);
        if (!buf)
            return jj_error_set(err, JJ_ENOMEM, "readlink %s: out of memory", shown);
        ssize_t n = readlinkat(dfd, name, buf, cap);
        if (n < 0) {
            int e = errno;
            free(buf);
            return jj_error_errno(err, e, "readlink %s", shown);
        }
        if ((size_t)n < cap) {
            buf[n] = '\0';
            *out = buf;
            return 0;
        }
        free(buf);
        if (cap > (size_t)1 << 20)
            return jj_error_set(err, JJ_ERANGE, "readlink %s: target too long", shown);
    }
}

int jj_fs_readlink(const char *path, char **out, jj_error *err)
{
    return read_link_at(AT_FDCWD, path, path, out, err);
}

int jj_fs_realpath(const char *path, char **out, jj_error *err)
{
    *out = realpath(path, NULL);
    if (!*out)
        return jj_error_errno(err, errno, "realpath %s", path);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void jj_fs_free_names(char **names, size_t count)
{
    if (!names)
        return;
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

int jj_fs_list(const char *dir, char ***names, size_t *count, jj_error *err)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return jj_error_errno(err, errno, "list %s", dir);
    char **v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                rc = jj_error_set(err, JJ_ENOMEM, "list %s: out of memory", dir);
                break;
            }
            v = nv;
            cap = ncap;
        }
        if (!(v[n] = strdup(de->d_name))) {
            rc = jj_error_set(err, JJ_ENOMEM, "list %s: out of memory", dir);
            break;
        }
        n++;
    }
    if (rc == 0 && errno != 0)
        rc = jj_error_errno(err, errno, "list %s", dir);
    closedir(d);
    if (rc) {
        jj_fs_free_names(v, n);
        return rc;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_names);
    *names = v;
    *count = n;
    return 0;
}

int jj_fs_copy_file(const char *src, const char *dst, int mode, jj_error *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return jj_error_errno(err, errno, "open %s", src);
    struct stat sb;
    if (fstat(in, &sb) != 0) {
        int e = errno;
        close(in);
        return jj_error_errno(err, e, "stat %s", src);
    }
    if (S_ISDIR(sb.st_mode)) {
        close(in);
        return jj_error_errno(err, EISDIR, "copy %s", src);
    }
    jj_fs_atomic af;
    int rc = jj_fs_atomic_begin(&af, dst, mode < 0 ? (sb.st_mode & 07777) : (mode_t)mode, err);
    if (rc) {
        close(in);
        return rc;
    }
    char *buf = malloc(COPY_CHUNK);
    if (!buf) {
        close(in);
        jj_fs_atomic_abort(&af);
        return jj_error_set(err, JJ_ENOMEM, "copy %s: out of memory", src);
    }
    for (;;) {
        ssize_t n = read(in, buf, COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = jj_error_errno(err, errno, "read %s", src);
            break;
        }
        if (n == 0)
            break;
        if (jj_fs_write_all(af.fd, buf, (size_t)n) != 0) {
            rc = jj_error_errno(err, errno, "write %s", af.tmp);
            break;
        }
    }
    free(buf);
    close(in);
    if (rc) {
        jj_fs_atomic_abort(&af);
        return rc;
    }
    return jj_fs_atomic_commit(&af, err);
}

int jj_fs_mkdtemp(const char *prefix, char **out, jj_error *err)
{
    size_t n = strlen(prefix);
    char *tmpl = malloc(n + 7);
    *out = NULL;
    if (!tmpl)
        return jj_error_set(err, JJ_ENOMEM, "mkdtemp: out of memory");
    memcpy(tmpl, prefix, n);
    memcpy(tmpl + n, "XXXXXX", 7);
    if (!mkdtemp(tmpl)) {
        int e = errno;
        free(tmpl);
        return jj_error_errno(err, e, "mkdtemp %sXXXXXX", prefix);
    }
    /* mkdtemp's 0700 is subject to the umask. */
    if (chmod(tmpl, 0700) != 0) {
        int e = errno;
        rmdir(tmpl);
        free(tmpl);
        return jj_error_errno(err, e, "chmod temporary directory");
    }
    *out = tmpl;
    return 0;
}

/* The growing result of a tree snapshot. */
typedef struct entry_list {
    jj_fs_entry *v;
    size_t n, cap;
} entry_list;

void jj_fs_free_entries(jj_fs_entry *entries, size_t count)
{
    if (!entries)
        return;
    for (size_t i = 0; i < count; i++) {
        free(entries[i].path);
        free(entries[i].target);
    }
    free(entries);
}

static int cmp_entries(const void *a, const void *b)
{
    return strcmp(((const jj_fs_entry *)a)->path, ((const jj_fs_entry *)b)->path);
}

static int add_entry(entry_list *l, int dfd, const char *name, const char *rel,
                     const struct stat *sb, jj_error *err)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 32;
        jj_fs_entry *nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv)
            return jj_error_set(err, JJ_ENOMEM, "snapshot: out of memory");
        l->v = nv;
        l->cap = ncap;
    }
    jj_fs_entry *e = &l->v[l->n];
    memset(e, 0, sizeof *e);
    fill_stat(&e->st, sb);
    if (!(e->path = strdup(rel)))
        return jj_error_set(err, JJ_ENOMEM, "snapshot: out of memory");
    l->n++;
    if (e->st.type == JJ_FS_LINK)
        return read_link_at(dfd, name, rel, &e->target, err);
    return 0;
}

/* Lists the directory open as dfd (consumed) whose path relative to the
 * snapshot root is `rel` ("" for the root itself). */
static int snapshot_dir(int dfd, const char *root, const char *rel, entry_list *l, jj_error *err)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = errno;
        close(dfd);
        return jj_error_errno(err, e, "snapshot %s/%s", root, rel);
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        char child[PATH_MAX];
        int n = snprintf(child, sizeof child, "%s%s%s", rel, *rel ? "/" : "", name);
        if (n < 0 || (size_t)n >= sizeof child) {
            rc = jj_error_set(err, JJ_ERANGE, "snapshot %s: path too long", root);
            break;
        }
        struct stat sb;
        if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT)
                rc = jj_error_errno(err, errno, "snapshot %s/%s", root, child);
            continue;
        }
        rc = add_entry(l, dirfd(d), name, child, &sb, err);
        if (rc == 0 && S_ISDIR(sb.st_mode)) {
            int cfd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (cfd < 0)
                rc = jj_error_errno(err, errno, "snapshot %s/%s", root, child);
            else
                rc = snapshot_dir(cfd, root, child, l, err);
        }
    }
    if (rc == 0 && errno != 0)
        rc = jj_error_errno(err, errno, "snapshot %s/%s", root, rel);
    closedir(d);
    return rc;
}

int jj_fs_tree_snapshot(const char *dir, jj_fs_entry **entries, size_t *count, jj_error *err)
{
    *entries = NULL;
    *count = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return jj_error_errno(err, errno, "snapshot %s", dir);
    entry_list l = {0};
    int rc = snapshot_dir(fd, dir, "", &l, err);
    if (rc) {
        jj_fs_free_entries(l.v, l.n);
        return rc;
    }
    if (l.n > 1)
        qsort(l.v, l.n, sizeof *l.v, cmp_entries);
    *entries = l.v;
    *count = l.n;
    return 0;
}

mode_t jj_fs_umask(mode_t mask)
{
    return umask(mask);
}

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_seconds(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Reads the holder message from a lock file into out (NUL-terminated,
 * trailing newlines dropped); "" if unreadable. */
static void read_holder(int fd, char *out, size_t size)
{
    ssize_t n;
    do
        n = pread(fd, out, size - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        n = 0;
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
}

/* Opens (creating 0600 if missing) the lock file; returns the fd or a
 * negative JJ_E* code. A new file gets 0600 whatever the umask, so every
 * later contender of the same user can open it read-write. */
static int open_lock_file(const char *path, jj_error *err)
{
    for (;;) {
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0) {
            if (fchmod(fd, 0600) != 0) {
                int e = errno;
                close(fd);
                return jj_error_errno(err, e, "chmod lock file %s", path);
            }
            return fd;
        }
        if (errno != EEXIST)
            return jj_error_errno(err, errno, "create lock file %s", path);
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0)
            return fd;
        if (errno != ENOENT)
            return jj_error_errno(err, errno, "open lock file %s", path);
    }
}

void jj_fs_lock_init(jj_fs_lock *lk)
{
    lk->fd = -1;
}

int jj_fs_lock_set_message(jj_fs_lock *lk, const char *message, jj_error *err)
{
    if (lk->fd < 0)
        return jj_error_set(err, JJ_EINVAL, "lock is not held");
    if (ftruncate(lk->fd, 0) != 0)
        return jj_error_errno(err, errno, "write lock message");
    size_t len = message ? strlen(message) : 0;
    size_t off = 0;
    while (off < len) {
        ssize_t n = pwrite(lk->fd, message + off, len - off, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return jj_error_errno(err, errno, "write lock message");
        }
        off += (size_t)n;
    }
    return 0;
}

/* Whether the file fd has open is still the one at path (a holder's
 * jj_fs_lock_remove unlinks it while others wait on the old inode). */
static int still_linked(int fd, const char *path)
{
    struct stat a, b;
    if (fstat(fd, &a) != 0 || lstat(path, &b) != 0)
        return 0;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int jj_fs_lock_acquire(jj_fs_lock *lk, const char *path, double timeout, double interval,
                       const char *message, jj_error *err)
{
    if (lk->fd >= 0)
        return jj_error_set(err, JJ_EINVAL, "lock %s: already held by this handle", path);
    if (interval <= 0)
        interval = 0.05;
    int fd = open_lock_file(path, err);
    if (fd < 0)
        return fd;
    double deadline = monotonic_now() + (timeout > 0 ? timeout : 0);
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            if (still_linked(fd, path))
                break;
            close(fd); /* locked a removed file: take the one at path now */
            if ((fd = open_lock_file(path, err)) < 0)
                return fd;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            int e = errno;
            close(fd);
            return jj_error_errno(err, e, "lock %s", path);
        }
        double left = deadline - monotonic_now();
        if (left <= 0) {
            char holder[HOLDER_MAX];
            read_holder(fd, holder, sizeof holder);
            close(fd);
            return jj_error_set_lib(err, JJ_ELOCKED, EWOULDBLOCK, "lock %s held by %s", path,
                                    holder[0] ? holder : "another process (no holder message)");
        }
        sleep_seconds(left < interval ? left : interval);
    }
    lk->fd = fd;
    int rc = jj_fs_lock_set_message(lk, message, err);
    if (rc) {
        jj_fs_lock_release(lk);
        jj_error_prefix(err, "lock %s", path);
    }
    return rc;
}

void jj_fs_lock_release(jj_fs_lock *lk)
{
    if (lk->fd < 0)
        return;
    /* Clear the message while still holding the lock, so nobody reads a
     * stale holder; the close drops the flock. */
    if (ftruncate(lk->fd, 0) != 0) {
        /* nothing to do: the lock goes away with the close regardless */
    }
    close(lk->fd);
    lk->fd = -1;
}

int jj_fs_lock_remove(jj_fs_lock *lk, const char *path, jj_error *err)
{
    if (lk->fd < 0)
        return jj_error_set(err, JJ_EINVAL, "lock %s: not held", path);
    if (!still_linked(lk->fd, path)) {
        jj_fs_lock_release(lk);
        return jj_error_set(err, JJ_EINVAL, "lock %s: the file at that path is not the one held", path);
    }
    int rc = 0;
    if (unlink(path) != 0 && errno != ENOENT)
        rc = jj_error_errno(err, errno, "remove lock file %s", path);
    jj_fs_lock_release(lk);
    return rc;
}

int jj_fs_lock_holder(const char *path, char **out, jj_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return jj_error_errno(err, errno, "open lock file %s", path);
    }
    int rc = 0;
    /* A shared probe fails exactly when someone holds the exclusive lock;
     * a message left by a holder killed with -9 is thus never reported. */
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        flock(fd, LOCK_UN);
    } else if (errno == EWOULDBLOCK) {
        char holder[HOLDER_MAX];
        read_holder(fd, holder, sizeof holder);
        if (!(*out = strdup(holder)))
            rc = jj_error_set(err, JJ_ENOMEM, "lock holder: out of memory");
    } else {
        rc = jj_error_errno(err, errno, "probe lock %s", path);
    }
    close(fd);
    return rc;
}

/* --- tree stamps ------------------------------------------------------- */

typedef struct stamp_paths {
    char **v;
    size_t n, cap;
} stamp_paths;

static int folder_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

/* Appends the relative paths of the matching files under root/rel. */
static int stamp_collect(const char *root, const char *rel, const char *suffix, stamp_paths *p, jj_error *err)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel) >= (int)sizeof dir)
        return 0; /* too long to list: as an unreadable folder */
    char **names;
    size_t n;
    jj_error ignored;
    if (jj_fs_list(dir, &names, &n, &ignored))
        return 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char r[PATH_MAX];
        if (snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", names[i]) >= (int)sizeof r)
            continue;
        if (ends_with(names[i], suffix)) {
            if (p->n == p->cap) {
                size_t ncap = p->cap ? p->cap * 2 : 16;
                char **nv = realloc(p->v, ncap * sizeof *nv);
                if (!nv) {
                    rc = jj_error_set(err, JJ_ENOMEM, "stamp %s: out of memory", root);
                    break;
                }
                p->v = nv;
                p->cap = ncap;
            }
            if (!(p->v[p->n] = strdup(r))) {
                rc = jj_error_set(err, JJ_ENOMEM, "stamp %s: out of memory", root);
                break;
            }
            p->n++;
        } else if (folder_name(names[i])) {
            char full[PATH_MAX];
            struct stat sb;
            if (snprintf(full, sizeof full, "%s/%s", root, r) < (int)sizeof full && stat(full, &sb) == 0 &&
                S_ISDIR(sb.st_mode))
                rc = stamp_collect(root, r, suffix, p, err);
        }
    }
    jj_fs_free_names(names, n);
    return rc;
}

int jj_fs_tree_stamp(const char *dir, const char *suffix, char **out, jj_error *err)
{
    *out = NULL;
    stamp_paths p = {NULL, 0, 0};
    int rc = stamp_collect(dir, "", suffix, &p, err);
    if (rc == 0 && p.n > 1)
        qsort(p.v, p.n, sizeof *p.v, cmp_names);
    char *s = NULL;
    size_t len = 0, cap = 0;
    for (size_t i = 0; rc == 0 && i < p.n; i++) {
        char full[PATH_MAX], part[PATH_MAX + 64];
        struct stat sb;
        int m;
        if (snprintf(full, sizeof full, "%s/%s", dir, p.v[i]) < (int)sizeof full && stat(full, &sb) == 0)
            m = snprintf(part, sizeof part, "%s%s=%lld:%lld.%09ld", i ? ";" : "", p.v[i], (long long)sb.st_size,
                         (long long)sb.st_mtim.tv_sec, (long)sb.st_mtim.tv_nsec);
        else
            m = snprintf(part, sizeof part, "%s%s=missing", i ? ";" : "", p.v[i]);
        if (m < 0 || (size_t)m >= sizeof part)
            continue;
        if (len + (size_t)m + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 256;
            while (ncap < len + (size_t)m + 1)
                ncap *= 2;
            char *ns = realloc(s, ncap);
            if (!ns) {
                rc = jj_error_set(err, JJ_ENOMEM, "stamp %s: out of memory", dir);
                break;
            }
            s = ns;
            cap = ncap;
        }
        memcpy(s + len, part, (size_t)m + 1);
        len += (size_t)m;
    }
    jj_fs_free_names(p.v, p.n);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s ? s : strdup("");
    if (!*out)
        return jj_error_set(err, JJ_ENOMEM, "stamp %s: out of memory", dir);
    return 0;
}
