/* tools.c: build, list and safely extract tools tarballs (see tools.h). */
#include "tools.h"

#include "crypto.h"
#include "fs.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fixed buffer: files and archive data are streamed in constant memory. */
#define COPY_CHUNK 65536
/* Member names shown in messages are cut so hostile names stay readable. */
#define SHOWN_MAX 200

/* Normalises a member name: drops empty and "." components; refuses empty,
 * absolute and ".." names. *out (malloc'd, caller frees) may be "" for
 * names like "./". *why is set on refusal. */
static int normalize_name(const char *name, char **out, const char **why, jj_error *err)
{
    *out = NULL;
    *why = NULL;
    if (!name || !*name)
        *why = "empty name";
    else if (name[0] == '/')
        *why = "absolute name";
    if (*why)
        return JJ_EINVAL;
    size_t len = strlen(name);
    char *clean = malloc(len + 1);
    if (!clean)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    size_t w = 0;
    for (const char *p = name; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            free(clean);
            *why = "\"..\" component";
            return JJ_EINVAL;
        }
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (w)
                clean[w++] = '/';
            memcpy(clean + w, p, n);
            w += n;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    clean[w] = '\0';
    *out = clean;
    return 0;
}

/* ---- build ---- */

/* Where the compressed stream goes: the temp file, hashed and counted on
 * the way. libarchive calls write_cb; errno of a failed write is kept for
 * the error report. */
typedef struct out_stream {
    int fd;
    jj_hasher *h;
    uint64_t size;
    int write_errno;
} out_stream;

static la_ssize_t write_cb(struct archive *a, void *cd, const void *buf, size_t n)
{
    out_stream *o = cd;
    if (jj_fs_write_all(o->fd, buf, n) != 0) {
        o->write_errno = errno;
        archive_set_error(a, errno, "write failed");
        return -1;
    }
    if (jj_hasher_update(o->h, buf, n, NULL) != 0) {
        archive_set_error(a, ENOMEM, "SHA-256 update failed");
        return -1;
    }
    o->size += n;
    return (la_ssize_t)n;
}

/* An error libarchive reported while writing: a failed write of ours keeps
 * its errno's code; anything else is JJ_EIO. */
static int write_error(struct archive *a, const out_stream *o, const char *path, jj_error *err)
{
    const char *msg = archive_error_string(a);
    if (o->write_errno)
        return jj_error_errno(err, o->write_errno, "write %s", path);
    return jj_error_set_lib(err, JJ_EIO, archive_errno(a), "write %s: %s", path,
                            msg ? msg : "libarchive error");
}

static int check_entries(const jj_tar_entry *entries, size_t count, jj_error *err)
{
    for (size_t i = 0; i < count; i++) {
        const jj_tar_entry *e = &entries[i];
        if (!e->src || !*e->src)
            return jj_error_set(err, JJ_EINVAL, "tarball entry %zu: no source file", i + 1);
        char *clean;
        const char *why;
        int rc = normalize_name(e->name, &clean, &why, err);
        if (rc == JJ_EINVAL || (!rc && strcmp(clean, e->name) != 0))
            rc = jj_error_set(err, JJ_EINVAL, "tarball entry name \"%.*s\": %s", SHOWN_MAX,
                              e->name ? e->name : "", why ? why : "not a clean relative name");
        free(clean);
        if (rc)
            return rc;
        if (e->mode > 07777)
            return jj_error_set(err, JJ_EINVAL, "tarball entry %s: mode %o out of range", e->name,
                                (unsigned)e->mode);
        for (size_t j = 0; j < i; j++)
            if (strcmp(entries[j].name, e->name) == 0)
                return jj_error_set(err, JJ_EINVAL, "tarball entry %s: duplicate name", e->name);
    }
    return 0;
}

