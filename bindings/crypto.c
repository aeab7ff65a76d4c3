/* crypto.c: the `juju.crypto` Lua module, a thin binding of core/crypto.
 * Binds core/crypto.h, core/encoding.h, core/digest.h, core/x509.h,
 * Binds core/sshkey.h: the crypto modules are one Lua module.
 *
 * Misuse (wrong argument types, closed hasher) raises; operational failure
 * (bad encodings, unreadable files, unusable certificates or keys) returns
 * nil, message, code. Intermediate buffers live in Lua-owned userdata so an
 * error while pushing a result cannot leak them; those that held secrets
 * are wiped once their content has been copied into a Lua string.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common.h"
#include "crypto.h"

#define HASHER_MT "juju.crypto.Hasher"
#define SCRATCH_MT "juju.crypto.Scratch"

/* ---- helpers ---- */

/* A block of n bytes owned by Lua, left on the stack. */
static inline unsigned char *scratch_block(lua_State *L, size_t n)
{
    return lua_newuserdatauv(L, n ? n : 1, 0);
}

/* Pushes the n bytes of a scratch block as a string, then wipes the block. */
static inline void push_and_wipe(lua_State *L, unsigned char *block, size_t n)
{
    lua_pushlstring(L, (const char *)block, n);
    OPENSSL_cleanse(block, n);
}

/* C-allocated results of one call, held by a userdata with __gc so that a
 * memory error while pushing them frees them all the same. */
typedef struct scratch {
    char *text;   /* freed with free() */
    char *secret; /* wiped and freed */
    jj_cert_info info;
    jj_ssh_public ssh;
} scratch;

static void scratch_release(scratch *s)
{
    free(s->text);
    jj_secret_free(s->secret);
    jj_cert_info_free(&s->info);
    jj_ssh_public_free(&s->ssh);
    memset(s, 0, sizeof *s);
}

static int scratch_gc(lua_State *L)
{
    scratch_release(luaL_checkudata(L, 1, SCRATCH_MT));
    return 0;
}

static scratch *new_scratch(lua_State *L)
{
    scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    luaL_setmetatable(L, SCRATCH_MT);
    return s;
}

/* A string argument that the core reads as a C string: embedded NULs
 * would silently truncate it, so they are misuse. */
static const char *check_cstring(lua_State *L, int idx)
{
    size_t len;
    const char *s = luaL_checklstring(L, idx, &len);
    if (strlen(s) != len)
        luaL_argerror(L, idx, "string contains a NUL byte");
    return s;
}

static void push_hex(lua_State *L, const unsigned char *md, size_t n)
{
    char hex[2 * JJ_DIGEST_MAX + 1];
    jj_hex_encode(md, n, hex);
    lua_pushlstring(L, hex, 2 * n);
}

/* ---- random, encodings ---- */

static int l_random_bytes(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= INT_MAX, 1, "byte count out of range");
    unsigned char *buf = scratch_block(L, (size_t)n);
    jj_error err;
    if (jj_random_bytes(buf, (size_t)n, &err))
        return jj_push_error(L, &err);
    push_and_wipe(L, buf, (size_t)n);
    return 1;
}

static int l_hex(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    if (n > (SIZE_MAX - 1) / 2)
        return luaL_error(L, "string too large");
    char *out = (char *)scratch_block(L, 2 * n + 1);
    jj_hex_encode(s, n, out);
    lua_pushlstring(L, out, 2 * n);
    return 1;
}

static int l_unhex(lua_State *L)
{
    size_t n, out_len = 0;
    const char *s = luaL_checklstring(L, 1, &n);
    unsigned char *out = scratch_block(L, n / 2);
    jj_error err;
    if (jj_hex_decode(s, n, out, &out_len, &err))
        return jj_push_error(L, &err);
    push_and_wipe(L, out, out_len);
    return 1;
}

static int l_base64(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    if (n > SIZE_MAX / 2)
        return luaL_error(L, "string too large");
    size_t size = jj_base64_encoded_size(n);
    char *out = (char *)scratch_block(L, size);
    jj_base64_encode(s, n, out);
    lua_pushlstring(L, out, size - 1);
    return 1;
}

