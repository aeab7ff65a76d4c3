/* storage.c: environ storage backed by a local directory (see storage.h). */
#include "storage.h"

#include "crypto.h"
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fixed copy buffer: objects (tools tarballs) are streamed in constant memory. */
#define COPY_CHUNK 65536
/* Names shown in messages are cut so a hostile name cannot drown the rest. */
#define SHOWN_NAME_MAX 200

struct jj_storage {
    char *root;
    mode_t file_mode;
    mode_t dir_mode;
    int durable; /* 0: no fsyncs (jj_storage_set_durable) */
};

void jj_storage_set_durable(jj_storage *s, int durable)
{
    s->durable = durable != 0;
}

static int storage_fsync_parent(const jj_storage *s, const char *path, jj_error *err)
{
    return s->durable ? jj_fs_fsync_parent(path, err) : 0;
}

int jj_storage_check_name(const char *name, size_t len, jj_error *err)
{
    const char *why = NULL;
    if (len == 0)
        why = "empty name";
    else if (memchr(name, '\0', len))
        why = "contains NUL";
    else if (memchr(name, '\\', len))
        why = "contains a backslash";
    else if (name[0] == '/')
        why = "absolute name";
    for (size_t start = 0; !why && start <= len;) {
        const char *slash = memchr(name + start, '/', len - start);
        size_t end = slash ? (size_t)(slash - name) : len;
        size_t n = end - start;
        if (n == 0)
            why = "empty path component";
        else if (n == 1 && name[start] == '.')
            why = "\".\" component";
        else if (n == 2 && name[start] == '.' && name[start + 1] == '.')
            why = "\"..\" component";
        start = end + 1;
    }
    if (!why)
        return 0;
    return jj_error_set(err, JJ_EINVAL, "invalid storage name \"%.*s\": %s",
                        (int)(len < SHOWN_NAME_MAX ? len : SHOWN_NAME_MAX), name, why);
}

static inline int check_cname(const char *name, jj_error *err)
{
    if (!name)
        return jj_error_set(err, JJ_EINVAL, "invalid storage name: NULL");
    return jj_storage_check_name(name, strlen(name), err);
}

/* *out = a + "/" + b, malloc'd, owned by the caller. */
static int join_path(const char *a, const char *b, char **out, jj_error *err)
{
    size_t na = strlen(a), nb = strlen(b);
    char *p = malloc(na + nb + 2);
    if (!p)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    memcpy(p, a, na);
    p[na] = '/';
    memcpy(p + na + 1, b, nb + 1);
    *out = p;
    return 0;
}

/* Validates name and builds its path (owned by the caller). */
static int object_path(const jj_storage *s, const char *name, char **out, jj_error *err)
{
    *out = NULL;
    int rc = check_cname(name, err);
    return rc ? rc : join_path(s->root, name, out, err);
}

int jj_storage_open_dir(const char *path, mode_t file_mode, mode_t dir_mode, jj_storage **out,
                        jj_error *err)
{
    *out = NULL;
    if (!path || !*path)
        return jj_error_set(err, JJ_EINVAL, "storage directory: empty path");
    int rc = jj_fs_mkdir_p(path, 0700, err);
    if (rc) {
        jj_error_prefix(err, "storage directory %s", path);
        return rc;
    }
    jj_storage *s = calloc(1, sizeof *s);
    if (!s)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    rc = jj_fs_realpath(path, &s->root, err);
    if (rc) {
        free(s);
        return rc;
    }
    s->file_mode = file_mode & 07777;
    s->durable = 1;
    s->dir_mode = dir_mode & 07777;
    *out = s;
    return 0;
}

void jj_storage_close(jj_storage *s)
{
    if (!s)
        return;
    free(s->root);
    free(s);
}

const char *jj_storage_root(const jj_storage *s)
{
    return s->root;
}

/* Creates the root (0700) and the object's missing parent directories. */
static int ensure_parents(const jj_storage *s, const char *name, const char *path, jj_error *err)
{
    int rc = jj_fs_mkdir_p(s->root, 0700, err);
    const char *slash = strrchr(name, '/');
    if (rc || !slash)
        return rc;
    size_t n = strlen(s->root) + 1 + (size_t)(slash - name);
    char *dir = strndup(path, n);
    if (!dir)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    rc = jj_fs_mkdir_p(dir, s->dir_mode, err);
    free(dir);
    return rc;
}

/* Copies in_fd to the sink through a fixed buffer, hashing if h is set. */
static int stream_copy(int in_fd, const char *src_shown, jj_fs_atomic *k, jj_hasher *h, uint64_t *size,
                       jj_error *err)
{
    char *buf = malloc(COPY_CHUNK);
    if (!buf)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(in_fd, buf, COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = jj_error_errno(err, errno, "read %s", src_shown);
            break;
        }
        if (n == 0)
            break;
        if (jj_fs_write_all(k->fd, buf, (size_t)n) != 0) {
            rc = jj_error_errno(err, errno, "write %s", k->tmp);
            break;
        }
        if (h && (rc = jj_hasher_update(h, buf, (size_t)n, err)) != 0)
            break;
        total += (uint64_t)n;
    }
    free(buf);
    if (!rc && size)
        *size = total;
    return rc;
}

