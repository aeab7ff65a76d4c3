/* fuzz_gzip.c: libFuzzer entry point for core/gzip's reader.
 *
 * Run: scripts/fuzz.sh 30 gzip
 *
 * Every input gunzips or fails with JJ_ECORRUPT/JJ_ERANGE; what gunzips
 * gzips again and reads back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gzip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *plain = NULL, *z = NULL, *again = NULL;
    size_t lp = 0, lz = 0, la = 0;
    jj_error err;
    int rc = jj_gunzip(data, size, 1 << 20, &plain, &lp, &err);
    if (rc != 0) {
        if (rc != JJ_ECORRUPT && rc != JJ_ERANGE && rc != JJ_ENOMEM)
            abort();
        return 0;
    }
    if (jj_gzip(plain, lp, (int)(size % 10), &z, &lz, &err) != 0)
        abort();
    if (jj_gunzip(z, lz, 1 << 20, &again, &la, &err) != 0)
        abort();
    if (la != lp || memcmp(plain, again, lp) != 0)
        abort();
    free(plain);
    free(z);
    free(again);
    return 0;
}