/* Appends one file: header from its fstat, then exactly st_size bytes. */
static int add_file(struct archive *a, const out_stream *o, const char *out_path,
                    const jj_tar_entry *e, char *buf, jj_error *err)
{
    int fd = open(e->src, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return jj_error_errno(err, errno, "tarball entry %s: open %s", e->name, e->src);
    struct stat sb;
    int rc = 0;
    if (fstat(fd, &sb) != 0)
        rc = jj_error_errno(err, errno, "tarball entry %s: stat %s", e->name, e->src);
    else if (!S_ISREG(sb.st_mode))
        rc = jj_error_set(err, S_ISDIR(sb.st_mode) ? JJ_EISDIR : JJ_EINVAL,
                          "tarball entry %s: %s is not a regular file", e->name, e->src);
    struct archive_entry *ae = rc ? NULL : archive_entry_new();
    if (!rc && !ae)
        rc = jj_error_set(err, JJ_ENOMEM, "out of memory");
    if (!rc) {
        mode_t mode = e->mode >= 0 ? (mode_t)e->mode : (sb.st_mode & S_IXUSR) ? 0755 : 0644;
        archive_entry_set_pathname(ae, e->name);
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_perm(ae, mode);
        archive_entry_set_size(ae, sb.st_size);
        archive_entry_set_uid(ae, 0);
        archive_entry_set_gid(ae, 0);
        archive_entry_set_uname(ae, "ubuntu");
        archive_entry_set_gname(ae, "ubuntu");
        archive_entry_set_mtime(ae, sb.st_mtime, 0);
        if (archive_write_header(a, ae) != ARCHIVE_OK)
            rc = write_error(a, o, out_path, err);
        archive_entry_free(ae);
    }
    for (off_t left = rc ? 0 : sb.st_size; left > 0;) {
        ssize_t n = read(fd, buf, left < COPY_CHUNK ? (size_t)left : COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = jj_error_errno(err, errno, "tarball entry %s: read %s", e->name, e->src);
            break;
        }
        if (n == 0) {
            rc = jj_error_set(err, JJ_EIO, "tarball entry %s: %s shrank while being archived",
                              e->name, e->src);
            break;
        }
        if (archive_write_data(a, buf, (size_t)n) != n) {
            rc = write_error(a, o, out_path, err);
            break;
        }
        left -= n;
    }
    if (!rc) {
        ssize_t n;
        while ((n = read(fd, buf, 1)) < 0 && errno == EINTR)
            ;
        if (n != 0)
            rc = jj_error_set(err, JJ_EIO, "tarball entry %s: %s changed while being archived",
                              e->name, e->src);
    }
    close(fd);
    if (!rc && archive_write_finish_entry(a) != ARCHIVE_OK)
        rc = write_error(a, o, out_path, err);
    return rc;
}

static int open_writer(struct archive **out, out_stream *o, int level, const char *path,
                       jj_error *err)
{
    char lvl[4];
    snprintf(lvl, sizeof lvl, "%d", level);
    struct archive *a = archive_write_new();
    if (!a)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    /* gzip with no header timestamp (as Go's gzip writer): equal inputs give
     * equal bytes, so a rebuilt tarball keeps its recorded SHA-256. No
     * zero padding after the gzip stream either: Go's gzip reader takes
     * trailing bytes for a next member and fails on them. */
    if (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_set_filter_option(a, "gzip", "compression-level", lvl) != ARCHIVE_OK ||
        archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
        archive_write_open(a, o, NULL, write_cb, NULL) != ARCHIVE_OK) {
        int rc = write_error(a, o, path, err);
        archive_write_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

int jj_tools_build_tarball(const char *out_path, const jj_tar_entry *entries, size_t count,
                           int level, jj_tarball_info *info, jj_error *err)
{
    if (!out_path || !*out_path)
        return jj_error_set(err, JJ_EINVAL, "build tarball: empty output path");
    if (level < 1 || level > 9)
        return jj_error_set(err, JJ_EINVAL, "build tarball: gzip level %d not in 1..9", level);
    int rc = check_entries(entries, count, err);
    if (rc)
        return rc;

    char *buf = malloc(COPY_CHUNK);
    out_stream o = {.fd = -1};
    struct archive *a = NULL;
    jj_fs_atomic af = {.fd = -1};
    bool begun = false;
    if (!buf) {
        rc = jj_error_set(err, JJ_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = jj_hasher_new(JJ_DIGEST_SHA256, &o.h, err)) != 0)
        goto out;
    if ((rc = jj_fs_atomic_begin(&af, out_path, 0644, err)) != 0) {
        jj_error_prefix(err, "build tarball %s", out_path);
        goto out;
    }
    begun = true;
    o.fd = af.fd;
    if ((rc = open_writer(&a, &o, level, out_path, err)) != 0)
        goto out;
    for (size_t i = 0; i < count && !rc; i++)
        rc = add_file(a, &o, out_path, &entries[i], buf, err);
    if (!rc && archive_write_close(a) != ARCHIVE_OK)
        rc = write_error(a, &o, out_path, err);
    if (!rc) {
        o.fd = -1;
        begun = false;
        rc = jj_fs_atomic_commit(&af, err); /* removes the temp file if it fails */
    }
    if (!rc && info) {
        info->size = o.size;
        rc = jj_hasher_final(o.h, info->sha256, err);
    }
out:
    if (a)
        archive_write_free(a); /* after a failure this may still flush into the temp file */
    if (begun)
        jj_fs_atomic_abort(&af); /* nothing half-written is left behind */
    jj_hasher_free(o.h);
    free(buf);
    return rc;
}

/* ---- reading ---- */

const char *jj_tar_type_name(jj_tar_type type)
{
    switch (type) {
    case JJ_TAR_FILE: return "file";
    case JJ_TAR_DIR: return "dir";
    case JJ_TAR_SYMLINK: return "link";
    case JJ_TAR_HARDLINK: return "hardlink";
    case JJ_TAR_CHAR: return "char";
    case JJ_TAR_BLOCK: return "block";
    case JJ_TAR_FIFO: return "fifo";
    case JJ_TAR_SOCKET: return "socket";
    default: return "other";
    }
}

static jj_tar_type member_type(struct archive_entry *e)
{
    if (archive_entry_hardlink(e))
        return JJ_TAR_HARDLINK;
    switch (archive_entry_filetype(e)) {
    case AE_IFREG: return JJ_TAR_FILE;
    case AE_IFDIR: return JJ_TAR_DIR;
    case AE_IFLNK: return JJ_TAR_SYMLINK;
    case AE_IFCHR: return JJ_TAR_CHAR;
    case AE_IFBLK: return JJ_TAR_BLOCK;
    case AE_IFIFO: return JJ_TAR_FIFO;
    case AE_IFSOCK: return JJ_TAR_SOCKET;
    default: return JJ_TAR_OTHER;
    }
}

/* A reader of one tar file, plain or gzip'd, never through an external
 * decompression program. */
typedef struct reader {
    int fd;
    struct archive *a;
} reader;

static void reader_close(reader *r)
{
    if (r->a)
        archive_read_free(r->a);
    r->a = NULL;
    if (r->fd >= 0)
        close(r->fd); /* archive_read_open_fd never closes it */
    r->fd = -1;
}

static int read_error(reader *r, const char *path, jj_error *err)
{
    int e = archive_errno(r->a);
    const char *msg = archive_error_string(r->a);
    /* libarchive reports bad bytes as EILSEQ (its private FILE_FORMAT) or
     * -1 (MISC); any other errno means reading them failed. */
    int code = (e <= 0 || e == EILSEQ) ? JJ_ECORRUPT : jj_error_from_errno(e);
    return jj_error_set_lib(err, code, e, "read tarball %s: %s", path,
                            msg ? msg : "libarchive error");
}

static int reader_open(reader *r, const char *path, jj_error *err)
{
    r->a = NULL;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return jj_error_errno(err, errno, "open tarball %s", path);
    struct stat sb;
    int e = fstat(r->fd, &sb) != 0 ? errno : S_ISDIR(sb.st_mode) ? EISDIR : 0;
    if (e) {
        reader_close(r);
        return jj_error_errno(err, e, "open tarball %s", path);
    }
    r->a = archive_read_new();
    if (!r->a) {
        reader_close(r);
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    }
    /* ARCHIVE_WARN here would mean "no zlib, using an external gzip": refuse. */
    if (archive_read_support_filter_gzip(r->a) != ARCHIVE_OK) {
        reader_close(r);
        return jj_error_set(err, JJ_EUNSUPPORTED, "read tarball %s: libarchive lacks zlib", path);
    }
    int rc = 0;
    if (archive_read_support_format_tar(r->a) != ARCHIVE_OK ||
        archive_read_open_fd(r->a, r->fd, COPY_CHUNK) != ARCHIVE_OK)
        rc = read_error(r, path, err);
    if (rc)
        reader_close(r);
    return rc;
}

/* Next header: 1 with *e set, 0 at the end, or a negative code. */
static int reader_next(reader *r, const char *path, struct archive_entry **e, jj_error *err)
{
    int st = archive_read_next_header(r->a, e);
    if (st == ARCHIVE_EOF)
        return 0;
    if (st == ARCHIVE_OK || st == ARCHIVE_WARN)
        return 1;
    return read_error(r, path, err);
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

void jj_tools_free_members(jj_tar_member *members, size_t count)
{
    if (!members)
        return;
    for (size_t i = 0; i < count; i++) {
        free(members[i].name);
        free(members[i].target);
        free(members[i].uname);
        free(members[i].gname);
    }
    free(members);
}

static int fill_member(jj_tar_member *m, struct archive_entry *e, jj_error *err)
{
    memset(m, 0, sizeof *m);
    m->type = member_type(e);
    m->mode = archive_entry_perm(e) & 07777;
    m->size = archive_entry_size(e);
    m->mtime = archive_entry_mtime(e);
    m->uid = archive_entry_uid(e);
    m->gid = archive_entry_gid(e);
    const char *target = m->type == JJ_TAR_HARDLINK ? archive_entry_hardlink(e)
                         : m->type == JJ_TAR_SYMLINK ? archive_entry_symlink(e)
                                                     : NULL;
    m->name = dup_or_empty(archive_entry_pathname(e));
    m->uname = dup_or_empty(archive_entry_uname(e));
    m->gname = dup_or_empty(archive_entry_gname(e));
    if (target)
        m->target = strdup(target);
    if (!m->name || !m->uname || !m->gname || (target && !m->target))
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    return 0;
}

int jj_tools_list_tarball(const char *path, jj_tar_member **members, size_t *count,
                          jj_error *err)
{
    *members = NULL;
    *count = 0;
    reader r;
    int rc = reader_open(&r, path, err);
    if (rc)
        return rc;
    jj_tar_member *v = NULL;
    size_t n = 0, cap = 0;
    struct archive_entry *e;
    while ((rc = reader_next(&r, path, &e, err)) == 1) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            jj_tar_member *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                rc = jj_error_set(err, JJ_ENOMEM, "out of memory");
                break;
            }
            v = nv;
            cap = ncap;
        }
        rc = fill_member(&v[n], e, err);
        n++; /* counted even when half filled, so it is freed */
        if (rc)
            break;
    }
    reader_close(&r);
    if (rc) {
        jj_tools_free_members(v, n);
        return rc;
    }
    *members = v;
    *count = n;
    return 0;
}

/* ---- extraction ---- */

/* One extracted member: its normalised name, and whether it is a directory. */
typedef struct extracted {
    char *name;
    bool dir;
} extracted;

typedef struct extract_list {
    extracted *v;
    size_t n, cap;
} extract_list;

static void extract_list_free(extract_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* Records name (taking ownership) unless already there (a later member of
 * the same name replaces the earlier one on disk). */
static int extract_list_add(extract_list *l, char *name, bool dir, jj_error *err)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].name, name) == 0) {
            l->v[i].dir = dir;
            free(name);
            return 0;
        }
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        extracted *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            free(name);
            return jj_error_set(err, JJ_ENOMEM, "out of memory");
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].name = name;
    l->v[l->n].dir = dir;
    l->n++;
    return 0;
}

