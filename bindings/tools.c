/* tools.c: Lua binding of core/tools (module `juju.tools`): build, list
 * and safely extract tools tarballs.
 *
 * Misuse (wrong types, a malformed entries table, a gzip level outside
 * 1..9) raises; operational failure returns nil, message, code. Memory the
 * core hands over is parked in an "owned" userdata first, so a Lua memory
 * error while pushing results cannot leak it.
 */
#include "common.h"
#include "crypto.h"
#include "fs.h"
#include "tools.h"

#include <stdlib.h>
#include <string.h>

int luaopen_juju_tools(lua_State *L);

static void free_members(void *p, size_t n)
{
    jj_tools_free_members(p, n);
}

static void free_names(void *p, size_t n)
{
    jj_fs_free_names(p, n);
}

/* A file path argument; an embedded NUL would silently cut it. */
static const char *check_path(lua_State *L, int idx)
{
    size_t len;
    const char *s = luaL_checklstring(L, idx, &len);
    luaL_argcheck(L, strlen(s) == len, idx, "path contains NUL");
    return s;
}

/* A string field of entries[i]; the entries table keeps it alive. */
static const char *entry_string(lua_State *L, int tidx, lua_Integer i, const char *key)
{
    lua_getfield(L, tidx, key);
    size_t len;
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (!s || strlen(s) != len)
        luaL_error(L, "bad argument #2 to 'build_tarball' (entries[%I].%s must be a string "
                      "without NUL)", i, key);
    lua_pop(L, 1);
    return s;
}

/* entries[i].mode: an integer or a string of octal digits ("0755", as
 * everywhere in the API); -1 when absent. */
static int entry_mode(lua_State *L, int tidx, lua_Integer i)
{
    lua_getfield(L, tidx, "mode");
    int mode = -1;
    int type = lua_type(L, -1);
    if (type != LUA_TNIL) {
        int ok = 0;
        lua_Integer m = -1;
        if (type == LUA_TSTRING) {
            const char *s = lua_tostring(L, -1);
            ok = *s && strspn(s, "01234567") == strlen(s) && strlen(s) <= 5;
            if (ok)
                m = (lua_Integer)strtol(s, NULL, 8);
        } else if (type == LUA_TNUMBER) {
            m = lua_tointegerx(L, -1, &ok);
        }
        if (!ok || m < 0 || m > 07777)
            luaL_error(L, "bad argument #2 to 'build_tarball' (entries[%I].mode must be an "
                          "integer in 0..0o7777 or an octal string)", i);
        mode = (int)m;
    }
    lua_pop(L, 1);
    return mode;
}

static int l_build_tarball(lua_State *L)
{
    const char *out_path = check_path(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int level = JJ_TARBALL_DEFAULT_LEVEL;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_getfield(L, 3, "level");
        if (!lua_isnil(L, -1)) {
            int isint;
            lua_Integer l = lua_tointegerx(L, -1, &isint);
            luaL_argcheck(L, isint && l >= 1 && l <= 9, 3, "level must be an integer in 1..9");
            level = (int)l;
        }
        lua_pop(L, 1);
    }
    lua_Integer n = luaL_len(L, 2);
    luaL_argcheck(L, n >= 0 && (lua_Unsigned)n < SIZE_MAX / sizeof(jj_tar_entry), 2,
                  "too many entries");
    jj_tar_entry *entries = lua_newuserdatauv(L, (size_t)n * sizeof *entries, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 2, i) != LUA_TTABLE)
            luaL_error(L, "bad argument #2 to 'build_tarball' (entries[%I] must be a table)", i);
        int t = lua_gettop(L);
        entries[i - 1].src = entry_string(L, t, i, "src");
        entries[i - 1].name = entry_string(L, t, i, "name");
        entries[i - 1].mode = entry_mode(L, t, i);
        lua_pop(L, 1);
    }
    jj_tarball_info info;
    jj_error err;
    if (jj_tools_build_tarball(out_path, entries, (size_t)n, level, &info, &err))
        return jj_push_error(L, &err);
    char hex[65];
    jj_hex_encode(info.sha256, sizeof info.sha256, hex);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, hex);
    lua_setfield(L, -2, "sha256");
    lua_pushinteger(L, (lua_Integer)info.size);
    lua_setfield(L, -2, "size");
    return 1;
}

static void push_member(lua_State *L, const jj_tar_member *m)
{
    lua_createtable(L, 0, 10);
    lua_pushstring(L, m->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, jj_tar_type_name(m->type));
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)m->size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)m->mode);
    lua_setfield(L, -2, "mode");
    lua_pushinteger(L, (lua_Integer)m->mtime);
    lua_setfield(L, -2, "mtime");
    lua_pushinteger(L, (lua_Integer)m->uid);
    lua_setfield(L, -2, "uid");
    lua_pushinteger(L, (lua_Integer)m->gid);
    lua_setfield(L, -2, "gid");
    lua_pushstring(L, m->uname);
    lua_setfield(L, -2, "uname");
    lua_pushstring(L, m->gname);
    lua_setfield(L, -2, "gname");
    if (m->target) {
        lua_pushstring(L, m->target);
        lua_setfield(L, -2, "target");
    }
}

static int l_list_tarball(lua_State *L)
{
    const char *path = check_path(L, 1);
    jj_owned *o = jj_push_owned(L, free_members);
    jj_tar_member *members;
    size_t count;
    jj_error err;
    if (jj_tools_list_tarball(path, &members, &count, &err))
        return jj_push_error(L, &err);
    o->p = members;
    o->n = count;
    lua_createtable(L, count > INT32_MAX ? 0 : (int)count, 0);
    for (size_t i = 0; i < count; i++) {
        push_member(L, &members[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    jj_owned_release(o);
    return 1;
}

static int l_extract_tarball(lua_State *L)
{
    const char *path = check_path(L, 1);
    const char *dest = check_path(L, 2);
    jj_owned *o = jj_push_owned(L, free_names);
    char **names;
    size_t count;
    jj_error err;
    if (jj_tools_extract_tarball(path, dest, &names, &count, &err))
        return jj_push_error(L, &err);
    o->p = names;
    o->n = count;
    lua_createtable(L, count > INT32_MAX ? 0 : (int)count, 0);
    for (size_t i = 0; i < count; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    jj_owned_release(o);
    return 1;
}

static const luaL_Reg tools_functions[] = {
    {"build_tarball", l_build_tarball},
    {"list_tarball", l_list_tarball},
    {"extract_tarball", l_extract_tarball},
    {NULL, NULL},
};

int luaopen_juju_tools(lua_State *L)
{
    luaL_newlib(L, tools_functions);
    lua_pushinteger(L, JJ_TARBALL_DEFAULT_LEVEL);
    lua_setfield(L, -2, "DEFAULT_LEVEL");
    return 1;
}
