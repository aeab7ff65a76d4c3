/* sign.c (binding): juju.sign, the user's private keys for request signing
 * (core/sign.h).
 *
 *   sign.load_key(text [, source]) -> juju.sign.Key | nil, msg, code
 *   sign.load_key_file(path) -> juju.sign.Key | nil, msg, code
 *   Key:sign(data [, opts]) -> raw signature     opts: hash, ecdsa ("der"|"raw")
 *   Key:verify(data, sig [, opts]) -> boolean
 *   Key:info() -> {type, ssh_type, curve, bits}
 *   Key:public_blob(), Key:public_line([comment]), Key:public_pem()
 *   Key:fingerprint_md5(), Key:fingerprint_sha256(), Key:close()
 *
 * Key text passed from Lua stays in Lua's string (not wiped); load_key_file
 * reads the file in C and wipes its buffer, so prefer it for key files.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "sign.h"

#define KEY_MT "juju.sign.Key"

typedef struct lua_key {
    jj_sign_key *k;
} lua_key;

static lua_key *check_key(lua_State *L)
{
    lua_key *k = luaL_checkudata(L, 1, KEY_MT);
    if (!k->k)
        luaL_error(L, "attempt to use a closed juju.sign.Key");
    return k;
}

static lua_key *push_key(lua_State *L)
{
    lua_key *k = lua_newuserdatauv(L, sizeof *k, 0);
    k->k = NULL;
    luaL_setmetatable(L, KEY_MT);
    return k;
}

static int l_load_key(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *source = luaL_optstring(L, 2, NULL);
    lua_key *k = push_key(L);
    jj_error err;
    if (jj_sign_key_load(text, len, source, &k->k, &err) != 0)
        return jj_push_error(L, &err);
    return 1;
}

static int l_load_key_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_key *k = push_key(L);
    jj_error err;
    if (jj_sign_key_load_file(path, &k->k, &err) != 0)
        return jj_push_error(L, &err);
    return 1;
}

/* opts at idx (0 = none): hash and ecdsa form. */
static void sig_opts(lua_State *L, int idx, const char **hash, int *form)
{
    *hash = NULL;
    *form = JJ_SIGN_ECDSA_DER;
    if (!idx || lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    if (lua_getfield(L, idx, "hash") != LUA_TNIL) {
        if (!lua_isstring(L, -1))
            luaL_error(L, "bad option 'hash' (string expected)");
        *hash = lua_tostring(L, -1); /* kept alive by the options table */
    }
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "ecdsa") != LUA_TNIL) {
        const char *f = lua_tostring(L, -1);
        if (f && strcmp(f, "raw") == 0)
            *form = JJ_SIGN_ECDSA_RAW;
        else if (!f || strcmp(f, "der") != 0)
            luaL_error(L, "bad option 'ecdsa' (\"der\" or \"raw\" expected)");
    }
    lua_pop(L, 1);
}

static void free_buf(void *p, size_t n)
{
    (void)n;
    free(p);
}

static int k_sign(lua_State *L)
{
    lua_key *k = check_key(L);
    size_t n;
    const char *data = luaL_checklstring(L, 2, &n);
    const char *hash;
    int form;
    sig_opts(L, 3, &hash, &form);
    jj_owned *box = jj_push_owned(L, free_buf);
    unsigned char *sig = NULL;
    size_t len = 0;
    jj_error err;
    if (jj_sign(k->k, hash, form, data, n, &sig, &len, &err) != 0) {
        if (err.code == JJ_EINVAL)
            return luaL_error(L, "%s", err.message); /* an unknown hash is misuse */
        return jj_push_error(L, &err);
    }
    box->p = sig;
    lua_pushlstring(L, (const char *)sig, len);
    jj_owned_release(box);
    return 1;
}

static int k_verify(lua_State *L)
{
    lua_key *k = check_key(L);
    size_t n, slen;
    const char *data = luaL_checklstring(L, 2, &n);
    const char *sig = luaL_checklstring(L, 3, &slen);
    const char *hash;
    int form;
    sig_opts(L, 4, &hash, &form);
    jj_error err;
    int rc = jj_sign_verify(k->k, hash, form, data, n, (const unsigned char *)sig, slen, &err);
    if (rc < 0)
        return luaL_error(L, "%s", err.message);
    lua_pushboolean(L, rc == 1);
    return 1;
}

