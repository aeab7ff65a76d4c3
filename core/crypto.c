/* crypto.c: placeholder, being written. */
#include "crypto.h"
