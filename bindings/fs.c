/* fs.c: Lua binding of core/fs (module `juju.fs`).
 *
 * Misuse (wrong argument types, a released lock) raises; operational
 * failure returns nil, message, code. Modes are integers (0x180, or
 * tonumber("600", 8)) or octal strings ("0600"). Memory the core hands
 * over is parked in a small "owned" userdata first, so a Lua memory error
 * while pushing results cannot leak it.
 */
#include "common.h"
#include "options.h"
#include "fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCK_MT "juju.fs.Lock"

int luaopen_juju_fs(lua_State *L);

/* Freeing functions for the owned boxes (jj_owned, common.h). */

static void free_plain(void *p, size_t n)
{
    (void)n;
    free(p);
}

static void free_names(void *p, size_t n)
{
    jj_fs_free_names(p, n);
}

static void free_entries(void *p, size_t n)
{
    jj_fs_free_entries(p, n);
}

/* Optional mode argument (see jj_check_mode_arg). */
static inline mode_t opt_mode(lua_State *L, int idx, mode_t def)
{
    return (mode_t)jj_check_mode_arg(L, idx, def);
}

static inline int push_ok(lua_State *L, int rc, const jj_error *err)
{
    if (rc)
        return jj_push_error(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* fs.read_file(path [, {max_size = n}]): with max_size, a regular file of
 * at most n bytes (jj_fs_read_regular). */
static int l_read_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int opts = lua_isnoneornil(L, 2) ? 0 : 2;
    if (opts) {
        luaL_checktype(L, 2, LUA_TTABLE);
        static const char *const known[] = {"max_size", NULL};
        jj_opt_check_names(L, 2, known, "read_file");
    }
    lua_Integer max = jj_opt_integer(L, opts, "max_size", -1, 0, LUA_MAXINTEGER);
    lua_pop(L, 1);
    jj_owned *o = jj_push_owned(L, free_plain);
    jj_error err;
    char *buf;
    size_t len;
    int rc = max >= 0 ? jj_fs_read_regular(path, (size_t)max, &buf, &len, &err)
                      : jj_fs_read_file(path, &buf, &len, &err);
    if (rc)
        return jj_push_error(L, &err);
    o->p = buf;
    lua_pushlstring(L, buf, len);
    jj_owned_release(o);
    return 1;
}

typedef int (*write_fn)(const char *, const void *, size_t, mode_t, jj_error *);

static inline int write_with(lua_State *L, write_fn fn)
{
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    mode_t mode = opt_mode(L, 3, 0600);
    jj_error err;
    return push_ok(L, fn(path, data, len, mode, &err), &err);
}

typedef int (*write_ex_fn)(const char *, const void *, size_t, mode_t, int, jj_error *);

/* (path, data [, mode [, {durable = false}]]): durable defaults to true. */
static inline int write_with_opts(lua_State *L, write_ex_fn fn, const char *what)
{
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    mode_t mode = opt_mode(L, 3, 0600);
    int durable = 1;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        static const char *const known[] = {"durable", NULL};
        jj_opt_check_names(L, 4, known, what);
        lua_getfield(L, 4, "durable");
        if (!lua_isnil(L, -1))
            durable = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    jj_error err;
    return push_ok(L, fn(path, data, len, mode, durable, &err), &err);
}

static int l_write_atomic(lua_State *L)
{
    return write_with_opts(L, jj_fs_write_atomic_ex, "write_atomic");
}

static int l_create_exclusive(lua_State *L)
{
    return write_with(L, jj_fs_create_exclusive);
}

static int l_append_sync(lua_State *L)
{
    return write_with_opts(L, jj_fs_append_ex, "append_sync");
}

static int l_mkdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    mode_t mode = opt_mode(L, 2, 0700);
    jj_error err;
    return push_ok(L, jj_fs_mkdir(path, mode, &err), &err);
}

static int l_mkdir_p(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    mode_t mode = opt_mode(L, 2, 0700);
    jj_error err;
    return push_ok(L, jj_fs_mkdir_p(path, mode, &err), &err);
}

static void push_stat(lua_State *L, const jj_fs_stat_t *st)
{
    lua_createtable(L, 0, 6);
    lua_pushstring(L, jj_fs_type_name(st->type));
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)st->mode);
    lua_setfield(L, -2, "mode");
    lua_pushinteger(L, (lua_Integer)st->size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (lua_Number)st->mtime);
    lua_setfield(L, -2, "mtime");
    lua_pushinteger(L, (lua_Integer)st->uid);
    lua_setfield(L, -2, "uid");
    lua_pushinteger(L, (lua_Integer)st->gid);
    lua_setfield(L, -2, "gid");
}

static int l_stat(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    jj_fs_stat_t st;
    jj_error err;
    if (jj_fs_stat(path, &st, &err))
        return jj_push_error(L, &err);
    push_stat(L, &st);
    return 1;
}

static int l_lstat(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    jj_fs_stat_t st;
    jj_error err;
    if (jj_fs_lstat(path, &st, &err))
        return jj_push_error(L, &err);
    push_stat(L, &st);
    return 1;
}

