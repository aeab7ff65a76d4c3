/* fuzz_dqlite.c: libFuzzer entry point for core/dqlite's response decoders.
 *
 * Run: ./fuzz_dqlite tests/fuzz/corpus/dqlite
 *
 * The first input byte picks the decoder (rows, nodes, failure); for rows
 * the second byte splits the rest into up to four batches decoded into one
 * result set, as a multi-part answer is. Every input must decode or fail
 * with JJ_EPROTO (JJ_ENOMEM aside; a failure answer with its mapped code),
 * and whatever decodes must be well formed: known types, NUL-terminated
 * strings of the stated length, as many names as columns.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dqlite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rows(const jj_dqlite_rows *rows)
{
    for (size_t c = 0; c < rows->ncols; c++)
        if (!rows->names || !rows->names[c])
            abort();
    for (size_t i = 0; i < rows->nrows * rows->ncols; i++) {
        const jj_dqlite_value *v = &rows->values[i];
        switch (v->type) {
        case JJ_DQLITE_TEXT:
        case JJ_DQLITE_ISO8601:
            if (!v->s || v->s[v->len] != '\0' || strlen(v->s) != v->len)
                abort();
            break;
        case JJ_DQLITE_BLOB:
            if (!v->s || v->s[v->len] != '\0')
                abort();
            break;
        case JJ_DQLITE_INTEGER:
        case JJ_DQLITE_FLOAT:
        case JJ_DQLITE_NULL:
        case JJ_DQLITE_UNIXTIME:
        case JJ_DQLITE_BOOLEAN:
            if (v->s)
                abort();
            break;
        default: abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    jj_error err;
    int which = data[0] % 3;
    if (which == 0) {
        jj_dqlite_rows rows;
        memset(&rows, 0, sizeof rows);
        size_t parts = (size_t)(data[1] % 4) + 1;
        const uint8_t *p = data + 2;
        size_t left = size - 2;
        size_t chunk = left / parts;
        for (size_t i = 0; i < parts; i++) {
            size_t n = i + 1 == parts ? left : chunk;
            int more = 0;
            int rc = jj_dqlite_decode_rows(p, n, &rows, &more, &err);
            if (rc != 0 && rc != JJ_EPROTO && rc != JJ_ENOMEM)
                abort();
            if (rc || !more)
                break;
            p += n;
            left -= n;
        }
        check_rows(&rows);
        jj_dqlite_rows_free(&rows);
    } else if (which == 1) {
        jj_dqlite_node *nodes = NULL;
        size_t n = 0;
        int rc = jj_dqlite_decode_nodes(data + 1, size - 1, &nodes, &n, &err);
        if (rc != 0 && rc != JJ_EPROTO && rc != JJ_ENOMEM)
            abort();
        if (rc == 0)
            for (size_t i = 0; i < n; i++)
                if (!nodes[i].address || nodes[i].role < 0 || nodes[i].role > JJ_DQLITE_SPARE)
                    abort();
        if (rc != 0 && (nodes || n))
            abort();
        jj_dqlite_nodes_free(nodes, n);
    } else {
        int rc = jj_dqlite_decode_failure(data + 1, size - 1, &err);
        if (rc >= 0 || err.code != rc)
            abort();
    }
    return 0;
}
