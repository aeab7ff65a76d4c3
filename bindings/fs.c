/* fs.c: placeholder binding, being written. */
#include "common.h"
#include "fs.h"

int luaopen_juju_fs(lua_State *L);
int luaopen_juju_fs(lua_State *L)
{
    lua_newtable(L);
    return 1;
}