static int l_unbase64(lua_State *L)
{
    size_t n, out_len = 0;
    const char *s = luaL_checklstring(L, 1, &n);
    size_t cap = jj_base64_decoded_max(n);
    unsigned char *out = scratch_block(L, cap);
    jj_error err;
    if (jj_base64_decode(s, n, out, &out_len, &err))
        return jj_push_error(L, &err);
    push_and_wipe(L, out, out_len);
    return 1;
}

/* ---- digests ---- */

static int digest_hex(lua_State *L, jj_digest_alg alg)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    unsigned char md[JJ_DIGEST_MAX];
    jj_error err;
    if (jj_digest(alg, s, n, md, &err))
        return jj_push_error(L, &err);
    push_hex(L, md, jj_digest_size(alg));
    return 1;
}

static int l_sha256(lua_State *L)
{
    return digest_hex(L, JJ_DIGEST_SHA256);
}

static int l_sha512(lua_State *L)
{
    return digest_hex(L, JJ_DIGEST_SHA512);
}

static int l_sha256_file(lua_State *L)
{
    const char *path = check_cstring(L, 1);
    unsigned char md[32];
    uint64_t size = 0;
    jj_error err;
    if (jj_sha256_file(path, md, &size, &err))
        return jj_push_error(L, &err);
    push_hex(L, md, sizeof md);
    lua_pushinteger(L, (lua_Integer)size);
    return 2;
}

typedef struct hasher_ud {
    jj_hasher *h; /* NULL once closed */
} hasher_ud;

static jj_hasher *check_hasher(lua_State *L, int idx)
{
    hasher_ud *u = luaL_checkudata(L, idx, HASHER_MT);
    if (!u->h)
        luaL_argerror(L, idx, "hasher is closed");
    return u->h;
}

static int hasher_close(lua_State *L)
{
    hasher_ud *u = luaL_checkudata(L, 1, HASHER_MT);
    jj_hasher_free(u->h);
    u->h = NULL;
    return 0;
}

static int l_hasher(lua_State *L)
{
    static const char *const algs[] = {"sha256", "sha512", NULL};
    int which = luaL_checkoption(L, 1, NULL, algs);
    hasher_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->h = NULL;
    luaL_setmetatable(L, HASHER_MT);
    jj_error err;
    if (jj_hasher_new(which == 0 ? JJ_DIGEST_SHA256 : JJ_DIGEST_SHA512, &u->h, &err))
        return jj_push_error(L, &err);
    return 1;
}

static int hasher_update(lua_State *L)
{
    jj_hasher *h = check_hasher(L, 1);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    jj_error err;
    if (jj_hasher_update(h, s, n, &err))
        return jj_push_error(L, &err);
    lua_settop(L, 1);
    return 1;
}

static int hasher_digest(lua_State *L)
{
    jj_hasher *h = check_hasher(L, 1);
    unsigned char md[JJ_DIGEST_MAX];
    jj_error err;
    if (jj_hasher_final(h, md, &err))
        return jj_push_error(L, &err);
    lua_pushlstring(L, (const char *)md, jj_hasher_size(h));
    return 1;
}

static int hasher_hexdigest(lua_State *L)
{
    jj_hasher *h = check_hasher(L, 1);
    unsigned char md[JJ_DIGEST_MAX];
    jj_error err;
    if (jj_hasher_final(h, md, &err))
        return jj_push_error(L, &err);
    push_hex(L, md, jj_hasher_size(h));
    return 1;
}

static int hasher_tostring(lua_State *L)
{
    hasher_ud *u = luaL_checkudata(L, 1, HASHER_MT);
    lua_pushfstring(L, HASHER_MT " (%s)", u->h ? "open" : "closed");
    return 1;
}

/* ---- passwords, identifiers ---- */

static int l_pbkdf2_sha512(lua_State *L)
{
    size_t plen, slen;
    const char *password = luaL_checklstring(L, 1, &plen);
    const char *salt = luaL_checklstring(L, 2, &slen);
    lua_Integer iterations = luaL_checkinteger(L, 3);
    lua_Integer keylen = luaL_checkinteger(L, 4);
    luaL_argcheck(L, iterations >= 1 && iterations <= INT_MAX, 3, "iterations out of range");
    luaL_argcheck(L, keylen >= 1 && keylen <= 1024 * 1024, 4, "key length out of range");
    unsigned char *out = scratch_block(L, (size_t)keylen);
    jj_error err;
    if (jj_pbkdf2_sha512(password, plen, salt, slen, (unsigned)iterations, out, (size_t)keylen,
                         &err))
        return jj_push_error(L, &err);
    push_and_wipe(L, out, (size_t)keylen);
    return 1;
}

