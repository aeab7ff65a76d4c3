/* sys.c: Lua binding of core/sys (module `juju.sys`).
 *
 * `run` and `spawn` are what Lua code uses instead of io.popen/os.execute:
 * an argv table, never a shell string. Misuse (wrong types, unknown
 * options or signal names, a closed object) raises; operational failure
 * returns nil, message, code. Signals are named "INT", "TERM" ... (a "SIG"
 * prefix is accepted) or given as numbers. A SignalWatch is also the
 * `cancel` option of the other modules' long calls (cancel.h).
 */
#include "cancel.h"
#include "common.h"
#include "sys.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROCESS_MT "juju.sys.Process"
#define WATCH_MT JJ_SIGWATCH_MT

int luaopen_juju_sys(lua_State *L);

static inline int push_ok(lua_State *L, int rc, const jj_error *err)
{
    if (rc)
        return jj_push_error(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* A signal argument: name, number, or (when def >= 0 and absent) def. */
static int check_signal(lua_State *L, int idx, int def)
{
    if (def >= 0 && lua_isnoneornil(L, idx))
        return def;
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Integer n = luaL_checkinteger(L, idx);
        luaL_argcheck(L, n >= 0 && n < NSIG, idx, "signal number out of range");
        return (int)n;
    }
    const char *name = luaL_checkstring(L, idx);
    int s = jj_sys_signal_number(name);
    if (s < 0)
        return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", name));
    return s;
}

static inline void push_signal_name(lua_State *L, int signo)
{
    const char *name = jj_sys_signal_name(signo);
    if (name)
        lua_pushstring(L, name);
    else
        lua_pushinteger(L, signo);
}

/* ---- identity ------------------------------------------------------- */

static int l_getpid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

static int l_getppid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getppid());
    return 1;
}

static int l_getuid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getuid());
    return 1;
}

static int l_geteuid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)geteuid());
    return 1;
}

typedef int (*string_fn)(char *, size_t, jj_error *);

static inline int string_result(lua_State *L, string_fn fn)
{
    char buf[4096];
    jj_error err;
    if (fn(buf, sizeof buf, &err))
        return jj_push_error(L, &err);
    lua_pushstring(L, buf);
    return 1;
}

static int l_username(lua_State *L)
{
    return string_result(L, jj_sys_username);
}

static int l_home_dir(lua_State *L)
{
    return string_result(L, jj_sys_home_dir);
}

static int l_hostname(lua_State *L)
{
    return string_result(L, jj_sys_hostname);
}

static int l_uname(lua_State *L)
{
    struct utsname u;
    jj_error err;
    if (jj_sys_uname(&u, &err))
        return jj_push_error(L, &err);
    lua_createtable(L, 0, 5);
    lua_pushstring(L, u.sysname);
    lua_setfield(L, -2, "sysname");
    lua_pushstring(L, u.nodename);
    lua_setfield(L, -2, "nodename");
    lua_pushstring(L, u.release);
    lua_setfield(L, -2, "release");
    lua_pushstring(L, u.version);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, u.machine);
    lua_setfield(L, -2, "machine");
    return 1;
}

static int l_arch(lua_State *L)
{
    struct utsname u;
    const char *machine;
    jj_error err;
    if (lua_isnoneornil(L, 1)) {
        if (jj_sys_uname(&u, &err))
            return jj_push_error(L, &err);
        machine = u.machine;
    } else {
        machine = luaL_checkstring(L, 1);
    }
    const char *arch = jj_sys_arch(machine);
    if (!arch) {
        jj_error_set(&err, JJ_EUNSUPPORTED, "unsupported architecture \"%s\"", machine);
        return jj_push_error(L, &err);
    }
    lua_pushstring(L, arch);
    return 1;
}

/* Frees a key/value array if a push below raises. */
typedef struct kv_box {
    jj_sys_kv *kv;
    size_t n;
} kv_box;

static int kv_box_gc(lua_State *L)
{
    kv_box *b = lua_touserdata(L, 1);
    jj_sys_free_kv(b->kv, b->n);
    b->kv = NULL;
    b->n = 0;
    return 0;
}

static kv_box *push_kv_box(lua_State *L)
{
    kv_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->kv = NULL;
    b->n = 0;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, kv_box_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    return b;
}

/* Turns the parsed pairs into a table; frees them. */
static int push_kv(lua_State *L, kv_box *b, jj_sys_kv *kv, size_t n)
{
    b->kv = kv;
    b->n = n;
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, kv[i].value);
        lua_setfield(L, -2, kv[i].key);
    }
    jj_sys_free_kv(kv, n);
    b->kv = NULL;
    b->n = 0;
    return 1;
}