/* Opens (creating with exactly 0755 if `create`) the directory rel below
 * rootfd, one component at a time and never through a symlink. rel is
 * normalised; "" is rootfd itself. Returns an fd the caller closes. */
static int open_dirs_at(int rootfd, const char *rel, size_t len, bool create, const char *shown,
                        jj_error *err)
{
    int cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
    if (cur < 0)
        return jj_error_errno(err, errno, "dup");
    char comp[NAME_MAX + 1];
    for (size_t i = 0; i < len;) {
        const char *slash = memchr(rel + i, '/', len - i);
        size_t n = slash ? (size_t)(slash - (rel + i)) : len - i;
        if (n > NAME_MAX) {
            close(cur);
            return jj_error_set(err, JJ_ERANGE, "%s: name too long", shown);
        }
        memcpy(comp, rel + i, n);
        comp[n] = '\0';
        if (create) {
            if (mkdirat(cur, comp, 0755) == 0) {
                if (fchmodat(cur, comp, 0755, 0) != 0) { /* the umask must not apply */
                    int e = errno;
                    close(cur);
                    return jj_error_errno(err, e, "chmod %s", shown);
                }
            } else if (errno != EEXIST) {
                int e = errno;
                close(cur);
                return jj_error_errno(err, e, "mkdir for %s", shown);
            }
        }
        int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(cur);
        if (next < 0)
            return jj_error_errno(err, e == ELOOP ? ENOTDIR : e, "open directory for %s", shown);
        cur = next;
        i += n + 1;
    }
    return cur;
}

