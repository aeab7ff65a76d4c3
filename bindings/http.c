/* http.c (binding): juju.http, HTTP(S) and file:// transfers for Lua.
 *
 *   http.request(opts) -> response | nil, message, code [, response]
 *   http.get(url [, opts]), http.head(url [, opts])
 *   http.client([defaults]) -> juju.http.Client (one kept-alive connection
 *     cache) with :request(opts), :get(url [, opts]), :head(url [, opts]),
 *     :close()
 *   http.url_escape(s), http.url_unescape(s), http.parse_url(url),
 *   http.safe_url(url)
 *
 * Lua callbacks (on_data, sleep) run while libcurl is on the C stack, so
 * each runs under lua_pcall; an error is parked in a stack slot, the
 * transfer is aborted, and the error is raised again once libcurl has
 * returned. Everything the core points at (strings, the callbacks) stays on
 * the Lua stack for the whole call, so a callback that rewrites the options
 * table cannot pull a string out from under libcurl. Option `cancel` (a
 * juju.sys.SignalWatch, cancel.h) stops a transfer or its retry wait.
 * Options `deadline`, `multipart`, `client_cert`/`client_key` and the
 * response's `body_sha256` are the core's (http.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cancel.h"
#include "common.h"
#include "options.h"
#include "http.h"

#define CLIENT_MT "juju.http.Client"
#define URL_PARTS_MT "juju.http.URLParts" /* internal: owns parse_url's parts */

typedef struct lua_client {
    jj_http *h;    /* NULL while closed; uservalue 1 holds the defaults table */
    int busy;      /* a request is running: no re-entry, no close */
    jj_http_response resp; /* the last response, freed by the next request or close */
} lua_client;

/* Where one request's options come from: the call's table, then the
 * client's defaults (stack indexes, 0 when absent). */
typedef struct opt_src {
    int opts, defs;
} opt_src;

typedef struct call_ctx {
    lua_State *L;
    int on_data;  /* stack index of the on_data function, 0 if none */
    int sleep;    /* stack index of the sleep function, 0 if none */
    int err_slot; /* stack index where a callback's error is parked */
    int raised;   /* a callback raised */
} call_ctx;

static const char *const request_keys[] = {
    "url", "method", "headers", "body", "body_file", "multipart", "to_file", "on_data",
    "connect_timeout", "idle_timeout", "timeout", "deadline", "retries", "retry_delay", "sleep",
    "proxy", "insecure", "ca_file", "client_cert", "client_key", "max_size", "follow_redirects",
    "user_agent", "cancel", NULL,
};

/* Options that make sense for every request of a client. */
static const char *const client_keys[] = {
    "headers", "connect_timeout", "idle_timeout", "timeout", "deadline", "retries",
    "retry_delay", "sleep", "proxy", "insecure", "ca_file", "client_cert", "client_key",
    "max_size", "follow_redirects", "user_agent", "cancel", NULL,
};

/* Pushes the option's value (nil when unset) and returns its type. The
 * value is left on the stack to keep it alive for the whole call. */
static int get_opt(lua_State *L, const opt_src *s, const char *name)
{
    int t = LUA_TNIL;
    if (s->opts)
        t = lua_getfield(L, s->opts, name);
    if (t == LUA_TNIL && s->defs) {
        if (s->opts)
            lua_pop(L, 1);
        t = lua_getfield(L, s->defs, name);
    } else if (!s->opts) {
        lua_pushnil(L);
    }
    return t;
}

/* Option readers over get_opt (options.h checks the value). */
static const char *opt_string(lua_State *L, const opt_src *s, const char *name)
{
    return jj_optv_string(L, get_opt(L, s, name), name, NULL);
}

static double opt_seconds(lua_State *L, const opt_src *s, const char *name, double def)
{
    return jj_optv_seconds(L, get_opt(L, s, name), name, def);
}

static lua_Integer opt_count(lua_State *L, const opt_src *s, const char *name, lua_Integer def,
                             lua_Integer max)
{
    return jj_optv_integer(L, get_opt(L, s, name), name, def, 0, max);
}

