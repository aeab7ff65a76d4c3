/* config.c: placeholder binding, being written. */
#include "common.h"
#include "config.h"

int luaopen_juju_config(lua_State *L);
int luaopen_juju_config(lua_State *L)
{
    lua_newtable(L);
    return 1;
}