static int l_exists(lua_State *L)
{
    lua_pushboolean(L, jj_fs_exists(luaL_checkstring(L, 1)));
    return 1;
}

static int l_chmod(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (lua_isnoneornil(L, 2))
        luaL_argerror(L, 2, "mode expected");
    mode_t mode = opt_mode(L, 2, 0);
    jj_error err;
    return push_ok(L, jj_fs_chmod(path, mode, &err), &err);
}

static int l_remove(lua_State *L)
{
    jj_error err;
    return push_ok(L, jj_fs_remove(luaL_checkstring(L, 1), &err), &err);
}

static int l_remove_tree(lua_State *L)
{
    jj_error err;
    return push_ok(L, jj_fs_remove_tree(luaL_checkstring(L, 1), &err), &err);
}

static int l_rename(lua_State *L)
{
    const char *from = luaL_checkstring(L, 1);
    const char *to = luaL_checkstring(L, 2);
    jj_error err;
    return push_ok(L, jj_fs_rename(from, to, &err), &err);
}

static int l_symlink(lua_State *L)
{
    const char *target = luaL_checkstring(L, 1);
    const char *path = luaL_checkstring(L, 2);
    jj_error err;
    return push_ok(L, jj_fs_symlink(target, path, &err), &err);
}

static int l_link(lua_State *L)
{
    const char *existing = luaL_checkstring(L, 1);
    const char *path = luaL_checkstring(L, 2);
    jj_error err;
    return push_ok(L, jj_fs_link(existing, path, &err), &err);
}

typedef int (*path_fn)(const char *, char **, jj_error *);

/* Calls a core function that returns one malloc'd string. */
static inline int string_result(lua_State *L, path_fn fn)
{
    const char *path = luaL_checkstring(L, 1);
    jj_owned *o = jj_push_owned(L, free_plain);
    char *out;
    jj_error err;
    if (fn(path, &out, &err))
        return jj_push_error(L, &err);
    o->p = out;
    lua_pushstring(L, out);
    jj_owned_release(o);
    return 1;
}

static int l_readlink(lua_State *L)
{
    return string_result(L, jj_fs_readlink);
}

static int l_realpath(lua_State *L)
{
    return string_result(L, jj_fs_realpath);
}

static int l_mkdtemp(lua_State *L)
{
    return string_result(L, jj_fs_mkdtemp);
}

static int l_list(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    jj_owned *o = jj_push_owned(L, free_names);
    char **names;
    size_t n;
    jj_error err;
    if (jj_fs_list(dir, &names, &n, &err))
        return jj_push_error(L, &err);
    o->p = names;
    o->n = n;
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    jj_owned_release(o);
    return 1;
}

static int l_copy_file(lua_State *L)
{
    const char *src = luaL_checkstring(L, 1);
    const char *dst = luaL_checkstring(L, 2);
    int mode = lua_isnoneornil(L, 3) ? -1 : (int)opt_mode(L, 3, 0);
    jj_error err;
    return push_ok(L, jj_fs_copy_file(src, dst, mode, &err), &err);
}

/* "file 0600 42", "dir 0700", "link -> target", "other 0644". */
static void push_entry_desc(lua_State *L, const jj_fs_entry *e)
{
    const char *type = jj_fs_type_name(e->st.type);
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", (unsigned)e->st.mode);
    switch (e->st.type) {
    case JJ_FS_FILE:
        lua_pushfstring(L, "%s %s %I", type, mode, (lua_Integer)e->st.size);
        break;
    case JJ_FS_LINK:
        lua_pushfstring(L, "%s -> %s", type, e->target ? e->target : "");
        break;
    default:
        lua_pushfstring(L, "%s %s", type, mode);
        break;
    }
}

/* Returns path -> description, plus the sorted array of paths. */
static int l_tree_snapshot(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    jj_owned *o = jj_push_owned(L, free_entries);
    jj_fs_entry *entries;
    size_t n;
    jj_error err;
    if (jj_fs_tree_snapshot(dir, &entries, &n, &err))
        return jj_push_error(L, &err);
    o->p = entries;
    o->n = n;
    lua_createtable(L, 0, (int)n);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, entries[i].path);
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, (lua_Integer)i + 1);
        push_entry_desc(L, &entries[i]);
        lua_rawset(L, -4);
    }
    jj_owned_release(o);
    return 2;
}

/* fs.tree_stamp(dir, suffix): see jj_fs_tree_stamp. */
static int l_tree_stamp(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    const char *suffix = luaL_checkstring(L, 2);
    jj_owned *o = jj_push_owned(L, free_plain);
    char *out;
    jj_error err;
    if (jj_fs_tree_stamp(dir, suffix, &out, &err))
        return jj_push_error(L, &err);
    o->p = out;
    lua_pushstring(L, out);
    jj_owned_release(o);
    return 1;
}

static int l_umask(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        mode_t old = jj_fs_umask(022);
        jj_fs_umask(old);
        lua_pushinteger(L, (lua_Integer)old);
        return 1;
    }
    mode_t mask = opt_mode(L, 1, 0);
    luaL_argcheck(L, mask <= 0777, 1, "umask out of range");
    lua_pushinteger(L, (lua_Integer)jj_fs_umask(mask));
    return 1;
}

