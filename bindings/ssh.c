/* ssh.c (binding): juju.ssh, the verified SSH client for Lua.
 *
 *   ssh.connect(opts) -> juju.ssh.Session | nil, message, code
 *   Session:exec(command [, opts]) -> {code, stdout, stderr, signal}
 *   Session:upload(local, remote [, opts]), Session:download(remote, local [, opts]) -> bytes
 *   Session:host_key() -> {type, fingerprint, line, verified}
 *   Session:close()
 *   ssh.known_hosts_lookup(path, host [, port]), ssh.known_hosts_parse(text [, host [, port
 *     [, source]]]) -> {{line, key, lineno, marker}, ...}
 *   ssh.known_hosts_add(path, host, port, key_line) -> true
 *   ssh.check_host_key(opts) -> "pinned" | "known_hosts" | "added"
 *
 * Binds core/ssh.h (the session) and core/knownhosts.h (the host-key
 * policy, a core module of its own without libssh2; one Lua module covers
 * both, as a Lua user sees one SSH client). The long calls take `cancel`
 * (a juju.sys.SignalWatch, see cancel.h).
 *
 * Lua callbacks (on_stdout, on_stderr, on_progress) are called from the
 * core's loops, never from inside libssh2, and always under lua_pcall: an
 * error is parked in a stack slot, the core is told to stop (it closes the
 * channel or removes the temp file), and the error is raised again once the
 * core has returned. Strings the core points at stay on the Lua stack for
 * the whole call, so a callback that rewrites the options table cannot pull
 * them out from under it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancel.h"
#include "common.h"
#include "options.h"
#include "ssh.h"

#define SESSION_MT "juju.ssh.Session"

typedef struct lua_session {
    jj_ssh_session *s; /* NULL while closed */
    int busy;          /* a call is running: no re-entry from callbacks, no close */
    char desc[320];    /* "user@host:port" for __tostring */
} lua_session;

typedef struct cb_ctx {
    lua_State *L;
    int on_stdout, on_stderr, on_progress; /* stack indexes, 0 when absent */
    int err_slot;                          /* where a callback's error is parked */
    int raised;
} cb_ctx;

/* ---- options ---------------------------------------------------------------- */

static int check_port(lua_State *L, int arg)
{
    lua_Integer port = luaL_optinteger(L, arg, 22);
    luaL_argcheck(L, port >= 1 && port <= 65535, arg, "port must be 1..65535");
    return (int)port;
}

/* ---- sessions ------------------------------------------------------------------ */

static lua_session *check_session(lua_State *L, int idx)
{
    lua_session *ls = luaL_checkudata(L, idx, SESSION_MT);
    if (!ls->s)
        luaL_argerror(L, idx, "attempt to use a closed session");
    if (ls->busy)
        luaL_argerror(L, idx, "session is busy (called from its own callback)");
    return ls;
}

static int session_cleanup(lua_State *L)
{
    lua_session *ls = luaL_checkudata(L, 1, SESSION_MT);
    if (ls->busy)
        return luaL_error(L, "cannot close a session while a call on it is running");
    jj_ssh_close(ls->s);
    ls->s = NULL;
    return 0;
}