/* Splits a normalised name into its directory part (length) and base. */
static inline const char *split_base(const char *name, size_t *dir_len)
{
    const char *slash = strrchr(name, '/');
    *dir_len = slash ? (size_t)(slash - name) : 0;
    return slash ? slash + 1 : name;
}

/* Writes the current member's data into a new file at name below tfd. */
static int extract_file(reader *r, const char *path, int tfd, const char *name, mode_t mode,
                        char *buf, jj_error *err)
{
    size_t dlen;
    const char *base = split_base(name, &dlen);
    int dfd = open_dirs_at(tfd, name, dlen, true, name, err);
    if (dfd < 0)
        return dfd;
    int fd = openat(dfd, base, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    int e = errno;
    close(dfd);
    if (fd < 0)
        return jj_error_errno(err, e, "create %s", name);
    int rc = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(r->a, buf, COPY_CHUNK);
        if (n == 0)
            break;
        if (n < 0) {
            rc = read_error(r, path, err);
            break;
        }
        if (jj_fs_write_all(fd, buf, (size_t)n) != 0) {
            rc = jj_error_errno(err, errno, "write %s", name);
            break;
        }
    }
    if (!rc && fchmod(fd, mode & 0777) != 0)
        rc = jj_error_errno(err, errno, "chmod %s", name);
    if (!rc && fsync(fd) != 0)
        rc = jj_error_errno(err, errno, "fsync %s", name);
    if (close(fd) != 0 && !rc)
        rc = jj_error_errno(err, errno, "close %s", name);
    return rc;
}

