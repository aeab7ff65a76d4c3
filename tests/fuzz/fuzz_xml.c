/* fuzz_xml.c: libFuzzer entry point for core/xml.
 *
 * Run: scripts/fuzz.sh (or ./fuzz_xml tests/fuzz/corpus/xml)
 *
 * Every input must parse or fail with JJ_EINVAL/JJ_ENOMEM and a position;
 * a parsed tree must emit, the emitted text must parse again, and emitting
 * that tree again must give the same bytes (emission is a fixed point).
 * Small limits on every other input exercise the depth and count checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jj_xml_limits small = {.max_size = 1 << 20, .max_depth = 8, .max_elements = 64};
    jj_xml_node *tree = NULL;
    jj_error err;
    int rc = jj_xml_parse((const char *)data, size, "fuzz", (size & 1) ? &small : NULL, &tree,
                          &err);
    if (rc != 0) {
        if (rc != JJ_EINVAL && rc != JJ_ENOMEM)
            abort();
        if (rc == JJ_EINVAL && err.line < 1)
            abort();
        return 0;
    }
    char *text = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    if (jj_xml_emit(tree, (int)(size & 2), &text, &len, &err) != 0)
        abort();
    jj_xml_node *reparsed = NULL;
    if (jj_xml_parse(text, len, "fuzz-emitted", NULL, &reparsed, &err) != 0)
        abort();
    if (jj_xml_emit(reparsed, (int)(size & 2), &again, &len2, &err) != 0)
        abort();
    if (len != len2 || memcmp(text, again, len) != 0)
        abort();
    free(text);
    free(again);
    jj_xml_free(tree);
    jj_xml_free(reparsed);
    return 0;
}
