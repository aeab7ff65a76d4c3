/* config.h: placeholder, being written. */
#ifndef JUJU_CORE_CONFIG_H
#define JUJU_CORE_CONFIG_H
#include "error.h"
#endif
