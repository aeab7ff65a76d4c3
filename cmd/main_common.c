/* main_common.c: create a Lua state, point it at the engine, hand over.
 *
 * The executable lives in PREFIX/bin; its Lua files are in
 * PREFIX/share/lua/5.4 and its binding modules in PREFIX/lib/lua/5.4. The
 * build tree has the same shape, so the build tree's juju works uninstalled.
 */
#include "main_common.h"

#include <signal.h>
#include <sys/mman.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if LUA_VERSION_NUM != 504
#error "juju targets Lua 5.4 exactly"
#endif

/* The prefix of this installation: the executable's directory when it holds
 * share/lua/5.4 (unpacked agent tools keep jujud beside its modules), else
 * the parent of bin/. */
static void exe_prefix(char *out, size_t size)
{
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) {
        snprintf(out, size, ".");
        return;
    }
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    if (slash)
        *slash = '\0';
    char probe[PATH_MAX + 32];
    snprintf(probe, sizeof probe, "%s/share/lua/5.4", path);
    if (access(probe, F_OK) != 0) {
        slash = strrchr(path, '/');
        if (slash)
            *slash = '\0';
    }
    snprintf(out, size, "%s", path[0] ? path : "/");
}

static void prepend_path(lua_State *L, const char *field, const char *prefix, const char *patterns)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, field);
    const char *old = lua_tostring(L, -1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (const char *p = patterns; *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        luaL_addstring(&b, prefix);
        luaL_addlstring(&b, p, len);
        luaL_addchar(&b, ';');
        p += len + (end ? 1 : 0);
    }
    luaL_addstring(&b, old ? old : "");
    luaL_pushresult(&b);
    lua_setfield(L, -3, field);
    lua_pop(L, 2);
}

/* The bindings built into the executable (cmd/CMakeLists.txt,
 * JUJU_BUILTIN_BINDINGS): require finds them in package.preload before any
 * search of package.cpath. */
int luaopen_juju_sys(lua_State *L);
int luaopen_juju_fs(lua_State *L);
int luaopen_juju_yaml(lua_State *L);
int luaopen_juju_json(lua_State *L);
int luaopen_juju_config(lua_State *L);

static const luaL_Reg builtin_bindings[] = {
    {"juju.sys", luaopen_juju_sys},   {"juju.fs", luaopen_juju_fs},         {"juju.yaml", luaopen_juju_yaml},
    {"juju.json", luaopen_juju_json}, {"juju.config", luaopen_juju_config}, {NULL, NULL},
};

static void preload_builtin_bindings(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    for (const luaL_Reg *b = builtin_bindings; b->name; b++) {
        lua_pushcfunction(L, b->func);
        lua_setfield(L, -2, b->name);
    }
    lua_pop(L, 1);
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg)
        msg = luaL_tolstring(L, 1, NULL);
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int run(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    const char *entry = lua_tostring(L, 3);

    luaL_openlibs(L);
    preload_builtin_bindings(L);
    char prefix[PATH_MAX];
    exe_prefix(prefix, sizeof prefix);
    prepend_path(L, "path", prefix, "/share/lua/5.4/?.lua;/share/lua/5.4/?/init.lua");
    prepend_path(L, "cpath", prefix, "/lib/lua/5.4/?.so");

    lua_getglobal(L, "require");
    lua_pushstring(L, entry);
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "main");
    lua_createtable(L, argc, 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_call(L, 1, 1);
    return 1;
}

/* Agent tools start bin/jujud through a wrapper that puts their own lib/ on
 * LD_LIBRARY_PATH (lua/juju/agenttools.lua). The dynamic loader has read it
 * by now (dlopen keeps using it); give the caller's value back so the
 * commands jujud runs use the host's libraries. */
static void restore_library_path(void)
{
    const char *saved = getenv("JUJU_TOOLS_LD_LIBRARY_PATH");
    if (!saved)
        return;
    if (strncmp(saved, "set:", 4) == 0)
        setenv("LD_LIBRARY_PATH", saved + 4, 1);
    else
        unsetenv("LD_LIBRARY_PATH");
    unsetenv("JUJU_TOOLS_LD_LIBRARY_PATH");
}

/* libmongoc's constructor maps its statistics counters from a shared
 * memory file, /dev/shm/mongoc-<pid>, unlinked only by its destructor: a
 * process killed by a signal (an agent stopped with SIGTERM, any kill -9)
 * left the file behind, and a later process given the same pid then
 * printed "Falling back to malloc for counters". The mapping works
 * without its name: unlinking it now leaves nothing behind however this
 * process ends (the destructor's own unlink then finds nothing). */
static void forget_mongoc_counters(void)
{
    char name[32];
    snprintf(name, sizeof name, "/mongoc-%u", (unsigned)getpid());
    shm_unlink(name);
}

int jj_run_main(int argc, char **argv, const char *entry_module)
{
    restore_library_path();
    /* A closed stdout (`juju bootstrap | head -1`) means "stop printing",
     * not death (issue 14.8): writes then fail with EPIPE, which the
     * context's writers take as the end of that stream. Children get the
     * default back (core/sys.c, core/proc.c). */
    signal(SIGPIPE, SIG_IGN);
    forget_mongoc_counters();
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "ERROR cannot create Lua state: out of memory\n");
        return 1;
    }
    lua_pushcfunction(L, traceback);
    lua_pushcfunction(L, run);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    lua_pushstring(L, entry_module);
    int rc;
    if (lua_pcall(L, 3, 1, 1) != LUA_OK) {
        fprintf(stderr, "ERROR internal error: %s\n", lua_tostring(L, -1));
        rc = 1;
    } else {
        rc = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : (lua_toboolean(L, -1) ? 0 : 1);
    }
    lua_close(L);
    return rc;
}
