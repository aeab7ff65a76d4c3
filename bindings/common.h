/* common.h: the few helpers every binding shares (option readers are in
 * options.h, Lua <-> document trees in tree.h).
 *
 * The error contract: misuse raises; operational failure returns
 * `nil, message, code` where code is the core's stable code name.
 */
#ifndef JUJU_BINDINGS_COMMON_H
#define JUJU_BINDINGS_COMMON_H

#include <lauxlib.h>
#include <lua.h>

#include <stdint.h>
#include <string.h>

#include "error.h"

#if LUA_VERSION_NUM != 504
#error "juju bindings target Lua 5.4 exactly"
/* Whether s[0..n) is UTF-8 without NUL bytes: the SQL bindings (juju.sqlite,
 * juju.dqlite) bind such strings as TEXT, anything else as a BLOB (both read
 * back as the same Lua string). */
static inline int jj_is_text(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

#endif

/* Pushes nil, "<file>:<line>:<col>: <message>" (position only when known)
 * and the code name; returns 3 for `return jj_push_error(L, &err)`. */
static inline int jj_push_error(lua_State *L, const jj_error *err)
{
    lua_pushnil(L);
    if (err->file[0] && err->line > 0) {
        if (err->column > 0)
            lua_pushfstring(L, "%s:%d:%d: %s", err->file, err->line, err->column, err->message);
        else
            lua_pushfstring(L, "%s:%d: %s", err->file, err->line, err->message);
    } else if (err->file[0]) {
        lua_pushfstring(L, "%s: %s", err->file, err->message);
    } else {
        lua_pushstring(L, err->message);
    }
    lua_pushstring(L, jj_error_code_name(err->code));
    return 3;
}

/* Registers a userdata metatable named `name` with methods `m` (also set
 * as __index) and metamethods `meta`; leaves nothing on the stack. */
static inline void jj_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                                const luaL_Reg *meta)
{
    luaL_newmetatable(L, name);
    if (meta)
        luaL_setfuncs(L, meta, 0);
    if (methods) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
}

/* An owned box: a userdata holding a core result (pointer and count) that
 * its __gc frees, so a Lua error between the core call and the push of the
 * result (out of memory) cannot leak it. Push it before calling the core. */
#define JJ_OWNED_MT "juju.Owned"

typedef struct jj_owned {
    void *p;
    size_t n;
    void (*free_fn)(void *p, size_t n);
} jj_owned;

static inline void jj_owned_release(jj_owned *o)
{
    if (o->p)
        o->free_fn(o->p, o->n);
    o->p = NULL;
    o->n = 0;
}

static inline int jj_owned_gc(lua_State *L)
{
    jj_owned_release(luaL_checkudata(L, 1, JJ_OWNED_MT));
    return 0;
}

/* Pushes an empty owned box (may raise). The metatable is shared by every
 * module; modules are never unloaded (-z nodelete), so its __gc stays. */
static inline jj_owned *jj_push_owned(lua_State *L, void (*free_fn)(void *, size_t))
{
    jj_owned *o = lua_newuserdatauv(L, sizeof *o, 0);
    o->p = NULL;
    o->n = 0;
    o->free_fn = free_fn;
    if (luaL_newmetatable(L, JJ_OWNED_MT)) {
        lua_pushcfunction(L, jj_owned_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return o;
}

/* Whether s[0..n) is UTF-8 without NUL bytes: the SQL bindings (juju.sqlite,
 * juju.dqlite) bind such strings as TEXT, anything else as a BLOB (both read
 * back as the same Lua string). */
static inline int jj_is_text(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

#endif
