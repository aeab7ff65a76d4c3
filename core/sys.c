/* sys.c: placeholder, being written. */
#include "sys.h"