static int opt_bool(lua_State *L, const opt_src *s, const char *name, int def)
{
    return jj_optv_boolean(L, get_opt(L, s, name), name, def);
}

/* Stack index of a function option, or 0. */
static int opt_function(lua_State *L, const opt_src *s, const char *name)
{
    return jj_optv_function(L, get_opt(L, s, name), name);
}

/* ---- request headers ----------------------------------------------------- */

static int is_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Pops the name/value pair at the top of the stack and appends its libcurl
 * header line to the array at `lines`. */
static void add_header_line(lua_State *L, int lines)
{
    if (lua_type(L, -2) != LUA_TSTRING)
        luaL_error(L, "bad option 'headers' (names must be strings)");
    size_t nlen;
    const char *name = lua_tolstring(L, -2, &nlen);
    for (size_t i = 0; i < nlen; i++)
        if (!is_token_char((unsigned char)name[i]))
            luaL_error(L, "bad option 'headers' (invalid header name '%s')", name);
    if (nlen == 0)
        luaL_error(L, "bad option 'headers' (empty header name)");
    int t = lua_type(L, -1);
    if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
        lua_pushfstring(L, "%s:", name); /* false: suppress libcurl's own header */
    } else if (t == LUA_TSTRING || t == LUA_TNUMBER) {
        size_t vlen;
        const char *v = luaL_tolstring(L, -1, &vlen);
        if (strlen(v) != vlen || strpbrk(v, "\r\n"))
            luaL_error(L, "bad option 'headers' (value of '%s' contains CR, LF or NUL)", name);
        if (vlen)
            lua_pushfstring(L, "%s: %s", name, v);
        else
            lua_pushfstring(L, "%s;", name); /* libcurl's spelling of an empty value */
        lua_remove(L, -2);
    } else {
        luaL_error(L, "bad option 'headers' (value of '%s' must be a string, number or false)",
                   name);
    }
    lua_rawseti(L, lines, (lua_Integer)luaL_len(L, lines) + 1);
    lua_pop(L, 2);
}

static int has_header_ci(lua_State *L, int tbl, const char *name)
{
    int found = 0;
    lua_pushnil(L);
    while (!found && lua_next(L, tbl)) {
        lua_pop(L, 1);
        found = lua_type(L, -1) == LUA_TSTRING && strcasecmp(lua_tostring(L, -1), name) == 0;
    }
    if (found)
        lua_pop(L, 1);
    return found;
}

/* A NULL-terminated array of header lines: the call's headers, plus the
 * client's default headers the call does not override (names compared
 * case-insensitively). The lines table and the array stay on the stack. */
static const char *const *build_headers(lua_State *L, const opt_src *s)
{
    int own = 0, defs = 0;
    if (s->opts) {
        int t = lua_getfield(L, s->opts, "headers");
        if (t != LUA_TNIL && t != LUA_TTABLE)
            jj_opt_bad(L, "headers", "table");
        own = t == LUA_TTABLE ? lua_gettop(L) : 0;
    }
    if (s->defs) {
        int t = lua_getfield(L, s->defs, "headers");
        if (t != LUA_TNIL && t != LUA_TTABLE)
            jj_opt_bad(L, "headers", "table");
        defs = t == LUA_TTABLE ? lua_gettop(L) : 0;
    }
    lua_newtable(L);
    int lines = lua_gettop(L);
    if (defs) {
        lua_pushnil(L);
        while (lua_next(L, defs)) {
            if (own && lua_type(L, -2) == LUA_TSTRING && has_header_ci(L, own, lua_tostring(L, -2)))
                lua_pop(L, 1);
            else {
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                add_header_line(L, lines);
            }
        }
    }
    if (own) {
        lua_pushnil(L);
        while (lua_next(L, own)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            add_header_line(L, lines);
        }
    }
    lua_Integer n = luaL_len(L, lines);
    const char **arr = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *arr, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, lines, i);
        arr[i - 1] = lua_tostring(L, -1); /* anchored by the lines table */
        lua_pop(L, 1);
    }
    arr[n] = NULL;
    return arr;
}