static int session_close(lua_State *L)
{
    session_cleanup(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int session_tostring(lua_State *L)
{
    lua_session *ls = luaL_checkudata(L, 1, SESSION_MT);
    lua_pushfstring(L, "juju.ssh.Session (%s%s)", ls->desc, ls->s ? "" : ", closed");
    return 1;
}

static const char *const connect_keys[] = {
    "host", "port", "user", "private_key_file", "public_key_file", "connect_timeout",
    "timeout", "keepalive", "known_hosts", "host_key", "trust_on_first_use",
    "hostkey_prefs", "cancel", NULL,
};

/* connect(opts) -> Session | nil, message, code */
static int l_connect(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    jj_opt_check_names(L, 1, connect_keys, "connect");
    jj_ssh_connect_opts o;
    jj_ssh_connect_opts_init(&o);
    o.host = jj_opt_string(L, 1, "host", NULL);
    o.user = jj_opt_string(L, 1, "user", NULL);
    o.private_key_file = jj_opt_string(L, 1, "private_key_file", NULL);
    if (!o.host || !*o.host)
        luaL_error(L, "bad option 'host' (non-empty string expected)");
    if (!o.user || !*o.user)
        luaL_error(L, "bad option 'user' (non-empty string expected)");
    if (!o.private_key_file)
        luaL_error(L, "bad option 'private_key_file' (string expected, got nil)");
    o.port = (int)jj_opt_integer(L, 1, "port", 22, 1, 65535);
    o.public_key_file = jj_opt_string(L, 1, "public_key_file", NULL);
    o.connect_timeout = jj_opt_seconds(L, 1, "connect_timeout", o.connect_timeout);
    o.timeout = jj_opt_seconds(L, 1, "timeout", o.timeout);
    o.keepalive = (int)jj_opt_integer(L, 1, "keepalive", o.keepalive, 0, 86400);
    o.known_hosts = jj_opt_string(L, 1, "known_hosts", NULL);
    o.host_key = jj_opt_string(L, 1, "host_key", NULL);
    o.trust_on_first_use = jj_opt_boolean(L, 1, "trust_on_first_use", 0);
    o.hostkey_prefs = jj_opt_string(L, 1, "hostkey_prefs", NULL);
    if (o.trust_on_first_use && !o.known_hosts)
        luaL_error(L, "option 'trust_on_first_use' needs 'known_hosts'");
    jj_sys_cancel cancel;
    jj_opt_cancel(L, 1, &cancel);
    o.cancel = &cancel;

    lua_session *ls = lua_newuserdatauv(L, sizeof *ls, 0);
    ls->s = NULL;
    ls->busy = 0;
    snprintf(ls->desc, sizeof ls->desc, strchr(o.host, ':') ? "%s@[%s]:%d" : "%s@%s:%d", o.user,
             o.host, o.port);
    luaL_setmetatable(L, SESSION_MT);
    jj_error err;
    if (jj_ssh_connect(&o, &ls->s, &err))
        return jj_push_error(L, &err);
    return 1;
}

static int session_host_key(lua_State *L)
{
    lua_session *ls = check_session(L, 1);
    const jj_ssh_host_key *hk = jj_ssh_session_host_key(ls->s);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, hk->type);
    lua_setfield(L, -2, "type");
    lua_pushstring(L, hk->fingerprint);
    lua_setfield(L, -2, "fingerprint");
    lua_pushstring(L, hk->line ? hk->line : "");
    lua_setfield(L, -2, "line");
    lua_pushstring(L, jj_knownhosts_verified_name(hk->verified));
    lua_setfield(L, -2, "verified");
    return 1;
}

/* ---- callbacks (called from the core's loops: nothing here may raise) ------- */

/* Runs protected: 1 = function, 2 = chunk pointer, 3 = chunk length. */
static int call_with_chunk(lua_State *L)
{
    const char *p = lua_touserdata(L, 2);
    size_t n = (size_t)lua_tointeger(L, 3);
    lua_settop(L, 1);
    lua_pushlstring(L, p, n);
    lua_call(L, 1, 0);
    return 0;
}

static int output_cb(void *ud, int stream, const char *data, size_t len)
{
    cb_ctx *cx = ud;
    int fn = stream == JJ_SSH_STDOUT ? cx->on_stdout : cx->on_stderr;
    if (!fn)
        return 0;
    lua_State *L = cx->L;
    /* None of these pushes allocate; stack room was reserved beforehand. */
    lua_pushcfunction(L, call_with_chunk);
    lua_pushvalue(L, fn);
    lua_pushlightuserdata(L, (void *)data);
    lua_pushinteger(L, (lua_Integer)len);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
        lua_replace(L, cx->err_slot);
        cx->raised = 1;
        return 1;
    }
    return 0;
}