/* os_release([path]) -> table | nil, msg, code */
static int l_os_release(lua_State *L)
{
    const char *path = luaL_optstring(L, 1, NULL);
    kv_box *b = push_kv_box(L);
    jj_sys_kv *kv;
    size_t n;
    jj_error err;
    if (jj_sys_os_release(path, &kv, &n, &err))
        return jj_push_error(L, &err);
    return push_kv(L, b, kv, n);
}

/* parse_os_release(text) -> table: the same parser for a remote host's
 * /etc/os-release fetched by other means. */
static int l_parse_os_release(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    kv_box *b = push_kv_box(L);
    jj_sys_kv *kv;
    size_t n;
    jj_error err;
    if (jj_sys_parse_os_release(text, len, &kv, &n, &err))
        return jj_push_error(L, &err);
    return push_kv(L, b, kv, n);
}

/* ---- environment and clocks ----------------------------------------- */

static const char *check_env_name(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    luaL_argcheck(L, *name && !strchr(name, '='), idx, "invalid environment variable name");
    return name;
}

static int l_getenv(lua_State *L)
{
    const char *v = getenv(luaL_checkstring(L, 1));
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    return 1;
}

static int l_setenv(lua_State *L)
{
    const char *name = check_env_name(L, 1);
    const char *value = NULL;
    if (!lua_isnoneornil(L, 2))
        value = luaL_checkstring(L, 2);
    jj_error err;
    return push_ok(L, jj_sys_setenv(name, value, &err), &err);
}

static int l_environ(lua_State *L)
{
    lua_newtable(L);
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || eq == *e)
            continue;
        lua_pushlstring(L, *e, (size_t)(eq - *e));
        lua_pushstring(L, eq + 1);
        lua_rawset(L, -3);
    }
    return 1;
}

static int l_time(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)jj_sys_time());
    return 1;
}

static int l_monotonic(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)jj_sys_monotonic());
    return 1;
}

/* sleep(seconds [, watch]) -> true | false, "INTERRUPTED" (a watched signal
 * came, or one of watch's signals is pending: see cancel.h). */
static int l_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && s <= 1e9, 1, "seconds must be between 0 and 1e9");
    lua_settop(L, 2);
    jj_sys_cancel cancel;
    jj_to_cancel(L, 2, &cancel);
    jj_sys_cancel_scope scope;
    jj_sys_cancel_begin(&scope, &cancel);
    jj_error err;
    int rc = jj_sys_cancel_sleep(&scope, (double)s, "sleep", &err);
    if (rc == JJ_EINTERRUPTED) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, "INTERRUPTED");
        return 2;
    }
    return push_ok(L, rc, &err);
}

static int l_isatty(lua_State *L)
{
    lua_Integer fd = luaL_checkinteger(L, 1);
    luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "bad file descriptor number");
    lua_pushboolean(L, isatty((int)fd) == 1);
    return 1;
}

/* ---- signals -------------------------------------------------------- */

/* The layout is shared with the bindings that take `cancel` (cancel.h). */
typedef jj_lua_sigwatch lua_watch;

static lua_watch *check_watch(lua_State *L, int idx)
{
    lua_watch *w = luaL_checkudata(L, idx, WATCH_MT);
    if (!w->w.active)
        luaL_error(L, "attempt to use a closed signal watch");
    return w;
}

static int watch_cleanup(lua_State *L)
{
    lua_watch *w = luaL_checkudata(L, 1, WATCH_MT);
    jj_sys_sigwatch_close(&w->w);
    return 0;
}

