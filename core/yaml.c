/* yaml.c: placeholder, being written. */
#include "yaml.h"