/* The multipart option: an array of {name=, data=} or {name=, file=,
 * filename=, content_type=} tables. The parts array is a userdatum left on
 * the stack; every string it points at is anchored in a table beside it, so
 * a callback that rewrites the parts cannot free them. */
static void read_multipart(lua_State *L, const opt_src *s, jj_http_request *r)
{
    int t = get_opt(L, s, "multipart");
    if (t == LUA_TNIL)
        return;
    if (t != LUA_TTABLE)
        jj_opt_bad(L, "multipart", "array of part tables");
    int list = lua_gettop(L);
    lua_Integer n = luaL_len(L, list);
    if (n < 1 || n > 1000)
        luaL_error(L, "bad option 'multipart' (1..1000 parts expected, got %I)", n);
    lua_newtable(L);
    int anchor = lua_gettop(L);
    jj_http_part *parts = lua_newuserdatauv(L, (size_t)n * sizeof *parts, 0);
    memset(parts, 0, (size_t)n * sizeof *parts);
    static const char *const part_keys[] = {
        "name", "data", "file", "filename", "content_type", NULL,
    };
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, list, i) != LUA_TTABLE)
            luaL_error(L, "bad option 'multipart' (part %I must be a table)", i);
        int part = lua_gettop(L);
        jj_opt_check_names(L, part, part_keys, "multipart part");
        jj_http_part *p = &parts[i - 1];
        const char **fields[] = {&p->name, &p->data, &p->file, &p->filename, &p->content_type};
        for (int f = 0; f < 5; f++) {
            t = lua_getfield(L, part, part_keys[f]);
            if (t == LUA_TNIL) {
                lua_pop(L, 1);
                continue;
            }
            if (t != LUA_TSTRING)
                luaL_error(L, "bad option 'multipart' (part %I: '%s' must be a string)", i,
                           part_keys[f]);
            size_t len;
            const char *v = lua_tolstring(L, -1, &len);
            if (f != 1 && strlen(v) != len)
                luaL_error(L, "bad option 'multipart' (part %I: '%s' contains NUL)", i,
                           part_keys[f]);
            if (f == 1)
                p->data_len = len;
            *fields[f] = v;
            lua_rawseti(L, anchor, (lua_Integer)luaL_len(L, anchor) + 1);
        }
        lua_pop(L, 1);
        if (!p->name || !*p->name)
            luaL_error(L, "bad option 'multipart' (part %I needs a name)", i);
        if (!p->data == !p->file)
            luaL_error(L, "bad option 'multipart' (part %I needs exactly one of data or file)", i);
    }
    r->parts = parts;
    r->nparts = (size_t)n;
}

static void read_proxy(lua_State *L, const opt_src *s, jj_http_request *r)
{
    int t = get_opt(L, s, "proxy");
    if (t == LUA_TNIL)
        return;
    r->use_proxy = 1;
    if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1))
        return; /* proxy = false: no proxy at all, whatever the environment says */
    if (t != LUA_TTABLE)
        jj_opt_bad(L, "proxy", "table or false");
    int idx = lua_gettop(L);
    static const char *const proxy_keys[] = {
        "http", "https", "no_proxy", NULL,
    };
    jj_opt_check_names(L, idx, proxy_keys, "proxy");
    opt_src p = {idx, 0};
    r->proxy_http = opt_string(L, &p, "http");
    r->proxy_https = opt_string(L, &p, "https");
    r->no_proxy = opt_string(L, &p, "no_proxy");
}