static int progress_cb(void *ud, uint64_t done, int64_t total)
{
    cb_ctx *cx = ud;
    lua_State *L = cx->L;
    lua_pushvalue(L, cx->on_progress);
    lua_pushinteger(L, (lua_Integer)done);
    if (total >= 0)
        lua_pushinteger(L, (lua_Integer)total);
    else
        lua_pushnil(L);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        lua_replace(L, cx->err_slot);
        cx->raised = 1;
        return 1;
    }
    return 0;
}

/* Pushes the slot that will hold a callback's error and reserves stack room
 * for the callbacks. */
static void prepare_callbacks(lua_State *L, cb_ctx *cx)
{
    cx->L = L;
    cx->raised = 0;
    lua_pushnil(L);
    cx->err_slot = lua_gettop(L);
    luaL_checkstack(L, 16, "ssh callbacks");
}

/* ---- exec ----------------------------------------------------------------------------- */

/* Runs protected: 1 = the jj_ssh_exec_result, 2 = whether output was collected. */
static int build_result(lua_State *L)
{
    const jj_ssh_exec_result *r = lua_touserdata(L, 1);
    int collect = lua_toboolean(L, 2);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, r->code);
    lua_setfield(L, -2, "code");
    if (collect) {
        lua_pushlstring(L, r->out ? r->out : "", r->out_len);
        lua_setfield(L, -2, "stdout");
        lua_pushlstring(L, r->err ? r->err : "", r->err_len);
        lua_setfield(L, -2, "stderr");
    }
    if (r->signal[0]) {
        lua_pushstring(L, r->signal);
        lua_setfield(L, -2, "signal");
    }
    return 1;
}

static const char *const exec_keys[] = {
    "stdin", "stdin_file", "on_stdout", "on_stderr", "timeout", "collect", "cancel", NULL,
};

/* exec(command [, opts]) -> {code=, stdout=, stderr=, signal=} | nil, message, code */
static int session_exec(lua_State *L)
{
    lua_session *ls = check_session(L, 1);
    size_t clen;
    const char *command = luaL_checklstring(L, 2, &clen);
    luaL_argcheck(L, strlen(command) == clen, 2, "command must not contain NUL");
    int opts = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        opts = 3;
    }
    lua_settop(L, 3);
    if (opts)
        jj_opt_check_names(L, opts, exec_keys, "exec");
    jj_ssh_exec_opts o;
    jj_ssh_exec_opts_init(&o);
    cb_ctx cx;
    memset(&cx, 0, sizeof cx);
    o.stdin_data = jj_opt_string(L, opts, "stdin", &o.stdin_len);
    o.stdin_file = jj_opt_string(L, opts, "stdin_file", NULL);
    if (o.stdin_data && o.stdin_file)
        luaL_error(L, "options 'stdin' and 'stdin_file' are exclusive");
    cx.on_stdout = jj_opt_function(L, opts, "on_stdout");
    cx.on_stderr = jj_opt_function(L, opts, "on_stderr");
    o.timeout = jj_opt_seconds(L, opts, "timeout", 0);
    o.collect = jj_opt_boolean(L, opts, "collect", 1);
    jj_sys_cancel cancel;
    jj_opt_cancel(L, opts, &cancel);
    o.cancel = &cancel;
    if (cx.on_stdout || cx.on_stderr) {
        o.on_output = output_cb;
        o.ud = &cx;
    }
    prepare_callbacks(L, &cx);

    jj_ssh_exec_result r;
    jj_ssh_exec_result_init(&r);
    jj_error err;
    ls->busy = 1;
    int rc = jj_ssh_exec(ls->s, command, &o, &r, &err);
    ls->busy = 0;
    if (cx.raised) {
        jj_ssh_exec_result_free(&r);
        lua_pushvalue(L, cx.err_slot);
        return lua_error(L);
    }
    if (rc) {
        jj_ssh_exec_result_free(&r);
        return jj_push_error(L, &err);
    }
    lua_pushcfunction(L, build_result);
    lua_pushlightuserdata(L, &r);
    lua_pushboolean(L, o.collect);
    int status = lua_pcall(L, 2, 1, 0);
    jj_ssh_exec_result_free(&r);
    if (status != LUA_OK)
        return lua_error(L);
    return 1;
}

