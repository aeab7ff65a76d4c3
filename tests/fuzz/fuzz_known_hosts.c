/* fuzz_known_hosts.c: libFuzzer target for the known_hosts parser
 * (core/knownhosts.c), the file that decides whether a host key is trusted.
 * No libssh2 is involved:
 *
 *   clang -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icore \
 *     tests/fuzz/fuzz_known_hosts.c core/knownhosts.c core/crypto.c core/fs.c \
 *     core/error.c -lcrypto
 *   ./a.out tests/fuzz/corpus/known_hosts
 *
 * Any input must parse or fail with JJ_ECORRUPT (naming the source and a
 * line inside the input) or JJ_ENOMEM. On success every entry is well
 * formed, the entries matching one host are a subset of all entries, and
 * each entry's line parses again on its own to the same key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "knownhosts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count_lines(const uint8_t *data, size_t size)
{
    size_t n = size > 0;
    for (size_t i = 0; i + 1 < size; i++)
        n += data[i] == '\n';
    return n;
}

static void check_failure(int rc, const jj_error *err, size_t lines)
{
    if (rc == JJ_ENOMEM)
        return;
    if (rc != JJ_ECORRUPT || strcmp(err->file, "fuzz") != 0 || err->line < 1 ||
        (size_t)err->line > lines)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    size_t lines = count_lines(data, size);
    jj_known_host *all = NULL, *some = NULL;
    size_t n_all = 0, n_some = 0;
    jj_error err;
    int rc = jj_knownhosts_parse(text, size, "fuzz", NULL, 22, &all, &n_all, &err);
    if (rc) {
        check_failure(rc, &err, lines);
        return 0;
    }
    rc = jj_knownhosts_parse(text, size, "fuzz", "Host.Example", 2222, &some, &n_some, &err);
    if (rc && rc != JJ_ENOMEM)
        abort(); /* the same text cannot be valid for one host and not another */
    if (!rc && n_some > n_all)
        abort();
    for (size_t i = 0; i < n_all; i++) {
        const jj_known_host *e = &all[i];
        if (e->lineno < 1 || (size_t)e->lineno > lines || !e->line || !e->key ||
            !strchr(e->key, ' '))
            abort();
        jj_known_host *again = NULL;
        size_t n_again = 0;
        int rc2 = jj_knownhosts_parse(e->line, strlen(e->line), "fuzz", NULL, 22, &again,
                                      &n_again, &err);
        if (rc2 == 0 && (n_again != 1 || strcmp(again[0].key, e->key) != 0))
            abort();
        if (rc2 && rc2 != JJ_ENOMEM)
            abort();
        jj_knownhosts_free(again, n_again);
    }
    jj_knownhosts_free(some, n_some);
    jj_knownhosts_free(all, n_all);
    return 0;
}
