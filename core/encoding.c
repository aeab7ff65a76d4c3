/* encoding.c: hex and base64 (see encoding.h). */
#include "crypto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>


/* ---- encodings ---- */

static const char hex_digits[] = "0123456789abcdef";
static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void jj_hex_encode(const void *in, size_t n, char *out)
{
    const unsigned char *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[p[i] >> 4];
        out[2 * i + 1] = hex_digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static inline int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int jj_hex_decode(const char *in, size_t len, unsigned char *out, size_t *out_len, jj_error *err)
{
    if (len % 2)
        return jj_error_set(err, JJ_EINVAL, "invalid hex: odd length %zu", len);
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_value((unsigned char)in[i]), lo = hex_value((unsigned char)in[i + 1]);
        if (hi < 0 || lo < 0)
            return jj_error_set(err, JJ_EINVAL, "invalid hex: bad character at offset %zu",
                                hi < 0 ? i : i + 1);
        out[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    *out_len = len / 2;
    return 0;
}

size_t jj_base64_encoded_size(size_t n)
{
    return (n + 2) / 3 * 4 + 1;
}

/* Encodes without the NUL; returns the number of characters written. */
static size_t base64_encode_raw(const unsigned char *p, size_t n, char *out, bool pad)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = b64_alphabet[v >> 6 & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = b64_alphabet[v >> 6 & 63];
        if (pad)
            out[o++] = '=';
    }
    return o;
}

void jj_base64_encode(const void *in, size_t n, char *out)
{
    out[base64_encode_raw(in, n, out, true)] = '\0';
}

size_t jj_base64_decoded_max(size_t len)
{
    return len / 4 * 3 + 3;
}

static inline int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static inline bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int jj_base64_decode(const char *in, size_t len, unsigned char *out, size_t *out_len,
                     jj_error *err)
{
    uint32_t acc = 0;
    size_t chars = 0, pads = 0, o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (is_space(c))
            continue;
        if (c == '=') {
            pads++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0)
            return jj_error_set(err, JJ_EINVAL, "invalid base64: bad character at offset %zu", i);
        if (pads)
            return jj_error_set(err, JJ_EINVAL, "invalid base64: data after padding");
        acc = acc << 6 | (uint32_t)v;
        if (++chars % 4 == 0) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    size_t rest = chars % 4;
    if (rest == 1)
        return jj_error_set(err, JJ_EINVAL, "invalid base64: truncated input");
    if (pads && (rest == 0 || pads > 2 || (rest + pads) % 4 != 0))
        return jj_error_set(err, JJ_EINVAL, "invalid base64: bad padding");
    if (rest == 2) {
        if (acc & 0xf)
            return jj_error_set(err, JJ_EINVAL, "invalid base64: non-zero trailing bits");
        out[o++] = (unsigned char)(acc >> 4);
    } else if (rest == 3) {
        if (acc & 0x3)
            return jj_error_set(err, JJ_EINVAL, "invalid base64: non-zero trailing bits");
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    }
    *out_len = o;
    return 0;
}


void jj_hex_encode_colons(const void *in, size_t n, bool upper, char *out)
{
    const unsigned char *md = in;
    const char *digits = upper ? "0123456789ABCDEF" : hex_digits;
    for (size_t i = 0; i < n; i++) {
        out[3 * i] = digits[md[i] >> 4];
        out[3 * i + 1] = digits[md[i] & 15];
        out[3 * i + 2] = ':';
    }
    out[n ? 3 * n - 1 : 0] = '\0';
}

size_t jj_base64_encode_unpadded(const void *in, size_t n, char *out)
{
    return base64_encode_raw(in, n, out, false);
}