/* ---- SFTP ------------------------------------------------------------------------------ */

static const char *const transfer_keys[] = {"mode", "parents", "on_progress", "cancel", NULL};

typedef int (*transfer_fn)(jj_ssh_session *, const char *, const char *,
                           const jj_ssh_transfer_opts *, uint64_t *, jj_error *);

/* upload(local, remote [, opts]) and download(remote, local [, opts]) ->
 * bytes | nil, message, code */
static int transfer(lua_State *L, transfer_fn fn)
{
    lua_session *ls = check_session(L, 1);
    const char *from = luaL_checkstring(L, 2);
    const char *to = luaL_checkstring(L, 3);
    int opts = 0;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        opts = 4;
    }
    lua_settop(L, 4);
    if (opts)
        jj_opt_check_names(L, opts, transfer_keys, "transfer");
    jj_ssh_transfer_opts o;
    memset(&o, 0, sizeof o);
    cb_ctx cx;
    memset(&cx, 0, sizeof cx);
    o.mode = (int)jj_opt_mode(L, opts, "mode", 0); /* 0: the default, 0644 or 0600 */
    o.parents_mode = (int)jj_opt_mode(L, opts, "parents", 0); /* upload: mkdir -p with it */
    cx.on_progress = jj_opt_function(L, opts, "on_progress");
    jj_sys_cancel cancel;
    jj_opt_cancel(L, opts, &cancel);
    o.cancel = &cancel;
    if (cx.on_progress) {
        o.on_progress = progress_cb;
        o.ud = &cx;
    }
    prepare_callbacks(L, &cx);
    uint64_t bytes = 0;
    jj_error err;
    ls->busy = 1;
    int rc = fn(ls->s, from, to, &o, &bytes, &err);
    ls->busy = 0;
    if (cx.raised) {
        lua_pushvalue(L, cx.err_slot);
        return lua_error(L);
    }
    if (rc)
        return jj_push_error(L, &err);
    lua_pushinteger(L, (lua_Integer)bytes);
    return 1;
}

static int session_upload(lua_State *L)
{
    return transfer(L, jj_ssh_upload);
}

static int session_download(lua_State *L)
{
    return transfer(L, jj_ssh_download);
}

/* ---- known_hosts and host-key policy ----------------------------------------------- */

