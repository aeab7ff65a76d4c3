/* main_common.h: the shared body of the juju and jujud mains. */
#ifndef JUJU_CMD_MAIN_COMMON_H
#define JUJU_CMD_MAIN_COMMON_H

/* Runs `require(entry_module).main(args)` in a fresh Lua state whose search
 * paths start at this executable's prefix; returns the process exit code. */
int jj_run_main(int argc, char **argv, const char *entry_module);

#endif
