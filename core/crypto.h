/* crypto.h: placeholder, being written. */
#ifndef JUJU_CORE_CRYPTO_H
#define JUJU_CORE_CRYPTO_H
#include "error.h"
#endif
