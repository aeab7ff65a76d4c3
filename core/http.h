/* http.h: HTTP(S) and file:// transfers for the client, on libcurl.
 *
 * Used for simplestreams metadata and tools tarballs (http, https, file) and
 * for the cloud APIs, whose signed requests are built by the caller. One
 * jj_http wraps one CURL easy handle; reusing it across requests keeps
 * connections alive. Bodies stream through fixed-size buffers: to a file
 * (temp file beside it, renamed on success), to a caller's callback, or,
 * when neither is given, into memory.
 *
 * Retries cover what a later attempt can fix: connection failures,
 * timeouts, 5xx and 429, never other 4xx. Error messages name the method and
 * the URL with its userinfo removed and signature-like query values
 * redacted; header values never appear in them. lib_code is the CURLcode,
 * or the HTTP status for status errors.
 *
 * Every request has an overall deadline (whole request, retries and their
 * waits included; 300 s unless the caller says otherwise), so no request
 * can hang for ever; running out of it is JJ_EHTTP_TIMEOUT naming the URL.
 *
 * Request bodies (memory or body_file) are hashed (SHA-256) as libcurl
 * reads them, in the same pass: the response's body_sha256 is the digest of
 * what the last attempt actually sent, for callers that signed a payload
 * hash. A body_file that changes size or modification time during the
 * request is an error (JJ_EIO), as its signature no longer holds.
 *
 * Codes: JJ_ENOENT (404, 410, missing file://), JJ_EHTTP (other statuses,
 * connection/TLS/DNS failures), JJ_EHTTP_TIMEOUT, JJ_ERANGE (max_size),
 * JJ_EINTERRUPTED (a callback asked to stop, or the request was cancelled:
 * its cancel token, or a watched signal, see "cancellation" in sys.h;
 * checked in libcurl's progress callback, which runs after every signal and
 * at least once a second, and in the retry waits), JJ_EINVAL (bad URL, method or
 * header), JJ_EIO/JJ_EACCES... (local files), JJ_ENOMEM.
 */
#ifndef JUJU_CORE_HTTP_H
#define JUJU_CORE_HTTP_H

#include <stddef.h>

#include "error.h"
#include "sys.h"

/* Calls curl_global_init(CURL_GLOBAL_DEFAULT). libcurl keeps a reference
 * count, so calling it once per Lua state is harmless; it is only not
 * thread-safe against a concurrent first call on libcurl builds without
 * CURL_VERSION_THREADSAFE. curl_easy_init would do it implicitly; calling it
 * early makes a failure visible. Never undone (libcurl may be shared). */
int jj_http_global_init(jj_error *err);

typedef struct jj_http jj_http;

/* A new transfer handle; *out is owned by the caller (jj_http_free). */
int jj_http_new(jj_http **out, jj_error *err);

/* Frees the handle and its connections. NULL is fine. */
void jj_http_free(jj_http *h);

/* Body chunk sink: return 0 to go on, non-zero to abort the transfer
 * (JJ_EINTERRUPTED). Called only for the body of a successful (< 400)
 * response, from inside libcurl: must not longjmp. */
typedef int (*jj_http_data_fn)(void *ud, const char *data, size_t len);

/* Waits `seconds` before a retry; non-zero abandons the request
 * (JJ_EINTERRUPTED). Must not longjmp. */
typedef int (*jj_http_sleep_fn)(void *ud, double seconds);

/* One part of a multipart/form-data body (RFC 7578). Exactly one of data
 * (data_len bytes, may hold NULs) and file (streamed from disk when sent,
 * never loaded whole) is set. filename defaults to the file's base name for
 * file parts and to none for data parts; content_type to libcurl's guess
 * from the file name (application/octet-stream when it has none) or none.
 * All borrowed. */
typedef struct jj_http_part {
    const char *name;
    const char *data;
    size_t data_len;
    const char *file;
    const char *filename;
    const char *content_type;
} jj_http_part;