/* Fills r from the options; raises on misuse. */
static void read_request(lua_State *L, const opt_src *s, jj_http_request *r, call_ctx *cx)
{
    jj_http_request_init(r);
    r->url = opt_string(L, s, "url");
    if (!r->url)
        luaL_error(L, "bad option 'url' (string expected, got nil)");
    r->method = opt_string(L, s, "method");
    if (r->method) {
        size_t n = strlen(r->method);
        int ok = n > 0 && n <= 20;
        for (size_t i = 0; ok && i < n; i++)
            ok = r->method[i] >= 'A' && r->method[i] <= 'Z';
        if (!ok)
            luaL_error(L, "bad option 'method' (upper-case HTTP method expected, got '%s')",
                       r->method);
    }
    r->headers = build_headers(L, s);
    if (get_opt(L, s, "body") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING)
            jj_opt_bad(L, "body", "string");
        r->body = lua_tolstring(L, -1, &r->body_len);
    }
    r->body_file = opt_string(L, s, "body_file");
    read_multipart(L, s, r);
    if (r->nparts && (r->body || r->body_file))
        luaL_error(L, "option 'multipart' excludes 'body' and 'body_file'");
    r->to_file = opt_string(L, s, "to_file");
    cx->on_data = opt_function(L, s, "on_data");
    cx->sleep = opt_function(L, s, "sleep");
    if (r->body && r->body_file)
        luaL_error(L, "options 'body' and 'body_file' are exclusive");
    if (r->to_file && cx->on_data)
        luaL_error(L, "options 'to_file' and 'on_data' are exclusive");
    if (r->method && strcmp(r->method, "HEAD") == 0 && (r->body || r->body_file || r->nparts))
        luaL_error(L, "a HEAD request cannot have a body");
    r->connect_timeout = opt_seconds(L, s, "connect_timeout", r->connect_timeout);
    r->idle_timeout = opt_seconds(L, s, "idle_timeout", r->idle_timeout);
    r->timeout = opt_seconds(L, s, "timeout", r->timeout);
    r->deadline = opt_seconds(L, s, "deadline", r->deadline);
    if (r->deadline <= 0) /* a request that may hang for ever is never wanted */
        luaL_error(L, "bad option 'deadline' (positive number of seconds expected)");
    r->retries = (int)opt_count(L, s, "retries", r->retries, 1000);
    r->retry_delay = opt_seconds(L, s, "retry_delay", r->retry_delay);
    read_proxy(L, s, r);
    r->insecure = opt_bool(L, s, "insecure", 0);
    r->ca_file = opt_string(L, s, "ca_file");
    r->client_cert = jj_optv_string(L, get_opt(L, s, "client_cert"), "client_cert",
                                    &r->client_cert_len);
    r->client_key = jj_optv_string(L, get_opt(L, s, "client_key"), "client_key",
                                   &r->client_key_len);
    if (r->client_key && !r->client_cert)
        luaL_error(L, "option 'client_key' needs 'client_cert'");
    r->max_size = (long long)opt_count(L, s, "max_size", -1, LUA_MAXINTEGER);
    r->follow_redirects = opt_bool(L, s, "follow_redirects", 1);
    const char *ua = opt_string(L, s, "user_agent");
    if (ua)
        r->user_agent = ua;
}

/* ---- callbacks (run inside libcurl: nothing here may raise) -------------- */

/* Runs protected: 1 = on_data, 2 = chunk pointer, 3 = chunk length. */
static int call_on_data(lua_State *L)
{
    const char *p = lua_touserdata(L, 2);
    size_t n = (size_t)lua_tointeger(L, 3);
    lua_settop(L, 1);
    lua_pushlstring(L, p, n);
    lua_call(L, 1, 1);
    return 1;
}

static int on_data_cb(void *ud, const char *data, size_t len)
{
    call_ctx *cx = ud;
    lua_State *L = cx->L;
    /* None of these pushes allocate; stack room was reserved beforehand. */
    lua_pushcfunction(L, call_on_data);
    lua_pushvalue(L, cx->on_data);
    lua_pushlightuserdata(L, (void *)data);
    lua_pushinteger(L, (lua_Integer)len);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
        lua_replace(L, cx->err_slot);
        cx->raised = 1;
        return 1;
    }
    int stop = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
    lua_pop(L, 1);
    return stop;
}

