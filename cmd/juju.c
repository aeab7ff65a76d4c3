/* juju: the client. All behaviour is in lua/juju/cli.lua. */
#include "main_common.h"

int main(int argc, char **argv)
{
    return jj_run_main(argc, argv, "juju.cli");
}