/* --- locks ------------------------------------------------------------ */

typedef struct lua_lock {
    jj_fs_lock lk; /* fd -1 once released */
} lua_lock;

static lua_lock *check_lock(lua_State *L, int idx)
{
    lua_lock *l = luaL_checkudata(L, idx, LOCK_MT);
    if (l->lk.fd < 0)
        luaL_error(L, "attempt to use a released lock");
    return l;
}

static int lock_cleanup(lua_State *L)
{
    lua_lock *l = luaL_checkudata(L, 1, LOCK_MT);
    jj_fs_lock_release(&l->lk);
    return 0;
}

static int lock_release(lua_State *L)
{
    lock_cleanup(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int lock_path(lua_State *L)
{
    check_lock(L, 1);
    lua_getiuservalue(L, 1, 1);
    return 1;
}

/* Lock:remove() -> true | nil, msg, code: removes the lock file, then
 * releases the lock. */
static int lock_remove(lua_State *L)
{
    lua_lock *l = check_lock(L, 1);
    lua_getiuservalue(L, 1, 1);
    const char *path = lua_tostring(L, -1);
    jj_error err;
    return push_ok(L, jj_fs_lock_remove(&l->lk, path, &err), &err);
}

static int lock_set_message(lua_State *L)
{
    lua_lock *l = check_lock(L, 1);
    const char *msg = luaL_checkstring(L, 2);
    jj_error err;
    return push_ok(L, jj_fs_lock_set_message(&l->lk, msg, &err), &err);
}

static int lock_is_held(lua_State *L)
{
    lua_lock *l = luaL_checkudata(L, 1, LOCK_MT);
    lua_pushboolean(L, l->lk.fd >= 0);
    return 1;
}

static int lock_tostring(lua_State *L)
{
    lua_lock *l = luaL_checkudata(L, 1, LOCK_MT);
    lua_getiuservalue(L, 1, 1);
    lua_pushfstring(L, "juju.fs.Lock(%s%s)", lua_tostring(L, -1),
                    l->lk.fd >= 0 ? "" : ", released");
    return 1;
}

/* lock(path [, {timeout=, interval=, message=}]) -> Lock | nil, msg, code */
static int l_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    double timeout = 0, interval = 0.05;
    const char *message = NULL;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        timeout = jj_opt_seconds(L, 2, "timeout", 0);
        interval = jj_opt_seconds(L, 2, "interval", 0.05);
        luaL_argcheck(L, interval > 0, 2, "interval must be > 0");
        message = jj_opt_string(L, 2, "message", NULL); /* stays on the stack, hence alive */
    }
    lua_lock *l = lua_newuserdatauv(L, sizeof *l, 1);
    jj_fs_lock_init(&l->lk);
    luaL_setmetatable(L, LOCK_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    jj_error err;
    if (jj_fs_lock_acquire(&l->lk, path, timeout, interval, message, &err))
        return jj_push_error(L, &err);
    return 1;
}

static int l_lock_holder(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    jj_owned *o = jj_push_owned(L, free_plain);
    char *out;
    jj_error err;
    if (jj_fs_lock_holder(path, &out, &err))
        return jj_push_error(L, &err);
    if (!out) {
        lua_pushnil(L);
        return 1;
    }
    o->p = out;
    lua_pushstring(L, out);
    jj_owned_release(o);
    return 1;
}

static const luaL_Reg lock_methods[] = {
    {"release", lock_release},
    {"close", lock_release},
    {"path", lock_path},
    {"remove", lock_remove},
    {"set_message", lock_set_message},
    {"is_held", lock_is_held},
    {NULL, NULL},
};

static const luaL_Reg lock_meta[] = {
    {"__close", lock_cleanup},
    {"__gc", lock_cleanup},
    {"__tostring", lock_tostring},
    {NULL, NULL},
};

static const luaL_Reg fs_functions[] = {
    {"read_file", l_read_file},
    {"write_atomic", l_write_atomic},
    {"create_exclusive", l_create_exclusive},
    {"append_sync", l_append_sync},
    {"mkdir", l_mkdir},
    {"mkdir_p", l_mkdir_p},
    {"stat", l_stat},
    {"lstat", l_lstat},
    {"exists", l_exists},
    {"chmod", l_chmod},
    {"remove", l_remove},
    {"remove_tree", l_remove_tree},
    {"rename", l_rename},
    {"symlink", l_symlink},
    {"link", l_link},
    {"readlink", l_readlink},
    {"realpath", l_realpath},
    {"list", l_list},
    {"copy_file", l_copy_file},
    {"mkdtemp", l_mkdtemp},
    {"lock", l_lock},
    {"lock_holder", l_lock_holder},
    {"tree_snapshot", l_tree_snapshot},
    {"tree_stamp", l_tree_stamp},
    {"umask", l_umask},
    {NULL, NULL},
};

int luaopen_juju_fs(lua_State *L)
{
    jj_new_class(L, LOCK_MT, lock_methods, lock_meta);
    luaL_newlib(L, fs_functions);
    return 1;
}
