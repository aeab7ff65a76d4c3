/* yaml.h: placeholder, being written. */
#ifndef JUJU_CORE_YAML_H
#define JUJU_CORE_YAML_H
#include "error.h"
#endif
