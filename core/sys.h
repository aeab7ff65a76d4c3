/* sys.h: placeholder, being written. */
#ifndef JUJU_CORE_SYS_H
#define JUJU_CORE_SYS_H
#include "error.h"
#endif
