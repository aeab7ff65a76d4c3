/* tools.h: Juju tools tarballs (bootstrap.md 2.6), through libarchive.
 *
 * A tools tarball is a gzip'd tar of regular files at the archive root
 * (`jujud`, `FORCE-VERSION`), owned by uid/gid 0 with uname/gname "ubuntu",
 * and no directory entries. Building streams every file through a fixed
 * buffer and hashes the compressed output while writing it, so the SHA-256
 * and size recorded in simplestreams metadata cost no second pass and no
 * memory proportional to the tarball. Extraction is for tarballs fetched
 * from elsewhere, so it refuses anything that could write outside the
 * destination (absolute names, "..", links, devices) before anything new
 * appears there. Every function returns 0 or a negative JJ_E* code and
 * fills `err` (which may be NULL).
 */
#ifndef JUJU_CORE_TOOLS_H
#define JUJU_CORE_TOOLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* One file to archive. */
typedef struct jj_tar_entry {
    const char *src;  /* file to read */
    const char *name; /* name in the archive: relative, no ".", ".." or empty components */
    int mode;         /* 0..07777, or < 0: 0755 if src is owner-executable, else 0644 */
} jj_tar_entry;

typedef struct jj_tarball_info {
    uint64_t size;             /* bytes of the compressed tarball */
    unsigned char sha256[32];  /* digest of the compressed tarball */
} jj_tarball_info;

#define JJ_TARBALL_DEFAULT_LEVEL 6

/* Writes a gzip'd (compression `level` 1..9; the gzip header carries no
 * timestamp, so equal inputs give equal tarballs) pax-restricted tar of
 * `entries` to out_path (mode 0644), through a temp file beside it that is
 * renamed into place on success and removed on any failure. Each header:
 * regular file, uid/gid 0, uname/gname "ubuntu", mtime of src (whole
 * seconds). A file that changes size while being archived is an error
 * (JJ_EIO). Duplicate or unclean names are JJ_EINVAL. */
int jj_tools_build_tarball(const char *out_path, const jj_tar_entry *entries, size_t count,
                           int level, jj_tarball_info *info, jj_error *err);

typedef enum jj_tar_type {
    JJ_TAR_FILE,
    JJ_TAR_DIR,
    JJ_TAR_SYMLINK,
    JJ_TAR_HARDLINK,
    JJ_TAR_CHAR,
    JJ_TAR_BLOCK,
    JJ_TAR_FIFO,
    JJ_TAR_SOCKET,
    JJ_TAR_OTHER
} jj_tar_type;

/* "file", "dir", "link" (symlink), "hardlink", "char", "block", "fifo",
 * "socket", "other". */
const char *jj_tar_type_name(jj_tar_type type);

/* One archive member as stored in its header. */
typedef struct jj_tar_member {
    char *name;     /* as stored (not normalised) */
    char *target;   /* symlink / hardlink target, else NULL */
    char *uname;    /* "" when absent */
    char *gname;    /* "" when absent */
    jj_tar_type type;
    mode_t mode;    /* permission bits (07777) */
    int64_t size;
    int64_t mtime;
    int64_t uid, gid;
} jj_tar_member;

/* Lists the members of a (gzip'd or plain) tar file. *members is a
 * malloc'd array of *count entries owned by the caller; free it with
 * jj_tools_free_members. Unreadable data is JJ_ECORRUPT. */
int jj_tools_list_tarball(const char *path, jj_tar_member **members, size_t *count,
                          jj_error *err);

/* Takes ownership of members and frees them. NULL ok. */
void jj_tools_free_members(jj_tar_member *members, size_t count);

/* Extracts path into dest_dir (created 0755 if missing but its parent
 * exists). Regular files and directories only: an absolute name, a ".."
 * component, a link, device, fifo or socket member is refused with
 * JJ_EINVAL naming the member. Members are first extracted into a fresh
 * temp directory inside dest_dir and existing dest_dir content that would
 * block them is checked, so on any refusal or read error nothing new is
 * left in dest_dir; only then are files renamed into place. Names are
 * normalised ("./a" -> "a"); missing parents are created 0755, files get
 * their stored mode masked to 0777, directory entries 0755; existing files
 * are replaced. *names (archive order, no duplicates, directories
 * included) is a malloc'd array of *count malloc'd strings owned by the
 * caller; free it with jj_fs_free_names (fs.h). */
int jj_tools_extract_tarball(const char *path, const char *dest_dir, char ***names,
                             size_t *count, jj_error *err);

#endif