/* Refusal of a member, naming it and the tarball. */
static int refuse(const char *path, const char *member, const char *why, jj_error *err)
{
    return jj_error_set(err, JJ_EINVAL, "refusing to extract \"%.*s\" from %s: %s", SHOWN_MAX,
                        member ? member : "", path, why);
}

/* Phase 1: every member into the temp directory tfd. */
static int extract_to_temp(reader *r, const char *path, int tfd, extract_list *l, jj_error *err)
{
    char *buf = malloc(COPY_CHUNK);
    if (!buf)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    struct archive_entry *e;
    int rc;
    while ((rc = reader_next(r, path, &e, err)) == 1) {
        const char *raw = archive_entry_pathname(e);
        jj_tar_type type = member_type(e);
        if (type != JJ_TAR_FILE && type != JJ_TAR_DIR) {
            char why[64];
            snprintf(why, sizeof why, "%s members are not allowed", jj_tar_type_name(type));
            rc = refuse(path, raw, why, err);
            break;
        }
        char *clean;
        const char *why;
        rc = normalize_name(raw, &clean, &why, err);
        if (rc) {
            if (why)
                rc = refuse(path, raw, why, err);
            break;
        }
        if (!*clean) { /* "./": the destination itself */
            free(clean);
            if (type == JJ_TAR_DIR)
                continue;
            rc = refuse(path, raw, "a file without a name", err);
            break;
        }
        if (type == JJ_TAR_DIR) {
            int dfd = open_dirs_at(tfd, clean, strlen(clean), true, clean, err);
            rc = dfd < 0 ? dfd : 0;
            if (dfd >= 0)
                close(dfd);
        } else {
            rc = extract_file(r, path, tfd, clean, archive_entry_perm(e), buf, err);
        }
        if (rc) {
            free(clean);
            break;
        }
        if ((rc = extract_list_add(l, clean, type == JJ_TAR_DIR, err)) != 0)
            break;
    }
    free(buf);
    return rc;
}

/* Phase 2: before anything moves, make sure nothing in dest blocks a member:
 * every existing parent must be a real directory (not a symlink), and an
 * existing file must not stand where a directory goes or vice versa. */
static int check_dest(int destfd, const extract_list *l, jj_error *err)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *name = l->v[i].name;
        size_t len = strlen(name);
        int cur = fcntl(destfd, F_DUPFD_CLOEXEC, 0);
        if (cur < 0)
            return jj_error_errno(err, errno, "dup");
        int rc = 0;
        char comp[NAME_MAX + 1];
        for (size_t pos = 0; pos < len && !rc;) {
            const char *slash = memchr(name + pos, '/', len - pos);
            size_t n = slash ? (size_t)(slash - (name + pos)) : len - pos;
            bool last = !slash;
            if (n > NAME_MAX) {
                rc = jj_error_set(err, JJ_ERANGE, "%s: name too long", name);
                break;
            }
            memcpy(comp, name + pos, n);
            comp[n] = '\0';
            struct stat sb;
            if (fstatat(cur, comp, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
                if (errno != ENOENT)
                    rc = jj_error_errno(err, errno, "stat destination for %s", name);
                break; /* missing: the rest will be created */
            }
            bool want_dir = !last || l->v[i].dir;
            if (want_dir && !S_ISDIR(sb.st_mode)) {
                rc = jj_error_set(err, JJ_ENOTDIR, "cannot extract %s: %.*s exists and is not a directory",
                                  name, (int)(pos + n), name);
                break;
            }
            if (!want_dir && !S_ISREG(sb.st_mode)) {
                rc = jj_error_set(err, S_ISDIR(sb.st_mode) ? JJ_EISDIR : JJ_EEXIST,
                                  "cannot extract %s: something other than a file is there", name);
                break;
            }
            if (last)
                break;
            int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (next < 0) {
                rc = jj_error_errno(err, errno, "open destination directory for %s", name);
                break;
            }
            close(cur);
            cur = next;
            pos += n + 1;
        }
        close(cur);
        if (rc)
            return rc;
    }
    return 0;
}

