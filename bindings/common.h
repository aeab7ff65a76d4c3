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

#include <string.h>

#include "error.h"

#if LUA_VERSION_NUM != 504
#error "juju bindings target Lua 5.4 exactly"
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

#endif
