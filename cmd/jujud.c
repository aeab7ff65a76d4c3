/* jujud: the machine agent (bootstrap-state, machine). All behaviour is in
 * lua/juju/jujud.lua. */
#include "main_common.h"

int main(int argc, char **argv)
{
    return jj_run_main(argc, argv, "juju.jujud");
}