/* Phase 3: rename every file from the temp dir into dest, creating dirs. */
static int move_into_place(int tfd, int destfd, const extract_list *l, jj_error *err)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *name = l->v[i].name;
        if (l->v[i].dir) {
            int dfd = open_dirs_at(destfd, name, strlen(name), true, name, err);
            if (dfd < 0)
                return dfd;
            close(dfd);
            continue;
        }
        size_t dlen;
        const char *base = split_base(name, &dlen);
        int dfd = open_dirs_at(destfd, name, dlen, true, name, err);
        if (dfd < 0)
            return dfd;
        int rc = 0;
        if (renameat(tfd, name, dfd, base) != 0)
            rc = jj_error_errno(err, errno, "move %s into place", name);
        else if (fsync(dfd) != 0 && errno != EINVAL)
            rc = jj_error_errno(err, errno, "fsync directory of %s", name);
        close(dfd);
        if (rc)
            return rc;
    }
    return 0;
}

/* Hands the names over as a plain string array (archive order). */
static int take_names(extract_list *l, char ***names, size_t *count, jj_error *err)
{
    char **v = malloc((l->n ? l->n : 1) * sizeof *v);
    if (!v)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    for (size_t i = 0; i < l->n; i++)
        v[i] = l->v[i].name;
    *names = v;
    *count = l->n;
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
    return 0;
}

int jj_tools_extract_tarball(const char *path, const char *dest_dir, char ***names,
                             size_t *count, jj_error *err)
{
    *names = NULL;
    *count = 0;
    if (!dest_dir || !*dest_dir)
        return jj_error_set(err, JJ_EINVAL, "extract tarball: empty destination");
    reader r;
    int rc = reader_open(&r, path, err);
    if (rc)
        return rc;
    bool created = false;
    char *tmp = NULL, *prefix = NULL;
    int destfd = -1, tfd = -1;
    extract_list l = {0};

    struct stat sb;
    if (stat(dest_dir, &sb) != 0 && errno == ENOENT) {
        if ((rc = jj_fs_mkdir(dest_dir, 0755, err)) != 0)
            goto out;
        created = true;
    }
    destfd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (destfd < 0) {
        rc = jj_error_errno(err, errno, "open destination %s", dest_dir);
        goto out;
    }
    size_t plen = strlen(dest_dir) + sizeof "/.juju-extract-";
    if (!(prefix = malloc(plen))) {
        rc = jj_error_set(err, JJ_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(prefix, plen, "%s/.juju-extract-", dest_dir);
    if ((rc = jj_fs_mkdtemp(prefix, &tmp, err)) != 0)
        goto out;
    tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tfd < 0) {
        rc = jj_error_errno(err, errno, "open %s", tmp);
        goto out;
    }
    if ((rc = extract_to_temp(&r, path, tfd, &l, err)) != 0)
        goto out;
    if ((rc = check_dest(destfd, &l, err)) != 0)
        goto out;
    if ((rc = move_into_place(tfd, destfd, &l, err)) != 0)
        goto out;
    if (fsync(destfd) != 0 && errno != EINVAL) {
        rc = jj_error_errno(err, errno, "fsync %s", dest_dir);
        goto out;
    }
    rc = take_names(&l, names, count, err);
out:
    reader_close(&r);
    if (tfd >= 0)
        close(tfd);
    if (destfd >= 0)
        close(destfd);
    if (tmp)
        jj_fs_remove_tree(tmp, NULL);
    if (rc && created)
        rmdir(dest_dir);
    extract_list_free(&l);
    free(tmp);
    free(prefix);
    return rc;
}