static int l_user_password_hash(lua_State *L)
{
    size_t plen, slen;
    const char *password = luaL_checklstring(L, 1, &plen);
    const char *salt = luaL_checklstring(L, 2, &slen);
    char out[JJ_PASSWORD_SIZE];
    jj_error err;
    if (jj_user_password_hash(password, plen, salt, slen, out, &err))
        return jj_push_error(L, &err);
    lua_pushstring(L, out);
    OPENSSL_cleanse(out, sizeof out);
    return 1;
}

static int l_agent_password_hash(lua_State *L)
{
    size_t plen;
    const char *password = luaL_checklstring(L, 1, &plen);
    char out[JJ_PASSWORD_SIZE];
    jj_error err;
    if (jj_agent_password_hash(password, plen, out, &err))
        return jj_push_error(L, &err);
    lua_pushstring(L, out);
    OPENSSL_cleanse(out, sizeof out);
    return 1;
}

static int l_random_password(lua_State *L)
{
    char out[JJ_PASSWORD_SIZE];
    jj_error err;
    if (jj_random_password(out, &err))
        return jj_push_error(L, &err);
    lua_pushstring(L, out);
    OPENSSL_cleanse(out, sizeof out);
    return 1;
}

static int l_admin_secret(lua_State *L)
{
    char out[JJ_ADMIN_SECRET_SIZE];
    jj_error err;
    if (jj_admin_secret(out, &err))
        return jj_push_error(L, &err);
    lua_pushstring(L, out);
    OPENSSL_cleanse(out, sizeof out);
    return 1;
}

static int l_uuid4(lua_State *L)
{
    char out[JJ_UUID_SIZE];
    jj_error err;
    if (jj_uuid4(out, &err))
        return jj_push_error(L, &err);
    lua_pushstring(L, out);
    return 1;
}

/* A predicate: anything that is not a string is simply not a UUID. */
static int l_is_uuid(lua_State *L)
{
    size_t n;
    luaL_checkany(L, 1);
    const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &n) : NULL;
    lua_pushboolean(L, s && jj_is_uuid(s, n));
    return 1;
}

static int l_constant_time_equal(lua_State *L)
{
    size_t an, bn;
    const char *a = luaL_checklstring(L, 1, &an);
    const char *b = luaL_checklstring(L, 2, &bn);
    lua_pushboolean(L, jj_constant_time_equal(a, an, b, bn));
    return 1;
}

/* ---- X.509 ---- */

/* Reads opts (nil or a table at idx) into *opts. Wrong Lua types raise; a
 * key name the core does not know is an operational EINVAL, since it comes
 * from configuration. Hostname strings stay reachable through the opts
 * table on the stack; the pointer array is a userdata pushed here. */
static int read_cert_opts(lua_State *L, int idx, jj_cert_opts *opts, jj_error *err)
{
    jj_cert_opts_init(opts);
    if (lua_isnoneornil(L, idx)) {
        lua_pushnil(L); /* keep the stack shape the same in both cases */
        return 0;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    int rc = 0;
    if (lua_getfield(L, idx, "key") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "bad option 'key' (string expected, got %s)", luaL_typename(L, -1));
        rc = jj_key_type_from_name(lua_tostring(L, -1), &opts->key, err);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "years") != LUA_TNIL) {
        int isnum;
        lua_Integer y = lua_tointegerx(L, -1, &isnum);
        if (!isnum)
            luaL_error(L, "bad option 'years' (integer expected, got %s)", luaL_typename(L, -1));
        opts->years = y < 0 ? -1 : y > INT_MAX ? INT_MAX : (int)y;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "now") != LUA_TNIL) {
        int isnum;
        lua_Integer now = lua_tointegerx(L, -1, &isnum);
        if (!isnum)
            luaL_error(L, "bad option 'now' (integer expected, got %s)", luaL_typename(L, -1));
        opts->now_set = true;
        opts->now = (int64_t)now;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "hostnames") == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushnil(L);
        return rc;
    }
    if (lua_type(L, -1) != LUA_TTABLE)
        luaL_error(L, "bad option 'hostnames' (table expected, got %s)", luaL_typename(L, -1));
    lua_Integer n = luaL_len(L, -1);
    if (n < 0 || n > 4096)
        luaL_error(L, "bad option 'hostnames' (too many entries)");
    const char **names = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *names, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, -2, i);
        size_t len;
        const char *h = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (!h || strlen(h) != len)
            luaL_error(L, "bad option 'hostnames' (entry %d is not a plain string)", (int)i);
        names[i - 1] = h; /* reachable through the opts table */
        lua_pop(L, 1);
    }
    lua_remove(L, -2);
    opts->hostnames = names;
    opts->n_hostnames = (size_t)n;
    return rc;
}