static int watch_close(lua_State *L)
{
    watch_cleanup(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int watch_pending(lua_State *L)
{
    lua_watch *w = check_watch(L, 1);
    int s = jj_sys_sigwatch_pending(&w->w);
    if (s == 0)
        lua_pushnil(L);
    else
        push_signal_name(L, s);
    return 1;
}

static int watch_tostring(lua_State *L)
{
    lua_watch *w = luaL_checkudata(L, 1, WATCH_MT);
    lua_pushfstring(L, "juju.sys.SignalWatch(%d signals%s)", w->w.count,
                    w->w.active ? "" : ", closed");
    return 1;
}

/* signals({"INT", "TERM"}) -> SignalWatch | nil, msg, code */
static int l_signals(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = (int)luaL_len(L, 1);
    luaL_argcheck(L, n >= 1 && n <= JJ_SYS_WATCH_MAX, 1, "expected 1 to 16 signal names");
    int signos[JJ_SYS_WATCH_MAX];
    for (int i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        int s = check_signal(L, -1, -1);
        if (s == SIGKILL || s == SIGSTOP || s == 0)
            luaL_argerror(L, 1, "KILL, STOP and 0 cannot be watched");
        signos[i] = s;
        lua_pop(L, 1);
    }
    lua_watch *w = lua_newuserdatauv(L, sizeof *w, 0);
    memset(w, 0, sizeof *w);
    luaL_setmetatable(L, WATCH_MT);
    jj_error err;
    if (jj_sys_sigwatch_open(&w->w, signos, n, &err))
        return jj_push_error(L, &err);
    return 1;
}

static int l_kill(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    int s = check_signal(L, 2, SIGTERM);
    jj_error err;
    return push_ok(L, jj_sys_kill((pid_t)pid, s, &err), &err);
}

static int l_raise(lua_State *L)
{
    int s = check_signal(L, 1, -1);
    jj_error err;
    return push_ok(L, jj_sys_raise(s, &err), &err);
}

/* ---- processes ------------------------------------------------------ */

typedef struct lua_proc {
    jj_proc p; /* pid -1 while closed; uservalue 1 anchors the stdin data */
} lua_proc;

static lua_proc *check_process(lua_State *L, int idx)
{
    lua_proc *pr = luaL_checkudata(L, idx, PROCESS_MT);
    if (pr->p.pid <= 0)
        luaL_error(L, "attempt to use a closed process");
    return pr;
}

static int process_cleanup(lua_State *L)
{
    lua_proc *pr = luaL_checkudata(L, 1, PROCESS_MT);
    jj_proc_close(&pr->p);
    return 0;
}

static int process_close(lua_State *L)
{
    process_cleanup(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int process_pid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)check_process(L, 1)->p.pid);
    return 1;
}

static double opt_timeout(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return -1;
    lua_Number t = luaL_checknumber(L, idx);
    luaL_argcheck(L, t >= 0, idx, "timeout must be >= 0");
    return (double)t;
}

/* wait([timeout]) -> code, signal name or nil | nil, msg, "TIMEOUT" */
static int process_wait(lua_State *L)
{
    lua_proc *pr = check_process(L, 1);
    double timeout = opt_timeout(L, 2);
    int code, signo;
    jj_error err;
    if (jj_proc_wait(&pr->p, timeout, &code, &signo, &err))
        return jj_push_error(L, &err);
    lua_pushinteger(L, code);
    if (signo)
        push_signal_name(L, signo);
    else
        lua_pushnil(L);
    return 2;
}

static inline void push_buf(lua_State *L, const jj_buf *b)
{
    lua_pushlstring(L, b->data ? b->data : "", b->len);
}

/* read_all([timeout]) -> stdout, stderr (everything collected so far and
 * until both pipes close; "" for streams that are not pipes). */
static int process_read_all(lua_State *L)
{
    lua_proc *pr = check_process(L, 1);
    double timeout = opt_timeout(L, 2);
    jj_error err;
    if (jj_proc_read_all(&pr->p, timeout, &err))
        return jj_push_error(L, &err);
    push_buf(L, &pr->p.out);
    push_buf(L, &pr->p.err);
    return 2;
}

static int process_kill(lua_State *L)
{
    lua_proc *pr = check_process(L, 1);
    int s = check_signal(L, 2, SIGTERM);
    jj_error err;
    return push_ok(L, jj_proc_kill(&pr->p, s, &err), &err);
}

static int process_tostring(lua_State *L)
{
    lua_proc *pr = luaL_checkudata(L, 1, PROCESS_MT);
    if (pr->p.pid > 0)
        lua_pushfstring(L, "juju.sys.Process(%d)", (int)pr->p.pid);
    else
        lua_pushliteral(L, "juju.sys.Process(closed)");
    return 1;
}

/* Where a stdout/stderr option points. */
static jj_stdio_mode output_mode(lua_State *L, const char *field, const char **path)
{
    *path = NULL;
    int t = lua_getfield(L, 2, field);
    jj_stdio_mode m = JJ_STDIO_PIPE;
    if (t != LUA_TNIL) {
        if (t != LUA_TSTRING)
            luaL_error(L, "bad option '%s' (string expected, got %s)", field, luaL_typename(L, -1));
        const char *v = lua_tostring(L, -1);
        if (strcmp(v, "pipe") == 0)
            m = JJ_STDIO_PIPE;
        else if (strcmp(v, "null") == 0)
            m = JJ_STDIO_NULL;
        else if (strcmp(v, "inherit") == 0)
            m = JJ_STDIO_INHERIT;
        else if (*v) {
            m = JJ_STDIO_FILE;
            *path = v; /* anchored by the options table */
        } else
            luaL_error(L, "bad option '%s' (empty path)", field);
    }
    lua_pop(L, 1);
    return m;
}

static void check_option_names(lua_State *L, int allow_timeout)
{
    static const char *const known[] = {
        "env", "cwd", "stdin", "stdout", "stderr", "timeout", NULL,
    };
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int ok = 0;
        for (int i = 0; k && known[i]; i++)
            if (strcmp(k, known[i]) == 0)
                ok = strcmp(k, "timeout") != 0 || allow_timeout;
        if (!ok)
            luaL_error(L, "unknown option '%s'", k ? k : luaL_typename(L, -1));
    }
}

