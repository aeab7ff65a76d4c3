/* storage.h: environ storage, local-directory backend.
 *
 * A bootstrap keeps `provider-state`, tools tarballs and simplestreams
 * metadata in "environ storage": a flat namespace of '/'-separated object
 * names. Cloud backends (S3, Swift ...) are Lua tables with the same
 * methods; this is the one backed by a local directory (the local provider,
 * tests, `--metadata-source` trees).
 *
 * Writes are atomic (a ".<base>.tmp-XXXXXX" temp file beside the object,
 * fsync, rename, fsync of the directory), so a reader sees the old object or
 * the new one, never a mix; listings skip such temp files. Object names are
 * validated before any path is built from them, so a name can never escape
 * the root. Every function returns 0 or a negative JJ_E* code and fills
 * `err` (which may be NULL).
 */
#ifndef JUJU_CORE_STORAGE_H
#define JUJU_CORE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

typedef struct jj_storage jj_storage;

/* Checks an object name: non-empty, relative, no empty ("//", trailing '/'),
 * "." or ".." components, no NUL (len counts every byte), no backslash.
 * JJ_EINVAL with a message naming the name otherwise. */
int jj_storage_check_name(const char *name, size_t len, jj_error *err);

/* Opens the directory `path` as a storage root, creating it (and missing
 * parents) with mode 0700 if needed. `file_mode` is the default mode of
 * stored objects, `dir_mode` that of the subdirectories puts create. On
 * success *out is owned by the caller; release with jj_storage_close. */
int jj_storage_open_dir(const char *path, mode_t file_mode, mode_t dir_mode, jj_storage **out,
                        jj_error *err);

/* durable == 0: writes and removes stay atomic but are not fsynced (an
 * emulated cloud's storage, whose durability is not the client's). */
void jj_storage_set_durable(jj_storage *s, int durable);

/* Takes ownership of s and frees it. NULL ok. */
void jj_storage_close(jj_storage *s);

/* The absolute, symlink-free root directory; owned by s. */
const char *jj_storage_root(const jj_storage *s);

/* Stores data under name atomically; parent directories (and the root, if
 * remove_all took it away) are created. mode < 0 uses the default mode. */
int jj_storage_put(jj_storage *s, const char *name, const void *data, size_t len, int mode,
                   jj_error *err);

/* Streams the file src_path into name (fixed buffer, atomic as put);
 * *size and sha256 (32 bytes) receive the size and digest of what was
 * stored. Either output may be NULL. */
int jj_storage_put_file(jj_storage *s, const char *name, const char *src_path, int mode,
                        uint64_t *size, unsigned char *sha256, jj_error *err);

/* As jj_storage_put_file, but the object becomes a second name (hard
 * link) of src_path when src is a regular file on the same filesystem with
 * exactly the object's permission bits; otherwise it is copied. Only for a
 * source that is replaced by rename and never rewritten in place (a cached
 * tools tarball): the object shares its content. *linked says which
 * happened; *size and sha256 are src's (read, not copied; a NULL sha256
 * spares reading a linked file at all). */
int jj_storage_put_file_link(jj_storage *s, const char *name, const char *src_path, int mode,
                             uint64_t *size, unsigned char *sha256, bool *linked, jj_error *err);

/* Reads the whole object. On success *out is a malloc'd buffer of *len
 * bytes plus a terminating NUL, owned by the caller (free()). JJ_ENOENT
 * when there is no such object. */
int jj_storage_get(jj_storage *s, const char *name, char **out, size_t *len, jj_error *err);

/* Streams the object into dst_path (atomic: temp file beside dst_path).
 * mode < 0 keeps the stored object's permission bits. *size (may be NULL)
 * receives the byte count. */
int jj_storage_get_to_file(jj_storage *s, const char *name, const char *dst_path, int mode,
                           uint64_t *size, jj_error *err);

/* *exists is true when name is a stored object (a regular file). */
int jj_storage_exists(jj_storage *s, const char *name, bool *exists, jj_error *err);

/* Size in bytes of an object; JJ_ENOENT if missing, JJ_EISDIR for a
 * directory (a prefix, not an object). */
int jj_storage_size(jj_storage *s, const char *name, uint64_t *size, jj_error *err);

/* Names of all objects (regular files, recursively; symlinks are neither
 * listed nor followed) starting with prefix (NULL or "" for all), relative
 * to the root, '/'-separated, sorted bytewise. A missing root lists
 * nothing. *names is a malloc'd array of *count malloc'd strings owned by
 * the caller; free it with jj_fs_free_names (fs.h). */
int jj_storage_list(jj_storage *s, const char *prefix, char ***names, size_t *count,
                    jj_error *err);

/* Removes one object; a missing object is success. */
int jj_storage_remove(jj_storage *s, const char *name, jj_error *err);

/* Removes every object and directory, the root included (a later put
 * recreates it). */
int jj_storage_remove_all(jj_storage *s, jj_error *err);

/* The file path of an object: root + "/" + name. *out is malloc'd, owned
 * by the caller. */
int jj_storage_path(const jj_storage *s, const char *name, char **out, jj_error *err);

/* "file://" + the percent-encoded path (everything but unreserved
 * characters and '/' is encoded). *out is malloc'd, owned by the caller. */
int jj_storage_url(const jj_storage *s, const char *name, char **out, jj_error *err);

#endif