static int push_known_hosts(lua_State *L, jj_known_host *e, size_t n)
{
    lua_createtable(L, (int)(n < 1024 ? n : 1024), 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 4);
        lua_pushstring(L, e[i].line);
        lua_setfield(L, -2, "line");
        lua_pushstring(L, e[i].key);
        lua_setfield(L, -2, "key");
        lua_pushinteger(L, e[i].lineno);
        lua_setfield(L, -2, "lineno");
        if (e[i].marker) {
            lua_pushstring(L, e[i].marker);
            lua_setfield(L, -2, "marker");
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int build_entries(lua_State *L)
{
    return push_known_hosts(L, lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
}

/* Moves the entries into a Lua array; they are freed even when building it
 * raises (out of memory). */
static int push_and_free(lua_State *L, jj_known_host *e, size_t n)
{
    lua_pushcfunction(L, build_entries);
    lua_pushlightuserdata(L, e);
    lua_pushinteger(L, (lua_Integer)n);
    int status = lua_pcall(L, 2, 1, 0);
    jj_knownhosts_free(e, n);
    if (status != LUA_OK)
        return lua_error(L);
    return 1;
}

/* known_hosts_lookup(path, host [, port]) -> entries | nil, message, code */
static int l_known_hosts_lookup(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *host = luaL_checkstring(L, 2);
    int port = check_port(L, 3);
    jj_known_host *e;
    size_t n;
    jj_error err;
    if (jj_knownhosts_lookup(path, host, port, &e, &n, &err))
        return jj_push_error(L, &err);
    return push_and_free(L, e, n);
}

/* known_hosts_parse(text [, host [, port [, source]]]) -> entries | nil, message, code */
static int l_known_hosts_parse(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *host = luaL_optstring(L, 2, NULL);
    int port = check_port(L, 3);
    const char *source = luaL_optstring(L, 4, "known_hosts");
    jj_known_host *e;
    size_t n;
    jj_error err;
    if (jj_knownhosts_parse(text, len, source, host, port, &e, &n, &err))
        return jj_push_error(L, &err);
    return push_and_free(L, e, n);
}

/* known_hosts_add(path, host, port, key_line) -> true | nil, message, code */
static int l_known_hosts_add(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *host = luaL_checkstring(L, 2);
    int port = check_port(L, 3);
    const char *key = luaL_checkstring(L, 4);
    jj_error err;
    if (jj_knownhosts_add(path, host, port, key, &err))
        return jj_push_error(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static const char *const check_keys_list[] = {
    "host", "port", "key", "host_key", "known_hosts", "trust_on_first_use", NULL,
};

/* check_host_key{host=, port=, key=, host_key=, known_hosts=, trust_on_first_use=}
 * -> "pinned" | "known_hosts" | "added" | nil, message, code */
static int l_check_host_key(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    jj_opt_check_names(L, 1, check_keys_list, "check_host_key");
    jj_knownhosts_check c;
    memset(&c, 0, sizeof c);
    c.host = jj_opt_string(L, 1, "host", NULL);
    c.presented = jj_opt_string(L, 1, "key", NULL);
    if (!c.host || !c.presented)
        luaL_error(L, "options 'host' and 'key' are required");
    c.port = (int)jj_opt_integer(L, 1, "port", 22, 1, 65535);
    c.pinned = jj_opt_string(L, 1, "host_key", NULL);
    c.known_hosts = jj_opt_string(L, 1, "known_hosts", NULL);
    c.trust_on_first_use = jj_opt_boolean(L, 1, "trust_on_first_use", 0);
    jj_knownhosts_verified how;
    jj_error err;
    if (jj_knownhosts_check_host_key(&c, &how, &err))
        return jj_push_error(L, &err);
    lua_pushstring(L, jj_knownhosts_verified_name(how));
    return 1;
}

static const luaL_Reg session_methods[] = {
    {"exec", session_exec},
    {"upload", session_upload},
    {"download", session_download},
    {"host_key", session_host_key},
    {"close", session_close},
    {NULL, NULL},
};

static const luaL_Reg session_meta[] = {
    {"__close", session_cleanup},
    {"__gc", session_cleanup},
    {"__tostring", session_tostring},
    {NULL, NULL},
};

static const luaL_Reg ssh_functions[] = {
    {"connect", l_connect},
    {"known_hosts_lookup", l_known_hosts_lookup},
    {"known_hosts_parse", l_known_hosts_parse},
    {"known_hosts_add", l_known_hosts_add},
    {"check_host_key", l_check_host_key},
    {NULL, NULL},
};

int luaopen_juju_ssh(lua_State *L)
{
    jj_error err;
    if (jj_ssh_global_init(&err))
        return luaL_error(L, "%s", err.message);
    jj_new_class(L, SESSION_MT, session_methods, session_meta);
    luaL_newlib(L, ssh_functions);
    return 1;
}
