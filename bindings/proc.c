/* proc.c: Lua binding of core/proc (module `juju.proc`): supervised daemons.
 *
 *   proc.start_daemon(argv, opts) -> pid | nil, msg, code
 *       opts: log_file, pid_file, cwd (strings), env ({NAME = value}: the
 *       daemon's whole environment; absent keeps ours)
 *   proc.read_pid(pid_file)       -> pid | nil, msg, code ("ENOENT", "CORRUPT")
 *   proc.alive(pid)               -> boolean
 *   proc.stop(pid_or_pid_file [, {timeout = seconds}]) -> true | nil, msg, code
 *   proc.wait_port(host, port, timeout) -> true | nil, msg, "TIMEOUT"
 *
 * Misuse (wrong types, unknown options, an empty argv) raises.
 */
#include "common.h"
#include "options.h"
#include "proc.h"

#include <string.h>

int luaopen_juju_proc(lua_State *L);

/* opts[field] as a non-empty path (left on the stack), or NULL. */
static const char *opt_path(lua_State *L, int idx, const char *field)
{
    const char *v = jj_opt_string(L, idx, field, NULL);
    if (v && !*v)
        luaL_error(L, "bad option '%s' (empty string)", field);
    return v;
}

/* Builds a NULL-terminated array of the strings of the table at idx (argv)
 * in a userdata left on the stack; the strings stay anchored by the table. */
static const char **check_argv(lua_State *L, int idx)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer n = luaL_len(L, idx);
    luaL_argcheck(L, n >= 1 && n < 65536, idx, "argv must be a non-empty array of strings");
    const char **argv = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *argv, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
            luaL_argerror(L, idx, lua_pushfstring(L, "argv[%I] must be a string", i));
        size_t len;
        argv[i - 1] = lua_tolstring(L, -1, &len);
        if (strlen(argv[i - 1]) != len || (i == 1 && len == 0))
            luaL_argerror(L, idx, "argv strings must be non-empty and hold no NUL");
        lua_pop(L, 1);
    }
    argv[n] = NULL;
    return argv;
}

/* "K=V" strings from the env table at idx, anchored in a new table; the
 * array (a userdata) and the anchor stay on the stack. */
static const char **check_env(lua_State *L, int env)
{
    lua_newtable(L);
    int anchor = lua_gettop(L);
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, env)) {
        if (lua_type(L, -2) != LUA_TSTRING ||
            (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
            luaL_error(L, "bad option 'env' (string keys and string values expected)");
        const char *k = lua_tostring(L, -2);
        if (!*k || strchr(k, '='))
            luaL_error(L, "bad option 'env' (invalid name '%s')", k);
        lua_pushfstring(L, "%s=%s", k, luaL_tolstring(L, -1, NULL));
        lua_rawseti(L, anchor, ++count);
        lua_pop(L, 2);
    }
    const char **envp = lua_newuserdatauv(L, (size_t)(count + 1) * sizeof *envp, 0);
    for (lua_Integer i = 1; i <= count; i++) {
        lua_rawgeti(L, anchor, i);
        envp[i - 1] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    envp[count] = NULL;
    return envp;
}

static int l_start_daemon(lua_State *L)
{
    static const char *const known[] = {
        "log_file", "pid_file", "cwd", "env", NULL,
    };
    lua_settop(L, 2);
    jj_daemon_opts o;
    memset(&o, 0, sizeof o);
    o.argv = check_argv(L, 1);
    if (!lua_isnil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        jj_opt_check_names(L, 2, known, NULL);
        o.log_file = opt_path(L, 2, "log_file");
        o.pid_file = opt_path(L, 2, "pid_file");
        o.cwd = opt_path(L, 2, "cwd");
        int t = lua_getfield(L, 2, "env");
        if (t != LUA_TNIL && t != LUA_TTABLE)
            luaL_error(L, "bad option 'env' (table expected, got %s)", luaL_typename(L, -1));
        if (t == LUA_TTABLE)
            o.envp = check_env(L, lua_gettop(L));
    }
    pid_t pid = 0;
    jj_error err;
    if (jj_proc_start_daemon(&o, &pid, &err) != 0)
        return jj_push_error(L, &err);
    lua_pushinteger(L, (lua_Integer)pid);
    return 1;
}

static int l_read_pid(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    pid_t pid = 0;
    jj_error err;
    if (jj_proc_read_pid(path, &pid, &err) != 0)
        return jj_push_error(L, &err);
    lua_pushinteger(L, (lua_Integer)pid);
    return 1;
}

static pid_t check_pid(lua_State *L, int idx)
{
    lua_Integer pid = luaL_checkinteger(L, idx);
    luaL_argcheck(L, pid > 0 && pid <= 0x7fffffff, idx, "pid must be a positive integer");
    return (pid_t)pid;
}

static int l_alive(lua_State *L)
{
    lua_pushboolean(L, jj_proc_alive(check_pid(L, 1)));
    return 1;
}

static int l_stop(lua_State *L)
{
    static const char *const known[] = {
        "timeout", NULL,
    };
    pid_t pid = 0;
    const char *pid_file = NULL;
    if (lua_type(L, 1) == LUA_TNUMBER)
        pid = check_pid(L, 1);
    else if (lua_type(L, 1) == LUA_TSTRING)
        pid_file = lua_tostring(L, 1);
    else
        return luaL_typeerror(L, 1, "pid or pid file");
    double timeout = 10;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        jj_opt_check_names(L, 2, known, NULL);
        if (lua_getfield(L, 2, "timeout") != LUA_TNIL) {
            if (!lua_isnumber(L, -1) || !(lua_tonumber(L, -1) >= 0))
                luaL_error(L, "bad option 'timeout' (non-negative number expected)");
            timeout = (double)lua_tonumber(L, -1);
        }
        lua_pop(L, 1);
    }
    jj_error err;
    if (jj_proc_stop(pid, pid_file, timeout, &err) != 0)
        return jj_push_error(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_wait_port(lua_State *L)
{
    const char *host = luaL_checkstring(L, 1);
    lua_Integer port = luaL_checkinteger(L, 2);
    luaL_argcheck(L, port > 0 && port < 65536, 2, "port out of range");
    lua_Number timeout = luaL_checknumber(L, 3);
    luaL_argcheck(L, timeout >= 0, 3, "timeout must be non-negative");
    jj_error err;
    if (jj_proc_wait_port(host, (int)port, (double)timeout, &err) != 0)
        return jj_push_error(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

int luaopen_juju_proc(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"start_daemon", l_start_daemon},
        {"read_pid", l_read_pid},
        {"alive", l_alive},
        {"stop", l_stop},
        {"wait_port", l_wait_port},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    return 1;
}
