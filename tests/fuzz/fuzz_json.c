/* fuzz_json.c: libFuzzer entry point for core/json.
 *
 * Build (clang): clang -g -fsanitize=fuzzer,address,undefined -Icore
 *   tests/fuzz/fuzz_json.c core/json.c core/yaml.c core/error.c -lyaml -lm
 * Run: ./fuzz_json tests/fuzz/corpus/json
 *
 * Every input must either parse or fail with JJ_EINVAL and a position;
 * whatever parses must emit, and the emitted text must parse again and
 * re-emit identically (emission is a fixed point; not tree equality, since
 * Go writes the float 3.0 as "3", which reads back as an int).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jj_yaml_node *tree = NULL;
    jj_error err;
    int rc = jj_json_parse((const char *)data, size, "fuzz", &tree, &err);
    if (rc != 0) {
        if (rc != JJ_EINVAL && rc != JJ_ENOMEM)
            abort();
        if (rc == JJ_EINVAL && err.line < 1)
            abort();
        return 0;
    }
    char *text = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    if (jj_json_emit(tree, (int)(size % 5), &text, &len, &err) != 0)
        abort();
    jj_yaml_node *reparsed = NULL;
    if (jj_json_parse(text, len, "fuzz-emitted", &reparsed, &err) != 0)
        abort();
    if (jj_json_emit(reparsed, (int)(size % 5), &again, &len2, &err) != 0)
        abort();
    if (len != len2 || memcmp(text, again, len) != 0)
        abort();
    free(text);
    free(again);
    jj_yaml_free(tree);
    jj_yaml_free(reparsed);
    return 0;
}
