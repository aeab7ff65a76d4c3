/* cancel.h: the `cancel` option of the long binding calls (juju.ssh connect,
 * exec, upload, download; juju.http requests; juju.sys.sleep).
 *
 * Its value is a juju.sys.SignalWatch (sys.signals): a signal of that watch
 * that is pending when the call starts or arrives during it stops the call
 * with nil, message, "INTERRUPTED", and stays pending for watch:pending().
 * Without the option, a call still stops when any watched signal arrives
 * during it (core/sys.h, "cancellation"). The watch's userdata layout is
 * shared here because the SignalWatch class belongs to bindings/sys.c while
 * the other modules only read it.
 */
#ifndef JUJU_BINDINGS_CANCEL_H
#define JUJU_BINDINGS_CANCEL_H

#include <lauxlib.h>
#include <lua.h>

#include "sys.h"

#define JJ_SIGWATCH_MT "juju.sys.SignalWatch"

/* The SignalWatch userdata (bindings/sys.c creates it). */
typedef struct jj_lua_sigwatch {
    jj_sys_sigwatch w;
} jj_lua_sigwatch;

/* Fills c from the value at idx: nil (no watch) or an open SignalWatch,
 * which must stay reachable while c is in use. Raises on anything else. */
static inline void jj_to_cancel(lua_State *L, int idx, jj_sys_cancel *c)
{
    const jj_sys_sigwatch *w = NULL;
    if (!lua_isnil(L, idx)) {
        jj_lua_sigwatch *lw = luaL_testudata(L, idx, JJ_SIGWATCH_MT);
        if (!lw)
            luaL_error(L, "bad option 'cancel' (juju.sys.SignalWatch expected, got %s)",
                       luaL_typename(L, idx));
        if (!lw->w.active)
            luaL_error(L, "bad option 'cancel' (the signal watch is closed)");
        w = &lw->w;
    }
    jj_sys_cancel_init(c, w);
}

/* Reads option `cancel` of the table at idx (0: no options table) into c.
 * Pushes the watch (or nil), which keeps it reachable for the duration of
 * the call whatever callbacks do to the table: the caller leaves it on the
 * stack. */
static inline void jj_opt_cancel(lua_State *L, int idx, jj_sys_cancel *c)
{
    if (idx)
        lua_getfield(L, idx, "cancel");
    else
        lua_pushnil(L);
    jj_to_cancel(L, -1, c);
}

#endif