/* Builds o from argv (index 1) and opts (index 2, optional). The arrays
 * and "K=V" strings are left on the stack (anchored) until the caller
 * returns. *stdin_idx is the stack index of fed stdin data, or 0. */
static void build_opts(lua_State *L, jj_proc_opts *o, int allow_timeout, double *timeout,
                       int *stdin_idx)
{
    memset(o, 0, sizeof *o);
    *timeout = -1;
    *stdin_idx = 0;
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2); /* opts (or nil) stays at 2; anchors go above */
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n >= 1 && n < 65536, 1, "argv must be a non-empty array of strings");
    const char **argv = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *argv, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 1, i) != LUA_TSTRING)
            luaL_argerror(L, 1, lua_pushfstring(L, "argv[%I] must be a string", i));
        size_t len;
        argv[i - 1] = lua_tolstring(L, -1, &len); /* anchored by the argv table */
        if (strlen(argv[i - 1]) != len)
            luaL_argerror(L, 1, "argv strings must not contain NUL");
        lua_pop(L, 1);
    }
    argv[n] = NULL;
    o->argv = argv;
    o->stdin_mode = JJ_STDIO_NULL;
    o->stdout_mode = o->stderr_mode = JJ_STDIO_PIPE;
    if (lua_isnil(L, 2))
        return;
    check_option_names(L, allow_timeout);

    if (lua_getfield(L, 2, "env") != LUA_TNIL) {
        int env = lua_gettop(L);
        if (!lua_istable(L, env))
            luaL_error(L, "bad option 'env' (table expected, got %s)", luaL_typename(L, env));
        lua_newtable(L); /* anchors the "K=V" strings */
        int anchor = lua_gettop(L);
        lua_Integer count = 0;
        lua_pushnil(L);
        while (lua_next(L, env)) {
            if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING &&
                                                    lua_type(L, -1) != LUA_TNUMBER))
                luaL_error(L, "bad option 'env' (string keys and string values expected)");
            const char *k = lua_tostring(L, -2);
            if (!*k || strchr(k, '='))
                luaL_error(L, "bad option 'env' (invalid name '%s')", k);
            lua_pushfstring(L, "%s=%s", k, luaL_tolstring(L, -1, NULL));
            lua_rawseti(L, anchor, ++count);
            lua_pop(L, 2); /* tolstring result and value */
        }
        const char **envp = lua_newuserdatauv(L, (size_t)(count + 1) * sizeof *envp, 0);
        for (lua_Integer i = 1; i <= count; i++) {
            lua_rawgeti(L, anchor, i);
            envp[i - 1] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
        envp[count] = NULL;
        o->envp = envp;
    } else {
        lua_pop(L, 1);
    }

    int t = lua_getfield(L, 2, "cwd");
    if (t != LUA_TNIL && t != LUA_TSTRING)
        luaL_error(L, "bad option 'cwd' (string expected, got %s)", luaL_typename(L, -1));
    o->cwd = lua_tostring(L, -1);
    lua_pop(L, 1); /* anchored by the options table */

    t = lua_getfield(L, 2, "stdin");
    if (t != LUA_TNIL && t != LUA_TSTRING)
        luaL_error(L, "bad option 'stdin' (string expected, got %s)", luaL_typename(L, -1));
    if (t == LUA_TSTRING) {
        const char *v = lua_tolstring(L, -1, &o->stdin_len);
        if (strcmp(v, "null") == 0) {
            o->stdin_mode = JJ_STDIO_NULL;
        } else if (strcmp(v, "inherit") == 0) {
            o->stdin_mode = JJ_STDIO_INHERIT;
        } else {
            o->stdin_mode = JJ_STDIO_DATA;
            o->stdin_data = v;
            *stdin_idx = lua_gettop(L); /* kept: the process anchors it */
        }
    }
    if (!*stdin_idx)
        lua_pop(L, 1);

    o->stdout_mode = output_mode(L, "stdout", &o->stdout_path);
    o->stderr_mode = output_mode(L, "stderr", &o->stderr_path);

    t = lua_getfield(L, 2, "timeout");
    if (t != LUA_TNIL) {
        if (t != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0))
            luaL_error(L, "bad option 'timeout' (non-negative number expected)");
        *timeout = (double)lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
}