static int k_info(lua_State *L)
{
    lua_key *k = check_key(L);
    jj_sign_key_info info;
    jj_sign_key_info_get(k->k, &info);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, info.type_name);
    lua_setfield(L, -2, "type");
    lua_pushstring(L, info.ssh_type);
    lua_setfield(L, -2, "ssh_type");
    if (info.curve) {
        lua_pushstring(L, info.curve);
        lua_setfield(L, -2, "curve");
    }
    lua_pushinteger(L, info.bits);
    lua_setfield(L, -2, "bits");
    return 1;
}

static int push_blob(lua_State *L, lua_key *k, int as_line)
{
    jj_owned *box = jj_push_owned(L, free_buf);
    unsigned char *blob = NULL;
    size_t len = 0;
    jj_error err;
    if (jj_sign_public_blob(k->k, &blob, &len, &err) != 0)
        return jj_push_error(L, &err);
    box->p = blob;
    if (!as_line) {
        lua_pushlstring(L, (const char *)blob, len);
        jj_owned_release(box);
        return 1;
    }
    jj_sign_key_info info;
    jj_sign_key_info_get(k->k, &info);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, info.ssh_type);
    luaL_addchar(&b, ' ');
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)blob[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)blob[i + 1] << 8;
        if (i + 2 < len)
            v |= blob[i + 2];
        luaL_addchar(&b, tbl[(v >> 18) & 63]);
        luaL_addchar(&b, tbl[(v >> 12) & 63]);
        luaL_addchar(&b, i + 1 < len ? tbl[(v >> 6) & 63] : '=');
        luaL_addchar(&b, i + 2 < len ? tbl[v & 63] : '=');
    }
    if (lua_isstring(L, 2)) {
        luaL_addchar(&b, ' ');
        luaL_addstring(&b, lua_tostring(L, 2));
    }
    luaL_pushresult(&b);
    jj_owned_release(box);
    return 1;
}

static int k_public_blob(lua_State *L)
{
    return push_blob(L, check_key(L), 0);
}

static int k_public_line(lua_State *L)
{
    lua_key *k = check_key(L);
    luaL_optstring(L, 2, NULL);
    return push_blob(L, k, 1);
}

static int k_public_pem(lua_State *L)
{
    lua_key *k = check_key(L);
    jj_owned *box = jj_push_owned(L, free_buf);
    char *pem = NULL;
    jj_error err;
    if (jj_sign_public_pem(k->k, &pem, &err) != 0)
        return jj_push_error(L, &err);
    box->p = pem;
    lua_pushstring(L, pem);
    jj_owned_release(box);
    return 1;
}

static int k_fingerprint_md5(lua_State *L)
{
    lua_key *k = check_key(L);
    char fp[JJ_SIGN_FP_MD5_SIZE];
    jj_error err;
    if (jj_sign_fingerprint_md5(k->k, fp, &err) != 0)
        return jj_push_error(L, &err);
    lua_pushstring(L, fp);
    return 1;
}

static int k_fingerprint_sha256(lua_State *L)
{
    lua_key *k = check_key(L);
    char fp[JJ_SIGN_FP_SHA256_SIZE];
    jj_error err;
    if (jj_sign_fingerprint_sha256(k->k, fp, &err) != 0)
        return jj_push_error(L, &err);
    lua_pushstring(L, fp);
    return 1;
}

static int k_close(lua_State *L)
{
    lua_key *k = luaL_checkudata(L, 1, KEY_MT);
    jj_sign_key_free(k->k);
    k->k = NULL;
    return 0;
}

static int k_tostring(lua_State *L)
{
    lua_key *k = luaL_checkudata(L, 1, KEY_MT);
    if (!k->k) {
        lua_pushstring(L, "juju.sign.Key (closed)");
        return 1;
    }
    jj_sign_key_info info;
    jj_sign_key_info_get(k->k, &info);
    lua_pushfstring(L, "juju.sign.Key (%s %d)", info.ssh_type, info.bits);
    return 1;
}

int luaopen_juju_sign(lua_State *L);
int luaopen_juju_sign(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"sign", k_sign},
        {"verify", k_verify},
        {"info", k_info},
        {"public_blob", k_public_blob},
        {"public_line", k_public_line},
        {"public_pem", k_public_pem},
        {"fingerprint_md5", k_fingerprint_md5},
        {"fingerprint_sha256", k_fingerprint_sha256},
        {"close", k_close},
        {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", k_close}, {"__close", k_close}, {"__tostring", k_tostring}, {NULL, NULL}};
    jj_new_class(L, KEY_MT, methods, meta);
    static const luaL_Reg funcs[] = {
        {"load_key", l_load_key}, {"load_key_file", l_load_key_file}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
