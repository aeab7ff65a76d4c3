/* fs.c: placeholder, being written. */
#include "fs.h"