/* A fresh, closed Process whose uservalue anchors the stdin data. */
static lua_proc *new_process(lua_State *L, int stdin_idx)
{
    lua_proc *pr = lua_newuserdatauv(L, sizeof *pr, 1);
    jj_proc_init(&pr->p);
    luaL_setmetatable(L, PROCESS_MT);
    if (stdin_idx) {
        lua_pushvalue(L, stdin_idx);
        lua_setiuservalue(L, -2, 1);
    }
    return pr;
}

/* spawn(argv [, opts]) -> Process | nil, msg, code */
static int l_spawn(lua_State *L)
{
    jj_proc_opts o;
    double timeout;
    int stdin_idx;
    build_opts(L, &o, 0, &timeout, &stdin_idx);
    lua_proc *pr = new_process(L, stdin_idx);
    jj_error err;
    if (jj_proc_spawn(&pr->p, &o, &err))
        return jj_push_error(L, &err);
    return 1;
}

/* run(argv [, opts]) -> {code=, stdout=, stderr=, signal=} | nil, msg, code */
static int l_run(lua_State *L)
{
    jj_proc_opts o;
    double timeout;
    int stdin_idx;
    build_opts(L, &o, 1, &timeout, &stdin_idx);
    lua_proc *pr = new_process(L, stdin_idx);
    int code, signo;
    jj_error err;
    if (jj_proc_run(&pr->p, &o, timeout, &code, &signo, &err)) {
        jj_proc_close(&pr->p);
        return jj_push_error(L, &err);
    }
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, code);
    lua_setfield(L, -2, "code");
    push_buf(L, &pr->p.out);
    lua_setfield(L, -2, "stdout");
    push_buf(L, &pr->p.err);
    lua_setfield(L, -2, "stderr");
    if (signo) {
        push_signal_name(L, signo);
        lua_setfield(L, -2, "signal");
    }
    jj_proc_close(&pr->p);
    return 1;
}

static const luaL_Reg process_methods[] = {
    {"pid", process_pid},
    {"wait", process_wait},
    {"read_all", process_read_all},
    {"kill", process_kill},
    {"close", process_close},
    {NULL, NULL},
};

static const luaL_Reg process_meta[] = {
    {"__close", process_cleanup},
    {"__gc", process_cleanup},
    {"__tostring", process_tostring},
    {NULL, NULL},
};

static const luaL_Reg watch_methods[] = {
    {"pending", watch_pending},
    {"close", watch_close},
    {NULL, NULL},
};

static const luaL_Reg watch_meta[] = {
    {"__close", watch_cleanup},
    {"__gc", watch_cleanup},
    {"__tostring", watch_tostring},
    {NULL, NULL},
};

static const luaL_Reg sys_functions[] = {
    {"getpid", l_getpid},
    {"getppid", l_getppid},
    {"getuid", l_getuid},
    {"geteuid", l_geteuid},
    {"username", l_username},
    {"home_dir", l_home_dir},
    {"hostname", l_hostname},
    {"uname", l_uname},
    {"arch", l_arch},
    {"os_release", l_os_release},
    {"parse_os_release", l_parse_os_release},
    {"getenv", l_getenv},
    {"setenv", l_setenv},
    {"environ", l_environ},
    {"time", l_time},
    {"monotonic", l_monotonic},
    {"sleep", l_sleep},
    {"isatty", l_isatty},
    {"signals", l_signals},
    {"kill", l_kill},
    {"raise", l_raise},
    {"spawn", l_spawn},
    {"run", l_run},
    {NULL, NULL},
};

int luaopen_juju_sys(lua_State *L)
{
    jj_new_class(L, PROCESS_MT, process_methods, process_meta);
    jj_new_class(L, WATCH_MT, watch_methods, watch_meta);
    luaL_newlib(L, sys_functions);
    return 1;
}