static int sleep_cb(void *ud, double seconds)
{
    call_ctx *cx = ud;
    lua_State *L = cx->L;
    lua_pushvalue(L, cx->sleep);
    lua_pushnumber(L, (lua_Number)seconds);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        lua_replace(L, cx->err_slot);
        cx->raised = 1;
        return 1;
    }
    return 0;
}

/* ---- responses ------------------------------------------------------------ */

static void push_headers(lua_State *L, const jj_http_response *r)
{
    lua_createtable(L, 0, (int)(r->nheaders < 64 ? r->nheaders : 64));
    for (size_t i = 0; i < r->nheaders; i++) {
        const jj_http_header *h = &r->headers[i];
        if (lua_getfield(L, -1, h->name) == LUA_TSTRING) /* repeated: join as HTTP does */
            lua_pushfstring(L, "%s, %s", lua_tostring(L, -1), h->value);
        else
            lua_pushstring(L, h->value);
        lua_setfield(L, -3, h->name);
        lua_pop(L, 1);
    }
}

static void push_response(lua_State *L, const jj_http_response *r, int with_body)
{
    lua_createtable(L, 0, 9);
    lua_pushinteger(L, r->status);
    lua_setfield(L, -2, "status");
    lua_pushstring(L, r->reason);
    lua_setfield(L, -2, "reason");
    push_headers(L, r);
    lua_setfield(L, -2, "headers");
    if (with_body) {
        lua_pushlstring(L, r->body ? r->body : "", r->body_len);
        lua_setfield(L, -2, "body");
    }
    lua_pushinteger(L, (lua_Integer)r->size);
    lua_setfield(L, -2, "size");
    if (r->url) {
        lua_pushstring(L, r->url);
        lua_setfield(L, -2, "url");
    }
    lua_pushinteger(L, r->attempts);
    lua_setfield(L, -2, "attempts");
    lua_pushnumber(L, r->elapsed);
    lua_setfield(L, -2, "elapsed");
    if (r->body_sha256[0]) {
        lua_pushstring(L, r->body_sha256);
        lua_setfield(L, -2, "body_sha256");
    }
}

/* ---- clients -------------------------------------------------------------- */

static lua_client *check_client(lua_State *L, int idx)
{
    lua_client *c = luaL_checkudata(L, idx, CLIENT_MT);
    if (!c->h)
        luaL_argerror(L, idx, "client is closed");
    if (c->busy)
        luaL_argerror(L, idx, "client is busy (called from its own callback)");
    return c;
}

static void client_release(lua_client *c)
{
    jj_http_response_free(&c->resp);
    jj_http_free(c->h);
    c->h = NULL;
}

static int client_cleanup(lua_State *L)
{
    lua_client *c = luaL_checkudata(L, 1, CLIENT_MT);
    if (c->busy)
        return luaL_error(L, "cannot close a client while its request is running");
    client_release(c);
    return 0;
}

