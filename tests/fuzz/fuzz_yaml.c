/* fuzz_yaml.c: libFuzzer target for the YAML document model (core/yaml.c).
 *
 * Any input must parse or fail cleanly within the limits; whatever parses
 * must emit, and the emitted text must parse back to an equal tree. A
 * mismatch is a bug in resolution or quoting, so it traps.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Icore tests/fuzz/fuzz_yaml.c \
 *         core/yaml.c core/error.c -lyaml && ./a.out tests/fuzz/corpus/yaml
 */
#include <stdint.h>
#include <stdlib.h>

#include "yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jj_yaml_limits limits = {.max_nodes = 20000, .max_depth = 64};
    jj_yaml_node *doc = NULL;
    jj_error err;
    if (jj_yaml_parse((const char *)data, size, "fuzz", &limits, &doc, &err) != 0)
        return 0;
    char *text = NULL;
    size_t len = 0;
    if (jj_yaml_emit(doc, &text, &len, &err) == 0) {
        jj_yaml_node *again = NULL;
        /* the re-read may need more nodes: merge keys and aliases are expanded */
        jj_yaml_limits big = {.max_nodes = 1000000, .max_depth = 64};
        if (jj_yaml_parse(text, len, "emitted", &big, &again, &err) != 0 || !jj_yaml_equal(doc, again))
            __builtin_trap();
        jj_yaml_free(again);
        free(text);
    } else if (err.code != JJ_EYAML_EMIT) {
        __builtin_trap();
    }
    jj_yaml_free(doc);
    return 0;
}