int jj_storage_put(jj_storage *s, const char *name, const void *data, size_t len, int mode,
                   jj_error *err)
{
    char *path;
    int rc = object_path(s, name, &path, err);
    if (rc)
        return rc;
    jj_fs_atomic k;
    rc = ensure_parents(s, name, path, err);
    if (!rc)
        rc = jj_fs_atomic_begin(&k, path, mode < 0 ? s->file_mode : (mode_t)(mode & 07777), err);
    if (!rc) {
        if (jj_fs_write_all(k.fd, data, len) != 0) {
            rc = jj_error_errno(err, errno, "write %s", k.tmp);
            jj_fs_atomic_abort(&k);
        } else {
            rc = (k.durable = s->durable, jj_fs_atomic_commit(&k, err));
        }
    }
    if (rc)
        jj_error_prefix(err, "put %s", name);
    free(path);
    return rc;
}

/* Opens a regular file for streaming; a directory is JJ_EISDIR. */
static int open_regular(const char *path, struct stat *sb, jj_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return jj_error_errno(err, errno, "open %s", path);
    if (fstat(fd, sb) != 0) {
        int e = errno;
        close(fd);
        return jj_error_errno(err, e, "stat %s", path);
    }
    if (!S_ISREG(sb->st_mode)) {
        close(fd);
        if (S_ISDIR(sb->st_mode))
            return jj_error_errno(err, EISDIR, "open %s", path);
        return jj_error_set(err, JJ_EINVAL, "%s: not a regular file", path);
    }
    return fd;
}

int jj_storage_put_file(jj_storage *s, const char *name, const char *src_path, int mode,
                        uint64_t *size, unsigned char *sha256, jj_error *err)
{
    char *path;
    int rc = object_path(s, name, &path, err);
    if (rc)
        return rc;
    jj_hasher *h = NULL;
    struct stat sb;
    int in = -1;
    jj_fs_atomic k;
    if ((rc = jj_hasher_new(JJ_DIGEST_SHA256, &h, err)) != 0)
        goto out;
    if ((in = open_regular(src_path, &sb, err)) < 0) {
        rc = in;
        goto out;
    }
    if ((rc = ensure_parents(s, name, path, err)) != 0)
        goto out;
    if ((rc = jj_fs_atomic_begin(&k, path, mode < 0 ? s->file_mode : (mode_t)(mode & 07777), err)) != 0)
        goto out;
    rc = stream_copy(in, src_path, &k, h, size, err);
    if (rc)
        jj_fs_atomic_abort(&k);
    else
        rc = (k.durable = s->durable, jj_fs_atomic_commit(&k, err));
    if (!rc && sha256)
        rc = jj_hasher_final(h, sha256, err);
out:
    if (in >= 0)
        close(in);
    jj_hasher_free(h);
    if (rc)
        jj_error_prefix(err, "put %s", name);
    free(path);
    return rc;
}

/* Reads in_fd to its end through a fixed buffer, hashing it. */
static int stream_hash(int in_fd, const char *src_shown, jj_hasher *h, uint64_t *size, jj_error *err)
{
    char *buf = malloc(COPY_CHUNK);
    if (!buf)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(in_fd, buf, COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = jj_error_errno(err, errno, "read %s", src_shown);
            break;
        }
        if (n == 0)
            break;
        if ((rc = jj_hasher_update(h, buf, (size_t)n, err)) != 0)
            break;
        total += (uint64_t)n;
    }
    free(buf);
    if (!rc && size)
        *size = total;
    return rc;
}

/* Gives the object the name tmp_link (a hard link to src_path) and
 * renames it over path; the placeholder k reserved the unique temp name. */
static int link_into_place(const char *src_path, const char *path, const char *tmp_link, jj_error *err)
{
    if (link(src_path, tmp_link) != 0)
        return jj_error_errno(err, errno, "link %s", tmp_link);
    if (rename(tmp_link, path) != 0) {
        int e = errno;
        unlink(tmp_link);
        return jj_error_errno(err, e, "rename %s", tmp_link);
    }
    /* path already a name of src: rename(2) then does nothing, and the
     * temporary name is still there. */
    unlink(tmp_link);
    return 0;
}

