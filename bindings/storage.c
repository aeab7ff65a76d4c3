/* storage.c: Lua binding of core/storage (module `juju.storage`).
 *
 * `open_dir` gives a `juju.storage.Dir`, the local-directory environ
 * storage; cloud storages are Lua tables with the same methods. Misuse
 * (wrong types, a closed Dir) raises; operational failure, including an
 * invalid object name, returns nil, message, code. Modes are integers or
 * octal strings ("0644"). Memory the core hands over is parked in an
 * "owned" userdata first, so a Lua memory error while pushing results
 * cannot leak it.
 */
#include "common.h"
#include "options.h"
#include "crypto.h"
#include "fs.h"
#include "storage.h"

#include <stdlib.h>
#include <string.h>

#define DIR_MT "juju.storage.Dir"

int luaopen_juju_storage(lua_State *L);

/* ---- freeing functions for owned boxes (jj_owned, common.h) ---- */

static void free_plain(void *p, size_t n)
{
    (void)n;
    free(p);
}

static void free_names(void *p, size_t n)
{
    jj_fs_free_names(p, n);
}

/* ---- argument helpers ---- */

/* A file path argument; an embedded NUL would silently cut it. */
static const char *check_path(lua_State *L, int idx)
{
    size_t len;
    const char *s = luaL_checklstring(L, idx, &len);
    luaL_argcheck(L, strlen(s) == len, idx, "path contains NUL");
    return s;
}

/* Optional mode (see jj_check_mode_arg); -1 when absent. */
static inline int opt_mode(lua_State *L, int idx)
{
    return (int)jj_check_mode_arg(L, idx, -1);
}

/* An object name (a string: else misuse); NULL with err filled when the
 * core rejects it, so the caller returns nil, msg, "EINVAL". */
static const char *check_name(lua_State *L, int idx, jj_error *err)
{
    size_t len;
    const char *name = luaL_checklstring(L, idx, &len);
    return jj_storage_check_name(name, len, err) ? NULL : name;
}