typedef struct jj_http_request {
    const char *url;     /* http://, https:// or file:// (required) */
    const char *method;  /* upper-case token; NULL = "GET" */
    /* NULL-terminated lines in libcurl's form: "Name: value", "Name;" (an
     * empty value) or "Name:" (suppress a default header). Borrowed. */
    const char *const *headers;
    const char *body;    /* in-memory request body (borrowed), or NULL */
    size_t body_len;
    const char *body_file; /* request body streamed from this file, or NULL */
    /* multipart/form-data body (exclusive with body and body_file; method
     * defaults to POST): nparts parts, borrowed. */
    const jj_http_part *parts;
    size_t nparts;
    /* Response body streamed here through "<to_file>.part-XXXXXX" (mode
     * 0600), fsynced and renamed over to_file on success, removed on any
     * failure; NULL for none. */
    const char *to_file;
    jj_http_data_fn on_data; /* response body chunks, or NULL */
    void *on_data_ud;
    double connect_timeout;  /* seconds, default 30; 0 = libcurl's default */
    double idle_timeout;     /* seconds without progress, default 60; 0 = none */
    double timeout;          /* seconds per attempt, default 0 = none */
    /* Seconds for the whole request, retries and retry waits included
     * (waits through a caller's sleep function count as the seconds asked
     * for); default 300, <= 0 = none. */
    double deadline;
    /* Extra attempts, default 0. Every method is retried alike (callers
     * decide whether theirs is idempotent); a transfer whose on_data has
     * already seen bytes is not retried, as those cannot be taken back. */
    int retries;
    double retry_delay;      /* first delay, doubled each time, capped at 30 */
    jj_http_sleep_fn sleep;  /* NULL: really sleep */
    void *sleep_ud;
    /* use_proxy: the proxy fields are authoritative (an unset one means no
     * proxy for that scheme); otherwise libcurl reads http_proxy,
     * https_proxy and no_proxy from the environment. */
    int use_proxy;
    const char *proxy_http, *proxy_https, *no_proxy;
    int insecure;            /* skip TLS peer and host verification */
    const char *ca_file;     /* CA bundle, or NULL for the system's */
    /* TLS client certificate and private key, PEM in memory (borrowed; not
     * copied by this module). With a cert and no key the key is read from
     * the cert's PEM (a combined file, as Azure's management certificate). */
    const char *client_cert;
    size_t client_cert_len;
    const char *client_key;
    size_t client_key_len;
    long long max_size;      /* largest body accepted; < 0 = no limit */
    /* default 1; never to file://. With 0, a 3xx answer is a success whose
     * body (capped like an error body) is in resp->body, never in to_file
     * or on_data: the caller follows it itself. */
    int follow_redirects;
    const char *user_agent;  /* default "juju-engine" */
    const jj_sys_cancel *cancel; /* stops the transfer and retry waits; or NULL */
} jj_http_request;

/* Fills r with the defaults above (url NULL). */
void jj_http_request_init(jj_http_request *r);

typedef struct jj_http_header {
    char *name;  /* lower-case */
    char *value; /* surrounding whitespace removed */
} jj_http_header;

typedef struct jj_http_response {
    long status;        /* HTTP status; 200 for a file:// success */
    char reason[64];    /* reason phrase, or the standard one for status */
    jj_http_header *headers; /* of the final response, in order received */
    size_t nheaders, headers_cap;
    /* The body when neither to_file nor on_data was given; for a status
     * error, the first 64 KiB of the error body whatever the sink. */
    char *body;
    size_t body_len, body_cap;
    long long size;     /* body bytes received from the successful response */
    char *url;          /* effective URL, userinfo removed */
    int attempts;
    double elapsed;     /* seconds, whole request including retry waits */
    /* Lower-case hex SHA-256 of the request body the last attempt sent in
     * full (body or body_file); "" when there was none or it was cut off. */
    char body_sha256[65];
} jj_http_response;

void jj_http_response_init(jj_http_response *r);

/* Frees everything r owns and re-inits it. */
void jj_http_response_free(jj_http_response *r);

/* Runs the request with retries. resp must be initialised; it is reset
 * first and, on return, owned by the caller (jj_http_response_free) whether
 * the call succeeds or not: after a status error it holds that status, its
 * headers and the start of its body. Statuses >= 400 are errors. */
int jj_http_perform(jj_http *h, const jj_http_request *req, jj_http_response *resp,
                    jj_error *err);

/* Writes the URL to out for messages: userinfo dropped, values of
 * signature/credential/token query parameters replaced by "REDACTED".
 * Always NUL-terminates (truncating); an unparseable URL gives
 * "<invalid URL>". */
void jj_http_safe_url(const char *url, char *out, size_t size);

/* Percent-encodes everything but RFC 3986 unreserved characters
 * (A-Z a-z 0-9 - . _ ~) with upper-case hex. out must have room for
 * 3 * len + 1 bytes; returns the length written (NUL-terminated). */
size_t jj_http_url_escape(const char *in, size_t len, char *out);

/* Decodes %XX sequences (malformed ones are kept as they are; '+' stays
 * '+'). out must have room for len + 1 bytes; returns the decoded length
 * (the result may contain NUL bytes). */
size_t jj_http_url_unescape(const char *in, size_t len, char *out);

typedef struct jj_http_url {
    /* All malloc'd and owned by the struct (jj_http_url_free), NULL when the
     * URL has no such part. path and query stay percent-encoded as given;
     * user and password are decoded. */
    char *scheme, *host, *path, *query, *fragment, *user, *password;
    int port; /* explicit port, else the scheme's default, else 0 */
} jj_http_url;

/* Splits url (any scheme) with libcurl's URL parser. On failure out is
 * left empty and the error (JJ_EINVAL) does not quote the URL. */
int jj_http_parse_url(const char *url, jj_http_url *out, jj_error *err);

/* Frees the parts (user and password wiped first). Idempotent. */
void jj_http_url_free(jj_http_url *u);

#endif
