/* fs.h: placeholder, being written. */
#ifndef JUJU_CORE_FS_H
#define JUJU_CORE_FS_H
#include "error.h"
#endif