static int client_close(lua_State *L)
{
    client_cleanup(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int client_tostring(lua_State *L)
{
    lua_client *c = luaL_checkudata(L, 1, CLIENT_MT);
    lua_pushstring(L, c->h ? "juju.http.Client" : "juju.http.Client (closed)");
    return 1;
}

/* A new, closed client whose uservalue is the defaults table at defs (0:
 * none). */
static lua_client *push_client(lua_State *L, int defs)
{
    lua_client *c = lua_newuserdatauv(L, sizeof *c, 1);
    c->h = NULL;
    c->busy = 0;
    jj_http_response_init(&c->resp);
    luaL_setmetatable(L, CLIENT_MT);
    if (defs) {
        lua_pushvalue(L, defs);
        lua_setiuservalue(L, -2, 1);
    }
    return c;
}

/* Runs one request on c and pushes its results. opts_idx: the options
 * table (0: none); url_idx/method: what get/head impose. A temporary
 * client is released before returning or raising. */
static int run_request(lua_State *L, lua_client *c, int client_idx, int opts_idx, int url_idx,
                       const char *method, int temporary)
{
    if (opts_idx)
        jj_opt_check_names(L, opts_idx, request_keys, "request");
    int defs = lua_getiuservalue(L, client_idx, 1) == LUA_TTABLE ? lua_gettop(L) : 0;
    /* get/head: a small table overlays url and method on the options. */
    if (url_idx) {
        lua_createtable(L, 0, 2);
        int overlay = lua_gettop(L);
        if (opts_idx) { /* copy, so the caller's table is not modified */
            lua_pushnil(L);
            while (lua_next(L, opts_idx)) {
                lua_pushvalue(L, -2);
                lua_insert(L, -2);
                lua_rawset(L, overlay);
            }
        }
        lua_pushvalue(L, url_idx);
        lua_setfield(L, overlay, "url");
        lua_pushstring(L, method);
        lua_setfield(L, overlay, "method");
        opts_idx = overlay;
    }
    opt_src src = {opts_idx, defs};
    call_ctx cx = {L, 0, 0, 0, 0};
    jj_http_request req;
    read_request(L, &src, &req, &cx);
    if (cx.on_data) {
        req.on_data = on_data_cb;
        req.on_data_ud = &cx;
    }
    if (cx.sleep) {
        req.sleep = sleep_cb;
        req.sleep_ud = &cx;
    }
    /* The watch stays on the stack during the call. */
    jj_sys_cancel cancel;
    get_opt(L, &src, "cancel");
    jj_to_cancel(L, -1, &cancel);
    req.cancel = &cancel;
    lua_pushnil(L);
    cx.err_slot = lua_gettop(L);
    if (!lua_checkstack(L, 16))
        return luaL_error(L, "stack overflow");
    jj_error err;
    jj_error_clear(&err);
    if (!c->h && jj_http_new(&c->h, &err))
        return jj_push_error(L, &err);

    c->busy = 1;
    int rc = jj_http_perform(c->h, &req, &c->resp, &err);
    c->busy = 0;

    if (cx.raised) {
        if (temporary)
            client_release(c);
        else
            jj_http_response_free(&c->resp);
        lua_pushvalue(L, cx.err_slot);
        return lua_error(L);
    }
    int n;
    if (rc) {
        n = jj_push_error(L, &err);
        if (c->resp.status >= 400) { /* the caller may want the error document */
            push_response(L, &c->resp, 1);
            n++;
        }
    } else {
        push_response(L, &c->resp, !req.to_file && !req.on_data);
        n = 1;
    }
    if (temporary)
        client_release(c);
    else
        jj_http_response_free(&c->resp);
    return n;
}

static int check_opts_arg(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    return idx;
}

/* client:request(opts) */
static int client_request(lua_State *L)
{
    lua_client *c = check_client(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    return run_request(L, c, 1, 2, 0, NULL, 0);
}

static int client_get_or_head(lua_State *L, const char *method)
{
    lua_client *c = check_client(L, 1);
    luaL_checkstring(L, 2);
    int opts = check_opts_arg(L, 3);
    return run_request(L, c, 1, opts, 2, method, 0);
}

static int client_get(lua_State *L)
{
    return client_get_or_head(L, "GET");
}

static int client_head(lua_State *L)
{
    return client_get_or_head(L, "HEAD");
}

/* client([defaults]) -> Client | nil, msg, code */
static int l_client(lua_State *L)
{
    int defs = check_opts_arg(L, 1);
    if (defs) {
        jj_opt_check_names(L, defs, client_keys, "client");
        /* Validate the defaults now rather than at the first request. */
        lua_newtable(L); /* stands in for a request's own options */
        lua_pushliteral(L, "http://validate.invalid/");
        lua_setfield(L, -2, "url");
        opt_src s = {lua_gettop(L), defs};
        call_ctx cx = {L, 0, 0, 0, 0};
        jj_http_request probe;
        read_request(L, &s, &probe, &cx);
        lua_settop(L, 1);
    }
    lua_client *c = push_client(L, defs);
    jj_error err;
    if (jj_http_new(&c->h, &err))
        return jj_push_error(L, &err);
    return 1;
}

/* request(opts) -> response | nil, msg, code [, response] */
static int l_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_client *c = push_client(L, 0);
    return run_request(L, c, lua_gettop(L), 1, 0, NULL, 1);
}

static int get_or_head(lua_State *L, const char *method)
{
    luaL_checkstring(L, 1);
    int opts = check_opts_arg(L, 2);
    lua_client *c = push_client(L, 0);
    return run_request(L, c, lua_gettop(L), opts, 1, method, 1);
}

static int l_get(lua_State *L)
{
    return get_or_head(L, "GET");
}

static int l_head(lua_State *L)
{
    return get_or_head(L, "HEAD");
}

/* ---- URLs ----------------------------------------------------------------- */

static int l_url_escape(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_argcheck(L, len < ((size_t)-1) / 3 - 1, 1, "string too long");
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, 3 * len + 1);
    luaL_pushresultsize(&b, jj_http_url_escape(s, len, out));
    return 1;
}

static int l_url_unescape(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, len + 1);
    luaL_pushresultsize(&b, jj_http_url_unescape(s, len, out));
    return 1;
}

