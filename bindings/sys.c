/* sys.c: placeholder binding, being written. */
#include "common.h"
#include "sys.h"

int luaopen_juju_sys(lua_State *L);
int luaopen_juju_sys(lua_State *L)
{
    lua_newtable(L);
    return 1;
}
