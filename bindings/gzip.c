/* gzip.c (binding): juju.gzip, gzip of strings (core/gzip.h).
 *
 *   gzip.gzip(data [, level]) -> compressed string
 *   gzip.gunzip(data [, max_size]) -> string | nil, msg, code
 *
 * A level outside 0..9 is misuse and raises; unreadable input is an
 * operational failure (CORRUPT, ERANGE over max_size).
 */
#include <stdlib.h>

#include "common.h"
#include "gzip.h"

static void free_buf(void *p, size_t n)
{
    (void)n;
    free(p);
}

static int l_gzip(lua_State *L)
{
    size_t n;
    const char *data = luaL_checklstring(L, 1, &n);
    lua_Integer level = luaL_optinteger(L, 2, JJ_GZIP_DEFAULT_LEVEL);
    luaL_argcheck(L, level >= 0 && level <= 9, 2, "level must be 0..9");
    jj_owned *box = jj_push_owned(L, free_buf);
    unsigned char *out = NULL;
    size_t len = 0;
    jj_error err;
    if (jj_gzip(data, n, (int)level, &out, &len, &err) != 0)
        return jj_push_error(L, &err);
    box->p = out;
    lua_pushlstring(L, (const char *)out, len);
    jj_owned_release(box);
    return 1;
}

static int l_gunzip(lua_State *L)
{
    size_t n;
    const char *data = luaL_checklstring(L, 1, &n);
    lua_Integer max = luaL_optinteger(L, 2, JJ_GUNZIP_DEFAULT_MAX);
    luaL_argcheck(L, max >= 1, 2, "max_size must be positive");
    jj_owned *box = jj_push_owned(L, free_buf);
    unsigned char *out = NULL;
    size_t len = 0;
    jj_error err;
    if (jj_gunzip(data, n, (size_t)max, &out, &len, &err) != 0)
        return jj_push_error(L, &err);
    box->p = out;
    lua_pushlstring(L, (const char *)out, len);
    jj_owned_release(box);
    return 1;
}

int luaopen_juju_gzip(lua_State *L);
int luaopen_juju_gzip(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"gzip", l_gzip}, {"gunzip", l_gunzip}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    lua_pushinteger(L, JJ_GZIP_DEFAULT_LEVEL);
    lua_setfield(L, -2, "DEFAULT_LEVEL");
    return 1;
}