int jj_storage_put_file_link(jj_storage *s, const char *name, const char *src_path, int mode,
                             uint64_t *size, unsigned char *sha256, bool *linked, jj_error *err)
{
    *linked = false;
    char *path;
    int rc = object_path(s, name, &path, err);
    if (rc)
        return rc;
    mode_t want = mode < 0 ? s->file_mode : (mode_t)(mode & 07777);
    struct stat sb;
    jj_hasher *h = NULL;
    int in = open_regular(src_path, &sb, err);
    if (in < 0) {
        rc = in;
        goto out;
    }
    if ((sb.st_mode & 07777) != want)
        goto copy; /* a link would carry src's mode */
    if ((rc = ensure_parents(s, name, path, err)) != 0)
        goto out;
    jj_fs_atomic k;
    if ((rc = jj_fs_atomic_begin(&k, path, want, err)) != 0)
        goto out;
    char tmp_link[sizeof k.tmp + 2];
    snprintf(tmp_link, sizeof tmp_link, "%sL", k.tmp);
    jj_error lerr;
    int lrc = link_into_place(src_path, path, tmp_link, &lerr);
    jj_fs_atomic_abort(&k); /* the placeholder */
    if (lrc)
        goto copy; /* another filesystem, or links not allowed: a copy */
    *linked = true;
    if ((rc = storage_fsync_parent(s, path, err)) != 0)
        goto out;
    if (!sha256) {
        /* Nothing to hash: the caller knows the content. */
        if (size)
            *size = (uint64_t)sb.st_size;
        goto out;
    }
    if ((rc = jj_hasher_new(JJ_DIGEST_SHA256, &h, err)) != 0)
        goto out;
    if ((rc = stream_hash(in, src_path, h, size, err)) != 0)
        goto out;
    if (sha256)
        rc = jj_hasher_final(h, sha256, err);
    goto out;
copy:
    close(in);
    in = -1;
    free(path);
    return jj_storage_put_file(s, name, src_path, mode, size, sha256, err);
out:
    if (in >= 0)
        close(in);
    jj_hasher_free(h);
    if (rc)
        jj_error_prefix(err, "put %s", name);
    free(path);
    return rc;
}

/* A parent of the name being an object (ENOTDIR) means there is no such
 * object, as with object stores. */
static inline int as_missing_object(int rc, jj_error *err)
{
    if (rc != JJ_ENOTDIR)
        return rc;
    if (err)
        err->code = JJ_ENOENT;
    return JJ_ENOENT;
}

int jj_storage_get(jj_storage *s, const char *name, char **out, size_t *len, jj_error *err)
{
    char *path;
    *out = NULL;
    *len = 0;
    int rc = object_path(s, name, &path, err);
    if (rc)
        return rc;
    rc = as_missing_object(jj_fs_read_file(path, out, len, err), err);
    if (rc)
        jj_error_prefix(err, "get %s", name);
    free(path);
    return rc;
}

int jj_storage_get_to_file(jj_storage *s, const char *name, const char *dst_path, int mode,
                           uint64_t *size, jj_error *err)
{
    char *path;
    int rc = object_path(s, name, &path, err);
    if (rc)
        return rc;
    struct stat sb;
    int in = open_regular(path, &sb, err);
    if (in < 0) {
        rc = as_missing_object(in, err);
    } else {
        jj_fs_atomic k;
        rc = jj_fs_atomic_begin(&k, dst_path, mode < 0 ? (sb.st_mode & 07777) : (mode_t)(mode & 07777),
                        err);
        if (!rc) {
            rc = stream_copy(in, path, &k, NULL, size, err);
            if (rc)
                jj_fs_atomic_abort(&k);
            else
                rc = jj_fs_atomic_commit(&k, err); /* the caller's file: durable */
        }
        close(in);
    }
    if (rc)
        jj_error_prefix(err, "get %s", name);
    free(path);
    return rc;
}

int jj_storage_exists(jj_storage *s, const char *name, bool *exists, jj_error *err)
{
    char *path;
    *exists = false;
    int rc = object_path(s, name, &path, err);
    if (rc)
        return rc;
    struct stat sb;
    if (stat(path, &sb) == 0)
        *exists = S_ISREG(sb.st_mode);
    else if (errno != ENOENT && errno != ENOTDIR)
        rc = jj_error_errno(err, errno, "stat %s", path);
    free(path);
    return rc;
}

int jj_storage_size(jj_storage *s, const char *name, uint64_t *size, jj_error *err)
{
    char *path;
    *size = 0;
    int rc = object_path(s, name, &path, err);
    if (rc)
        return rc;
    struct stat sb;
    if (stat(path, &sb) != 0)
        rc = jj_error_errno(err, errno == ENOTDIR ? ENOENT : errno, "size %s", name);
    else if (S_ISDIR(sb.st_mode))
        rc = jj_error_errno(err, EISDIR, "size %s", name);
    else
        *size = (uint64_t)sb.st_size;
    free(path);
    return rc;
}

/* ---- listing ---- */

typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