static void set_opt_field(lua_State *L, const char *name, const char *value)
{
    if (!value)
        return;
    lua_pushstring(L, value);
    lua_setfield(L, -2, name);
}

/* parse_url(url) -> {scheme, host, port, path, query, fragment, user,
 * password} | nil, msg, "EINVAL" */
static int l_parse_url(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    /* The parts sit in a collectable box so that a memory error while
     * building the table cannot leak them (the password is wiped either way). */
    jj_http_url *u = lua_newuserdatauv(L, sizeof *u, 0);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, URL_PARTS_MT);
    jj_error err;
    if (jj_http_parse_url(url, u, &err))
        return jj_push_error(L, &err);
    lua_createtable(L, 0, 8);
    set_opt_field(L, "scheme", u->scheme);
    set_opt_field(L, "host", u->host);
    set_opt_field(L, "path", u->path);
    set_opt_field(L, "query", u->query);
    set_opt_field(L, "fragment", u->fragment);
    set_opt_field(L, "user", u->user);
    set_opt_field(L, "password", u->password);
    if (u->port) {
        lua_pushinteger(L, u->port);
        lua_setfield(L, -2, "port");
    }
    jj_http_url_free(u);
    return 1;
}

static int url_parts_gc(lua_State *L)
{
    jj_http_url_free(luaL_checkudata(L, 1, URL_PARTS_MT));
    return 0;
}

/* safe_url(url) -> the URL fit for messages (no userinfo, no signatures) */
static int l_safe_url(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    char out[2048];
    jj_http_safe_url(url, out, sizeof out);
    lua_pushstring(L, out);
    return 1;
}

static const luaL_Reg client_methods[] = {
    {"request", client_request},
    {"get", client_get},
    {"head", client_head},
    {"close", client_close},
    {NULL, NULL},
};

static const luaL_Reg client_meta[] = {
    {"__close", client_cleanup},
    {"__gc", client_cleanup},
    {"__tostring", client_tostring},
    {NULL, NULL},
};

static const luaL_Reg http_functions[] = {
    {"request", l_request},
    {"get", l_get},
    {"head", l_head},
    {"client", l_client},
    {"url_escape", l_url_escape},
    {"url_unescape", l_url_unescape},
    {"parse_url", l_parse_url},
    {"safe_url", l_safe_url},
    {NULL, NULL},
};

int luaopen_juju_http(lua_State *L)
{
    jj_error err;
    if (jj_http_global_init(&err))
        return luaL_error(L, "%s", err.message);
    jj_new_class(L, CLIENT_MT, client_methods, client_meta);
    static const luaL_Reg url_parts_meta[] = {{"__gc", url_parts_gc}, {NULL, NULL}};
    jj_new_class(L, URL_PARTS_MT, NULL, url_parts_meta);
    luaL_newlib(L, http_functions);
    return 1;
}
