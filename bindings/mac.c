/* mac.c (binding): juju.mac, digests and HMACs (core/mac.h) for the signers.
 *
 *   mac.digest(alg, data) -> raw bytes
 *   mac.hmac(alg, key, data) -> raw bytes
 *   mac.file(alg, path [, key]) -> raw bytes, size | nil, msg, code
 *   mac.new(alg [, key]) -> juju.mac.Mac with :update(s) -> self,
 *     :digest() -> raw, :hexdigest() -> hex, :close()
 *
 * alg is "md5", "sha1", "sha256", "sha384" or "sha512"; an unknown name is
 * misuse and raises. Results are raw: crypto.hex / crypto.base64 encode.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "mac.h"

#define MAC_MT "juju.mac.Mac"

typedef struct lua_mac {
    jj_mac *m;
} lua_mac;

static jj_mac_hash check_hash(lua_State *L, int idx)
{
    jj_mac_hash h;
    jj_error err;
    if (jj_mac_hash_from_name(luaL_checkstring(L, idx), &h, &err) != 0)
        luaL_argerror(L, idx, err.message);
    return h;
}

static int raise_error(lua_State *L, const jj_error *err)
{
    return luaL_error(L, "%s", err->message);
}

static int l_digest(lua_State *L)
{
    jj_mac_hash h = check_hash(L, 1);
    size_t n;
    const char *data = luaL_checklstring(L, 2, &n);
    unsigned char out[JJ_MAC_MAX_SIZE];
    size_t len;
    jj_error err;
    if (jj_mac_oneshot(h, NULL, 0, data, n, out, &len, &err) != 0)
        return raise_error(L, &err); /* only OpenSSL itself failing */
    lua_pushlstring(L, (const char *)out, len);
    return 1;
}

static int l_hmac(lua_State *L)
{
    jj_mac_hash h = check_hash(L, 1);
    size_t kn, n;
    const char *key = luaL_checklstring(L, 2, &kn);
    const char *data = luaL_checklstring(L, 3, &n);
    unsigned char out[JJ_MAC_MAX_SIZE];
    size_t len;
    jj_error err;
    if (jj_mac_oneshot(h, key, kn, data, n, out, &len, &err) != 0)
        return raise_error(L, &err);
    lua_pushlstring(L, (const char *)out, len);
    return 1;
}

static int l_file(lua_State *L)
{
    jj_mac_hash h = check_hash(L, 1);
    const char *path = luaL_checkstring(L, 2);
    size_t kn = 0;
    const char *key = luaL_optlstring(L, 3, NULL, &kn);
    unsigned char out[JJ_MAC_MAX_SIZE];
    size_t len;
    uint64_t size = 0;
    jj_error err;
    if (jj_mac_file(h, key, kn, path, out, &len, &size, &err) != 0)
        return jj_push_error(L, &err);
    lua_pushlstring(L, (const char *)out, len);
    lua_pushinteger(L, (lua_Integer)size);
    return 2;
}

static lua_mac *check_mac(lua_State *L)
{
    lua_mac *m = luaL_checkudata(L, 1, MAC_MT);
    if (!m->m)
        luaL_error(L, "attempt to use a closed juju.mac.Mac");
    return m;
}

static int l_new(lua_State *L)
{
    jj_mac_hash h = check_hash(L, 1);
    size_t kn = 0;
    const char *key = luaL_optlstring(L, 2, NULL, &kn);
    lua_mac *m = lua_newuserdatauv(L, sizeof *m, 0);
    m->m = NULL;
    luaL_setmetatable(L, MAC_MT);
    jj_error err;
    if (jj_mac_new(h, key, kn, &m->m, &err) != 0)
        return raise_error(L, &err);
    return 1;
}

static int m_update(lua_State *L)
{
    lua_mac *m = check_mac(L);
    size_t n;
    const char *data = luaL_checklstring(L, 2, &n);
    jj_error err;
    if (jj_mac_update(m->m, data, n, &err) != 0)
        return raise_error(L, &err);
    lua_settop(L, 1);
    return 1;
}

static int finish(lua_State *L, int hex)
{
    lua_mac *m = check_mac(L);
    unsigned char out[JJ_MAC_MAX_SIZE];
    size_t len;
    jj_error err;
    if (jj_mac_final(m->m, out, &len, &err) != 0)
        return raise_error(L, &err);
    if (!hex) {
        lua_pushlstring(L, (const char *)out, len);
        return 1;
    }
    char h[2 * JJ_MAC_MAX_SIZE];
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        h[2 * i] = digits[out[i] >> 4];
        h[2 * i + 1] = digits[out[i] & 15];
    }
    lua_pushlstring(L, h, 2 * len);
    return 1;
}

static int m_digest(lua_State *L)
{
    return finish(L, 0);
}

static int m_hexdigest(lua_State *L)
{
    return finish(L, 1);
}

static int m_close(lua_State *L)
{
    lua_mac *m = luaL_checkudata(L, 1, MAC_MT);
    jj_mac_free(m->m);
    m->m = NULL;
    return 0;
}

int luaopen_juju_mac(lua_State *L);
int luaopen_juju_mac(lua_State *L)
{
    static const luaL_Reg methods[] = {{"update", m_update}, {"digest", m_digest},
                                       {"hexdigest", m_hexdigest}, {"close", m_close},
                                       {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", m_close}, {"__close", m_close}, {NULL, NULL}};
    jj_new_class(L, MAC_MT, methods, meta);
    static const luaL_Reg funcs[] = {{"digest", l_digest}, {"hmac", l_hmac}, {"file", l_file},
                                     {"new", l_new}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