/* ".<base>.tmp-XXXXXX": an atomic write in progress (or one a crash left). */
static bool is_temp_name(const char *base)
{
    size_t n = strlen(base);
    return base[0] == '.' && n >= 13 && memcmp(base + n - 11, ".tmp-", 5) == 0;
}

static int add_name(name_list *l, const char *rel, jj_error *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return jj_error_set(err, JJ_ENOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(rel)))
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    l->n++;
    return 0;
}

/* A directory whose names start with dir_prefix ("a/b/") can hold a match
 * for prefix only if one of the two starts with the other. */
static bool may_match(const char *dir_prefix, size_t n, const char *prefix, size_t plen)
{
    return strncmp(dir_prefix, prefix, n < plen ? n : plen) == 0;
}

/* Lists directory dfd (taken over and closed), whose path relative to the
 * root is rel[0..len) (with a trailing '/' unless at the root). */
static int walk(int dfd, char *rel, size_t len, const char *prefix, name_list *l, jj_error *err)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = errno;
        close(dfd);
        return jj_error_errno(err, e, "list %.*s", (int)len, rel);
    }
    size_t plen = strlen(prefix);
    int rc = 0;
    struct dirent *de;
    while (!rc && (errno = 0, de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, ".."))
            continue;
        size_t nlen = strlen(nm);
        if (len + nlen + 2 > PATH_MAX) {
            rc = jj_error_set(err, JJ_ERANGE, "list: path too long under %.*s", (int)len, rel);
            break;
        }
        memcpy(rel + len, nm, nlen + 1);
        struct stat sb;
        if (fstatat(dirfd(d), nm, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT) /* removed while listing: not an object any more */
                rc = jj_error_errno(err, errno, "stat %s", rel);
            continue;
        }
        if (S_ISREG(sb.st_mode)) {
            if (!is_temp_name(nm) && strncmp(rel, prefix, plen) == 0)
                rc = add_name(l, rel, err);
        } else if (S_ISDIR(sb.st_mode)) {
            rel[len + nlen] = '/';
            rel[len + nlen + 1] = '\0';
            if (!may_match(rel, len + nlen + 1, prefix, plen))
                continue;
            int cfd = openat(dirfd(d), nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (cfd < 0) {
                if (errno != ENOENT)
                    rc = jj_error_errno(err, errno, "open directory %s", rel);
                continue;
            }
            rc = walk(cfd, rel, len + nlen + 1, prefix, l, err);
        }
    }
    if (!rc && errno != 0)
        rc = jj_error_errno(err, errno, "list %.*s", (int)len, rel);
    closedir(d);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int jj_storage_list(jj_storage *s, const char *prefix, char ***names, size_t *count,
                    jj_error *err)
{
    *names = NULL;
    *count = 0;
    int dfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        if (errno == ENOENT) /* nothing stored since remove_all */
            return 0;
        return jj_error_errno(err, errno, "list %s", s->root);
    }
    char *rel = malloc(PATH_MAX);
    if (!rel) {
        close(dfd);
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    }
    rel[0] = '\0';
    name_list l = {0};
    int rc = walk(dfd, rel, 0, prefix ? prefix : "", &l, err);
    free(rel);
    if (rc) {
        jj_fs_free_names(l.v, l.n);
        return rc;
    }
    if (l.n > 1)
        qsort(l.v, l.n, sizeof *l.v, cmp_names);
    *names = l.v;
    *count = l.n;
    return 0;
}

/* ---- removal ---- */

int jj_storage_remove(jj_storage *s, const char *name, jj_error *err)
{
    char *path;
    int rc = object_path(s, name, &path, err);
    if (rc)
        return rc;
    if (unlink(path) != 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            rc = jj_error_errno(err, errno, "remove %s", name);
    } else {
        rc = storage_fsync_parent(s, path, err);
    }
    free(path);
    return rc;
}

int jj_storage_remove_all(jj_storage *s, jj_error *err)
{
    return jj_fs_remove_tree(s->root, err);
}

/* ---- paths and URLs ---- */

int jj_storage_path(const jj_storage *s, const char *name, char **out, jj_error *err)
{
    return object_path(s, name, out, err);
}

static inline bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
}

int jj_storage_url(const jj_storage *s, const char *name, char **out, jj_error *err)
{
    char *path;
    *out = NULL;
    int rc = object_path(s, name, &path, err);
    if (rc)
        return rc;
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(path);
    char *u = malloc(7 + 3 * n + 1);
    if (!u) {
        free(path);
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    }
    char *w = u + 7;
    memcpy(u, "file://", 7);
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (is_unreserved(*p)) {
            *w++ = (char)*p;
        } else {
            *w++ = '%';
            *w++ = hex[*p >> 4];
            *w++ = hex[*p & 15];
        }
    }
    *w = '\0';
    free(path);
    *out = u;
    return 0;
}
