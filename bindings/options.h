/* options.h: reading option tables and mode arguments, one way for every
 * binding.
 *
 *   jj_opt_check_names(L, opts, known, what)  unknown keys raise
 *   jj_opt_string / _seconds / _integer / _boolean / _function / _mode
 *       (L, opts, name, ...): opts[name] checked, def when nil; opts 0
 *       means "no options table". The value is left on the stack, which
 *       keeps strings and functions alive for the whole call even if a
 *       callback changes the table.
 *   jj_optv_*(L, t, name, ...)  the same checks on the value already on
 *       top of the stack (t its type), for callers that look options up
 *       their own way (juju.http: the request's, then the client's).
 *   jj_check_mode_arg(L, arg, def)  a mode as a positional argument.
 *
 * Misuse raises "bad option 'name' (<what> expected, got <type>)".
 * A file mode is an integer or a string of octal digits ("0640") in
 * 0..07777: every permission set chmod(2) accepts, 0 included.
 */
#ifndef JUJU_BINDINGS_OPTIONS_H
#define JUJU_BINDINGS_OPTIONS_H

#include <lauxlib.h>
#include <lua.h>

#include <string.h>

#define JJ_MODE_MAX 07777

/* Pushes opts[name] (nil when opts is 0) and returns its type. */
static inline int jj_opt_get(lua_State *L, int opts, const char *name)
{
    if (!opts) {
        lua_pushnil(L);
        return LUA_TNIL;
    }
    return lua_getfield(L, opts, name);
}

/* Raises about the value on top of the stack. */
static inline int jj_opt_bad(lua_State *L, const char *name, const char *expected)
{
    return luaL_error(L, "bad option '%s' (%s expected, got %s)", name, expected,
                      luaL_typename(L, -1));
}

/* Raises on a key of the table at idx that is not in the NULL-terminated
 * list known: "unknown <what> option 'k'" (what may be NULL). */
static inline void jj_opt_check_names(lua_State *L, int idx, const char *const *known,
                                      const char *what)
{
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int ok = 0;
        for (int i = 0; k && known[i] && !ok; i++)
            ok = strcmp(k, known[i]) == 0;
        if (!ok)
            luaL_error(L, "unknown %s%soption '%s'", what ? what : "", what ? " " : "",
                       k ? k : luaL_typename(L, -1));
    }
}

/* --- the value on top of the stack ------------------------------------------ */

/* A string, or NULL when nil. With len NULL the string may not hold NUL
 * bytes (it goes to C as a C string); else *len gets its length. */
static inline const char *jj_optv_string(lua_State *L, int t, const char *name, size_t *len)
{
    if (t == LUA_TNIL)
        return NULL;
    if (t != LUA_TSTRING)
        jj_opt_bad(L, name, "string");
    size_t n;
    const char *v = lua_tolstring(L, -1, &n);
    if (!len && strlen(v) != n)
        luaL_error(L, "bad option '%s' (must not contain NUL)", name);
    if (len)
        *len = n;
    return v;
}

/* A duration in seconds, 0..1e9 (beyond is a mistake, not a wait). */
static inline double jj_optv_seconds(lua_State *L, int t, const char *name, double def)
{
    if (t == LUA_TNIL)
        return def;
    if (t != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0) || lua_tonumber(L, -1) > 1e9)
        jj_opt_bad(L, name, "non-negative number of seconds");
    return (double)lua_tonumber(L, -1);
}

static inline lua_Integer jj_optv_integer(lua_State *L, int t, const char *name, lua_Integer def,
                                          lua_Integer min, lua_Integer max)
{
    if (t == LUA_TNIL)
        return def;
    int ok = 0;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (t != LUA_TNUMBER || !ok || v < min || v > max)
        luaL_error(L, "bad option '%s' (integer in %I..%I expected, got %s)", name, min, max,
                   t == LUA_TNUMBER ? lua_tostring(L, -1) : luaL_typename(L, -1));
    return v;
}

static inline int jj_optv_boolean(lua_State *L, int t, const char *name, int def)
{
    if (t == LUA_TNIL)
        return def;
    if (t != LUA_TBOOLEAN)
        jj_opt_bad(L, name, "boolean");
    return lua_toboolean(L, -1);
}

/* The stack index of a function, or 0 when nil. */
static inline int jj_optv_function(lua_State *L, int t, const char *name)
{
    if (t == LUA_TNIL)
        return 0;
    if (t != LUA_TFUNCTION)
        jj_opt_bad(L, name, "function");
    return lua_gettop(L);
}

/* The mode at idx (integer or octal digits) in 0..07777, or -1. */
static inline lua_Integer jj_mode_value(lua_State *L, int idx)
{
    lua_Integer m = -1;
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (len == 0 || len > 6 || strspn(s, "01234567") != len)
            return -1;
        m = 0;
        for (size_t i = 0; i < len; i++)
            m = m * 8 + (s[i] - '0');
    } else if (lua_isinteger(L, idx)) {
        m = lua_tointeger(L, idx);
    }
    return m >= 0 && m <= JJ_MODE_MAX ? m : -1;
}

static inline lua_Integer jj_optv_mode(lua_State *L, int t, const char *name, lua_Integer def)
{
    if (t == LUA_TNIL)
        return def;
    lua_Integer m = jj_mode_value(L, -1);
    if (m < 0)
        luaL_error(L, "bad option '%s' (mode 0..07777 as integer or octal string expected)", name);
    return m;
}

/* --- options of a table --------------------------------------------------------- */

static inline const char *jj_opt_string(lua_State *L, int opts, const char *name, size_t *len)
{
    return jj_optv_string(L, jj_opt_get(L, opts, name), name, len);
}

static inline double jj_opt_seconds(lua_State *L, int opts, const char *name, double def)
{
    return jj_optv_seconds(L, jj_opt_get(L, opts, name), name, def);
}

static inline lua_Integer jj_opt_integer(lua_State *L, int opts, const char *name, lua_Integer def,
                                         lua_Integer min, lua_Integer max)
{
    return jj_optv_integer(L, jj_opt_get(L, opts, name), name, def, min, max);
}

static inline int jj_opt_boolean(lua_State *L, int opts, const char *name, int def)
{
    return jj_optv_boolean(L, jj_opt_get(L, opts, name), name, def);
}

static inline int jj_opt_function(lua_State *L, int opts, const char *name)
{
    return jj_optv_function(L, jj_opt_get(L, opts, name), name);
}

static inline lua_Integer jj_opt_mode(lua_State *L, int opts, const char *name, lua_Integer def)
{
    return jj_optv_mode(L, jj_opt_get(L, opts, name), name, def);
}

/* --- positional -------------------------------------------------------------------- */

/* An optional mode argument; def when absent. Anything else raises. */
static inline lua_Integer jj_check_mode_arg(lua_State *L, int arg, lua_Integer def)
{
    if (lua_isnoneornil(L, arg))
        return def;
    lua_Integer m = jj_mode_value(L, arg);
    luaL_argcheck(L, m >= 0, arg, "mode 0..07777 as integer or octal string expected");
    return m;
}

#endif