static int push_cert_and_key(lua_State *L, scratch *s)
{
    lua_pushstring(L, s->text);
    lua_pushstring(L, s->secret);
    scratch_release(s);
    return 2;
}

static int l_new_ca(lua_State *L)
{
    const char *name = check_cstring(L, 1);
    jj_cert_opts opts;
    jj_error err;
    if (read_cert_opts(L, 2, &opts, &err))
        return jj_push_error(L, &err);
    scratch *s = new_scratch(L);
    if (jj_new_ca(name, &opts, &s->text, &s->secret, &err))
        return jj_push_error(L, &err);
    return push_cert_and_key(L, s);
}

static int l_new_server_cert(lua_State *L)
{
    size_t cert_len, key_len;
    const char *cert = luaL_checklstring(L, 1, &cert_len);
    const char *key = luaL_checklstring(L, 2, &key_len);
    jj_cert_opts opts;
    jj_error err;
    if (read_cert_opts(L, 3, &opts, &err))
        return jj_push_error(L, &err);
    scratch *s = new_scratch(L);
    if (jj_new_server_cert(cert, cert_len, key, key_len, &opts, &s->text, &s->secret, &err))
        return jj_push_error(L, &err);
    return push_cert_and_key(L, s);
}

static int l_check_ca_pair(lua_State *L)
{
    size_t cert_len, key_len;
    const char *cert = luaL_checklstring(L, 1, &cert_len);
    const char *key = luaL_checklstring(L, 2, &key_len);
    jj_error err;
    if (jj_check_ca_pair(cert, cert_len, key, key_len, &err))
        return jj_push_error(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_cert_info(lua_State *L)
{
    size_t len;
    const char *pem = luaL_checklstring(L, 1, &len);
    scratch *s = new_scratch(L);
    jj_error err;
    if (jj_cert_info_parse(pem, len, &s->info, &err))
        return jj_push_error(L, &err);
    const jj_cert_info *info = &s->info;
    lua_createtable(L, 0, 10);
    lua_pushstring(L, info->subject);
    lua_setfield(L, -2, "subject");
    lua_pushstring(L, info->issuer);
    lua_setfield(L, -2, "issuer");
    lua_pushstring(L, info->serial_hex);
    lua_setfield(L, -2, "serial");
    lua_pushinteger(L, (lua_Integer)info->not_before);
    lua_setfield(L, -2, "not_before");
    lua_pushinteger(L, (lua_Integer)info->not_after);
    lua_setfield(L, -2, "not_after");
    lua_pushboolean(L, info->is_ca);
    lua_setfield(L, -2, "is_ca");
    lua_pushstring(L, info->key_type);
    lua_setfield(L, -2, "key_type");
    lua_pushinteger(L, info->key_bits);
    lua_setfield(L, -2, "key_bits");
    lua_createtable(L, (int)info->n_sans, 0);
    for (size_t i = 0; i < info->n_sans; i++) {
        lua_pushstring(L, info->sans[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "sans");
    lua_pushstring(L, info->fingerprint_sha256);
    lua_setfield(L, -2, "fingerprint_sha256");
    scratch_release(s);
    return 1;
}

/* ---- SSH ---- */

static int l_ssh_keygen_ed25519(lua_State *L)
{
    const char *comment = lua_isnoneornil(L, 1) ? "" : check_cstring(L, 1);
    scratch *s = new_scratch(L);
    jj_error err;
    if (jj_ssh_keygen_ed25519(comment, &s->secret, &s->text, &err))
        return jj_push_error(L, &err);
    lua_pushstring(L, s->secret);
    lua_pushstring(L, s->text);
    scratch_release(s);
    return 2;
}

static int l_ssh_public_from_private(lua_State *L)
{
    size_t len;
    const char *pem = luaL_checklstring(L, 1, &len);
    scratch *s = new_scratch(L);
    jj_error err;
    if (jj_ssh_public_from_private(pem, len, &s->text, &err))
        return jj_push_error(L, &err);
    lua_pushstring(L, s->text);
    scratch_release(s);
    return 1;
}

static int l_ssh_fingerprint(lua_State *L)
{
    size_t len;
    const char *line = luaL_checklstring(L, 1, &len);
    char out[JJ_SSH_FP_SHA256_SIZE];
    jj_error err;
    if (jj_ssh_fingerprint_sha256(line, len, out, &err))
        return jj_push_error(L, &err);
    lua_pushstring(L, out);
    return 1;
}

static int l_ssh_fingerprint_md5(lua_State *L)
{
    size_t len;
    const char *line = luaL_checklstring(L, 1, &len);
    char out[JJ_SSH_FP_MD5_SIZE];
    jj_error err;
    if (jj_ssh_fingerprint_md5(line, len, out, &err))
        return jj_push_error(L, &err);
    lua_pushstring(L, out);
    return 1;
}

static int l_ssh_parse_public(lua_State *L)
{
    size_t len;
    const char *line = luaL_checklstring(L, 1, &len);
    scratch *s = new_scratch(L);
    jj_error err;
    if (jj_ssh_parse_public(line, len, &s->ssh, &err))
        return jj_push_error(L, &err);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, s->ssh.type);
    lua_setfield(L, -2, "type");
    lua_pushlstring(L, (const char *)s->ssh.blob, s->ssh.blob_len);
    lua_setfield(L, -2, "blob");
    lua_pushstring(L, s->ssh.comment);
    lua_setfield(L, -2, "comment");
    scratch_release(s);
    return 1;
}

/* ---- module ---- */

int luaopen_juju_crypto(lua_State *L);
int luaopen_juju_crypto(lua_State *L)
{
    static const luaL_Reg hasher_methods[] = {
        {"update", hasher_update},
        {"digest", hasher_digest},
        {"hexdigest", hasher_hexdigest},
        {"close", hasher_close},
        {NULL, NULL},
    };
    static const luaL_Reg hasher_meta[] = {
        {"__gc", hasher_close},
        {"__close", hasher_close},
        {"__tostring", hasher_tostring},
        {NULL, NULL},
    };
    static const luaL_Reg scratch_meta[] = {
        {"__gc", scratch_gc},
        {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {
        {"random_bytes", l_random_bytes},
        {"hex", l_hex},
        {"unhex", l_unhex},
        {"base64", l_base64},
        {"unbase64", l_unbase64},
        {"sha256", l_sha256},
        {"sha512", l_sha512},
        {"hasher", l_hasher},
        {"sha256_file", l_sha256_file},
        {"pbkdf2_sha512", l_pbkdf2_sha512},
        {"user_password_hash", l_user_password_hash},
        {"agent_password_hash", l_agent_password_hash},
        {"random_password", l_random_password},
        {"admin_secret", l_admin_secret},
        {"uuid4", l_uuid4},
        {"is_uuid", l_is_uuid},
        {"new_ca", l_new_ca},
        {"new_server_cert", l_new_server_cert},
        {"check_ca_pair", l_check_ca_pair},
        {"cert_info", l_cert_info},
        {"ssh_keygen_ed25519", l_ssh_keygen_ed25519},
        {"ssh_public_from_private", l_ssh_public_from_private},
        {"ssh_fingerprint", l_ssh_fingerprint},
        {"ssh_fingerprint_md5", l_ssh_fingerprint_md5},
        {"ssh_parse_public", l_ssh_parse_public},
        {"constant_time_equal", l_constant_time_equal},
        {NULL, NULL},
    };
    jj_new_class(L, HASHER_MT, hasher_methods, hasher_meta);
    jj_new_class(L, SCRATCH_MT, NULL, scratch_meta);
    luaL_newlib(L, funcs);
    lua_pushlstring(L, (const char *)jj_compat_salt, JJ_COMPAT_SALT_LEN);
    lua_setfield(L, -2, "COMPAT_SALT");
    return 1;
}