static inline int push_ok(lua_State *L, int rc, const jj_error *err)
{
    if (rc)
        return jj_push_error(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- Dir ---- */

typedef struct dir_ud {
    jj_storage *s; /* NULL once closed */
} dir_ud;

static jj_storage *check_dir(lua_State *L)
{
    dir_ud *d = luaL_checkudata(L, 1, DIR_MT);
    if (!d->s)
        luaL_argerror(L, 1, "storage Dir is closed");
    return d->s;
}

static int dir_cleanup(lua_State *L)
{
    dir_ud *d = luaL_checkudata(L, 1, DIR_MT);
    jj_storage_close(d->s);
    d->s = NULL;
    return 0;
}

static int dir_tostring(lua_State *L)
{
    dir_ud *d = luaL_checkudata(L, 1, DIR_MT);
    if (d->s)
        lua_pushfstring(L, DIR_MT " (%s)", jj_storage_root(d->s));
    else
        lua_pushliteral(L, DIR_MT " (closed)");
    return 1;
}

static int l_open_dir(lua_State *L)
{
    const char *path = check_path(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    mode_t file_mode = 0600, dir_mode = 0700;
    int durable = 1;
    if (lua_istable(L, 2)) {
        file_mode = (mode_t)jj_opt_mode(L, 2, "mode", file_mode);
        dir_mode = (mode_t)jj_opt_mode(L, 2, "dir_mode", dir_mode);
        lua_getfield(L, 2, "durable");
        if (!lua_isnil(L, -1))
            durable = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    dir_ud *d = lua_newuserdatauv(L, sizeof *d, 0);
    d->s = NULL;
    luaL_setmetatable(L, DIR_MT);
    jj_error err;
    if (jj_storage_open_dir(path, file_mode, dir_mode, &d->s, &err))
        return jj_push_error(L, &err);
    jj_storage_set_durable(d->s, durable);
    return 1;
}

static int dir_put(lua_State *L)
{
    jj_storage *s = check_dir(L);
    jj_error err;
    const char *name = check_name(L, 2, &err);
    size_t len;
    const char *data = luaL_checklstring(L, 3, &len);
    int mode = opt_mode(L, 4);
    if (!name)
        return jj_push_error(L, &err);
    return push_ok(L, jj_storage_put(s, name, data, len, mode, &err), &err);
}

static int dir_put_file(lua_State *L)
{
    jj_storage *s = check_dir(L);
    jj_error err;
    const char *name = check_name(L, 2, &err);
    const char *src = check_path(L, 3);
    int mode = opt_mode(L, 4);
    if (!name)
        return jj_push_error(L, &err);
    uint64_t size;
    unsigned char md[32];
    char hex[65];
    if (jj_storage_put_file(s, name, src, mode, &size, md, &err))
        return jj_push_error(L, &err);
    jj_hex_encode(md, sizeof md, hex);
    lua_pushinteger(L, (lua_Integer)size);
    lua_pushstring(L, hex);
    return 2;
}

static int dir_put_file_link(lua_State *L)
{
    jj_storage *s = check_dir(L);
    jj_error err;
    const char *name = check_name(L, 2, &err);
    const char *src = check_path(L, 3);
    int mode = opt_mode(L, 4);
    /* The caller's digest of src (a cache's record): a linked file is then
     * not read at all. */
    size_t known_len = 0;
    const char *known = luaL_optlstring(L, 5, NULL, &known_len);
    luaL_argcheck(L, known == NULL || known_len == 64, 5, "a SHA-256 hex digest expected");
    if (!name)
        return jj_push_error(L, &err);
    uint64_t size;
    unsigned char md[32];
    char hex[65];
    bool linked;
    if (jj_storage_put_file_link(s, name, src, mode, &size, known ? NULL : md, &linked, &err))
        return jj_push_error(L, &err);
    lua_pushinteger(L, (lua_Integer)size);
    if (known) {
        lua_pushvalue(L, 5);
    } else {
        jj_hex_encode(md, sizeof md, hex);
        lua_pushstring(L, hex);
    }
    lua_pushboolean(L, linked);
    return 3;
}

static int dir_get(lua_State *L)
{
    jj_storage *s = check_dir(L);
    jj_error err;
    const char *name = check_name(L, 2, &err);
    if (!name)
        return jj_push_error(L, &err);
    jj_owned *o = jj_push_owned(L, free_plain);
    char *buf;
    size_t len;
    if (jj_storage_get(s, name, &buf, &len, &err))
        return jj_push_error(L, &err);
    o->p = buf;
    lua_pushlstring(L, buf, len);
    jj_owned_release(o);
    return 1;
}

static int dir_get_to_file(lua_State *L)
{
    jj_storage *s = check_dir(L);
    jj_error err;
    const char *name = check_name(L, 2, &err);
    const char *dst = check_path(L, 3);
    int mode = opt_mode(L, 4);
    if (!name)
        return jj_push_error(L, &err);
    uint64_t size;
    if (jj_storage_get_to_file(s, name, dst, mode, &size, &err))
        return jj_push_error(L, &err);
    lua_pushinteger(L, (lua_Integer)size);
    return 1;
}

static int dir_exists(lua_State *L)
{
    jj_storage *s = check_dir(L);
    jj_error err;
    const char *name = check_name(L, 2, &err);
    bool exists;
    if (!name || jj_storage_exists(s, name, &exists, &err))
        return jj_push_error(L, &err);
    lua_pushboolean(L, exists);
    return 1;
}

static int dir_size(lua_State *L)
{
    jj_storage *s = check_dir(L);
    jj_error err;
    const char *name = check_name(L, 2, &err);
    uint64_t size;
    if (!name || jj_storage_size(s, name, &size, &err))
        return jj_push_error(L, &err);
    lua_pushinteger(L, (lua_Integer)size);
    return 1;
}

static int dir_list(lua_State *L)
{
    jj_storage *s = check_dir(L);
    size_t plen = 0;
    const char *prefix = luaL_optlstring(L, 2, "", &plen);
    jj_owned *o = jj_push_owned(L, free_names);
    lua_newtable(L);
    if (strlen(prefix) != plen) /* no name contains NUL, so nothing matches */
        return 1;
    char **names;
    size_t count;
    jj_error err;
    if (jj_storage_list(s, prefix, &names, &count, &err))
        return jj_push_error(L, &err);
    o->p = names;
    o->n = count;
    for (size_t i = 0; i < count; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    jj_owned_release(o);
    return 1;
}

static int dir_remove(lua_State *L)
{
    jj_storage *s = check_dir(L);
    jj_error err;
    const char *name = check_name(L, 2, &err);
    if (!name)
        return jj_push_error(L, &err);
    return push_ok(L, jj_storage_remove(s, name, &err), &err);
}

static int dir_remove_all(lua_State *L)
{
    jj_storage *s = check_dir(L);
    jj_error err;
    return push_ok(L, jj_storage_remove_all(s, &err), &err);
}

typedef int (*name_to_string_fn)(const jj_storage *, const char *, char **, jj_error *);

static inline int name_to_string(lua_State *L, name_to_string_fn fn)
{
    jj_storage *s = check_dir(L);
    jj_error err;
    const char *name = check_name(L, 2, &err);
    if (!name)
        return jj_push_error(L, &err);
    jj_owned *o = jj_push_owned(L, free_plain);
    char *out;
    if (fn(s, name, &out, &err))
        return jj_push_error(L, &err);
    o->p = out;
    lua_pushstring(L, out);
    jj_owned_release(o);
    return 1;
}

static int dir_url(lua_State *L)
{
    return name_to_string(L, jj_storage_url);
}

static int dir_path(lua_State *L)
{
    return name_to_string(L, jj_storage_path);
}

static int dir_root(lua_State *L)
{
    lua_pushstring(L, jj_storage_root(check_dir(L)));
    return 1;
}

static int l_check_name(lua_State *L)
{
    jj_error err;
    const char *name = check_name(L, 1, &err);
    return push_ok(L, name ? 0 : err.code, &err);
}

static const luaL_Reg dir_methods[] = {
    {"put", dir_put},
    {"put_file", dir_put_file},
    {"put_file_link", dir_put_file_link},
    {"get", dir_get},
    {"get_to_file", dir_get_to_file},
    {"exists", dir_exists},
    {"size", dir_size},
    {"list", dir_list},
    {"remove", dir_remove},
    {"remove_all", dir_remove_all},
    {"url", dir_url},
    {"path", dir_path},
    {"root", dir_root},
    {"close", dir_cleanup},
    {NULL, NULL},
};

static const luaL_Reg dir_meta[] = {
    {"__close", dir_cleanup},
    {"__gc", dir_cleanup},
    {"__tostring", dir_tostring},
    {NULL, NULL},
};

static const luaL_Reg storage_functions[] = {
    {"open_dir", l_open_dir},
    {"check_name", l_check_name},
    {NULL, NULL},
};

int luaopen_juju_storage(lua_State *L)
{
    jj_new_class(L, DIR_MT, dir_methods, dir_meta);
    luaL_newlib(L, storage_functions);
    return 1;
}
