/* http.c: HTTP(S) and file:// transfers on libcurl (see http.h).
 *
 * One request = one curl_easy_reset + options + up to 1 + retries calls to
 * curl_easy_perform on the same handle (so connections are reused). All
 * per-request state lives in a `xfer` on the stack; libcurl's callbacks only
 * touch that. The response body goes through libcurl's own receive buffer
 * straight to its sink; nothing here buffers a whole download unless the
 * caller asked for the body in memory.
 */
#include "http.h"
#include "digest.h"
#include "sys.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ERROR_BODY_MAX (64 * 1024) /* enough for any cloud API error document */
#define RETRY_DELAY_CAP 30.0
#define MAX_REDIRECTS 10L
#define URL_MSG_MAX 512
#define METHOD_MAX 20
#define DEFAULT_DEADLINE 300.0
/* A timed-out attempt whose time limit was the deadline's remainder and
 * that ends this close to it has run out of the deadline. */
#define DEADLINE_SLACK 0.25

struct jj_http {
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
};

int jj_http_global_init(jj_error *err)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
        return jj_error_set_lib(err, JJ_EHTTP, rc, "cannot initialise libcurl: %s",
                                curl_easy_strerror(rc));
    return 0;
}

int jj_http_new(jj_http **out, jj_error *err)
{
    *out = NULL;
    jj_http *h = calloc(1, sizeof *h);
    if (!h)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    h->curl = curl_easy_init();
    if (!h->curl) {
        free(h);
        return jj_error_set(err, JJ_ENOMEM, "cannot create a libcurl handle");
    }
    *out = h;
    return 0;
}

void jj_http_free(jj_http *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    free(h);
}

void jj_http_request_init(jj_http_request *r)
{
    memset(r, 0, sizeof *r);
    r->connect_timeout = 30;
    r->idle_timeout = 60;
    r->deadline = DEFAULT_DEADLINE;
    r->retry_delay = 1;
    r->max_size = -1;
    r->follow_redirects = 1;
    r->user_agent = "juju-engine";
}

void jj_http_response_init(jj_http_response *r)
{
    memset(r, 0, sizeof *r);
}

static void clear_headers(jj_http_response *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    r->nheaders = 0;
}

void jj_http_response_free(jj_http_response *r)
{
    clear_headers(r);
    free(r->headers);
    free(r->body);
    free(r->url);
    jj_http_response_init(r);
}

/* ---- URLs --------------------------------------------------------------- */

static inline int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

size_t jj_http_url_escape(const char *in, size_t len, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (is_unreserved(c)) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return n;
}

static inline int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t jj_http_url_unescape(const char *in, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (in[i] == '%' && i + 2 < len && (hi = hex_value(in[i + 1])) >= 0 &&
            (lo = hex_value(in[i + 2])) >= 0) {
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = in[i];
        }
    }
    out[n] = '\0';
    return n;
}

/* Query parameters whose values are credentials or signatures (AWS v2/v4
 * presigned URLs, Swift temp URLs, Azure SAS, OAuth tokens). */
static int is_secret_param(const char *name, size_t len)
{
    static const char *const names[] = {
        "signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
        "awsaccesskeyid", "sig", "temp_url_sig", "token", "access_token", "password",
        "secret", "x-goog-signature", "x-goog-credential", NULL,
    };
    for (int i = 0; names[i]; i++)
        if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0)
            return 1;
    return 0;
}

/* A malloc'd copy of query with secret values replaced, or NULL (no memory).
 * *changed tells whether anything was replaced. */
static char *redact_query(const char *q, int *changed)
{
    size_t params = 1;
    for (const char *p = q; *p; p++)
        params += *p == '&';
    size_t qlen = strlen(q);
    if (params > (SIZE_MAX - qlen - 1) / 9)
        return NULL;
    char *out = malloc(qlen + 9 * params + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    *changed = 0;
    const char *p = q;
    for (;;) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t nlen = eq ? (size_t)(eq - p) : plen;
        if (is_secret_param(p, nlen)) {
            memcpy(out + n, p, nlen);
            n += nlen;
            memcpy(out + n, "=REDACTED", 9);
            n += 9;
            *changed = 1;
        } else {
            memcpy(out + n, p, plen);
            n += plen;
        }
        if (!amp)
            break;
        out[n++] = '&';
        p = amp + 1;
    }
    out[n] = '\0';
    return out;
}

/* Removes a URL part; returns 1 if it was there. Secrets are wiped from
 * libcurl's copy before it is freed. */
static int drop_part(CURLU *u, CURLUPart part)
{
    char *s = NULL;
    if (curl_url_get(u, part, &s, 0) != CURLUE_OK || !s)
        return 0;
    OPENSSL_cleanse(s, strlen(s));
    curl_free(s);
    curl_url_set(u, part, NULL, 0);
    return 1;
}

/* A malloc'd copy of url without userinfo (and, with redact, without secret
 * query values); NULL when url does not parse or memory runs out. */
static char *clean_url(const char *url, int redact)
{
    CURLU *u = curl_url();
    if (!u)
        return NULL;
    char *out = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
        goto done;
    int changed = drop_part(u, CURLUPART_USER);
    changed |= drop_part(u, CURLUPART_PASSWORD);
    changed |= drop_part(u, CURLUPART_OPTIONS);
    char *q = NULL;
    if (redact && curl_url_get(u, CURLUPART_QUERY, &q, 0) == CURLUE_OK && q) {
        int redacted = 0;
        char *r = redact_query(q, &redacted);
        curl_free(q);
        if (!r)
            goto done;
        if (redacted && curl_url_set(u, CURLUPART_QUERY, r, 0) != CURLUE_OK) {
            free(r);
            goto done;
        }
        free(r);
        changed |= redacted;
    }
    if (!changed) {
        out = strdup(url);
    } else {
        char *s = NULL;
        if (curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK && s) {
            out = strdup(s);
            curl_free(s);
        }
    }
done:
    curl_url_cleanup(u);
    return out;
}

void jj_http_safe_url(const char *url, char *out, size_t size)
{
    if (!size)
        return;
    char *s = url ? clean_url(url, 1) : NULL;
    snprintf(out, size, "%s", s ? s : "<invalid URL>");
    free(s);
}

void jj_http_url_free(jj_http_url *u)
{
    if (u->user)
        OPENSSL_cleanse(u->user, strlen(u->user));
    if (u->password)
        OPENSSL_cleanse(u->password, strlen(u->password));
    free(u->scheme);
    free(u->host);
    free(u->path);
    free(u->query);
    free(u->fragment);
    free(u->user);
    free(u->password);
    memset(u, 0, sizeof *u);
}

/* *dst = malloc'd copy of the part, NULL if absent; -1 on no memory. */
static int copy_part(CURLU *u, CURLUPart part, unsigned flags, char **dst)
{
    char *s = NULL;
    *dst = NULL;
    if (curl_url_get(u, part, &s, flags) != CURLUE_OK || !s)
        return 0;
    *dst = strdup(s);
    OPENSSL_cleanse(s, strlen(s));
    curl_free(s);
    return *dst ? 0 : -1;
}

int jj_http_parse_url(const char *url, jj_http_url *out, jj_error *err)
{
    memset(out, 0, sizeof *out);
    CURLU *u = curl_url();
    if (!u)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        curl_url_cleanup(u);
        return jj_error_set_lib(err, JJ_EINVAL, uc, "invalid URL: %s", curl_url_strerror(uc));
    }
    int bad = copy_part(u, CURLUPART_SCHEME, 0, &out->scheme);
    bad |= copy_part(u, CURLUPART_HOST, 0, &out->host);
    bad |= copy_part(u, CURLUPART_PATH, 0, &out->path);
    bad |= copy_part(u, CURLUPART_QUERY, 0, &out->query);
    bad |= copy_part(u, CURLUPART_FRAGMENT, 0, &out->fragment);
    bad |= copy_part(u, CURLUPART_USER, CURLU_URLDECODE, &out->user);
    bad |= copy_part(u, CURLUPART_PASSWORD, CURLU_URLDECODE, &out->password);
    char *port = NULL;
    if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK && port) {
        out->port = atoi(port);
        curl_free(port);
    }
    curl_url_cleanup(u);
    if (bad) {
        jj_http_url_free(out);
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    }
    return 0;
}

/* ---- one transfer -------------------------------------------------------- */

enum abort_reason {
    ABORT_NONE, ABORT_CALLBACK, ABORT_RANGE, ABORT_WRITE, ABORT_READ, ABORT_NOMEM, ABORT_IDLE,
    ABORT_CANCEL, ABORT_DEADLINE, ABORT_CHANGED
};

typedef struct xfer {
    const jj_http_request *req;
    jj_http_response *resp;
    const char *method;
    char safe_url[URL_MSG_MAX];
    int head;            /* HEAD: no body expected */
    int file_scheme;
    int https;
    int out_fd;          /* to_file's temp file, or -1 */
    char *tmp_path;
    int in_fd;           /* body_file, or -1 */
    long long in_size;
    struct timespec in_mtime; /* body_file's when opened: it must not change */
    jj_hasher *hasher;   /* SHA-256 of the body bytes libcurl has read so far */
    long long sent;      /* body bytes libcurl has read this attempt */
    curl_mime *mime;     /* the multipart body, or NULL */
    double deadline_at;  /* monotonic time the deadline ends; 0 = none */
    double waited;       /* seconds handed to the caller's sleep function */
    int capped;          /* this attempt's time limit is the deadline's rest */
    size_t mem_off;      /* position in req->body */
    long status;         /* of the response being received; 0 before/for file:// */
    long long received;  /* success-body bytes this attempt */
    int delivered;       /* on_data has been called this attempt */
    int abort;
    int abort_errno;
    curl_off_t last_dl, last_ul; /* progress counters at last_change */
    double last_change;          /* when bytes last moved (monotonic) */
    jj_sys_cancel_scope cancel;  /* the request's, begun by jj_http_perform */
    jj_error cancel_err;         /* why, when abort == ABORT_CANCEL */
    char what[URL_MSG_MAX + METHOD_MAX + 2]; /* "<method> <safe url>" */
} xfer;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds left of the request's deadline (a huge number when it has none). */
static double time_left(const xfer *x)
{
    if (x->deadline_at <= 0)
        return 1e18;
    return x->deadline_at - now() - x->waited;
}

/* The idle timeout. libcurl's LOW_SPEED_TIME averages over a window of
 * several seconds, so a stall right after a few bytes would only be noticed
 * ~5 s late; this checks "no byte moved for idle_timeout" directly (libcurl
 * calls it at least once a second). */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    xfer *x = ud;
    (void)dltotal;
    (void)ultotal;
    /* Cancellation: libcurl calls this after every wake-up of its poll
     * (a watched signal interrupts it) and at least once a second. */
    if (jj_sys_cancel_check(&x->cancel, x->what, &x->cancel_err)) {
        x->abort = ABORT_CANCEL;
        return 1;
    }
    if (time_left(x) <= 0) {
        x->abort = ABORT_DEADLINE;
        return 1;
    }
    double t = now();
    if (dlnow != x->last_dl || ulnow != x->last_ul) {
        x->last_dl = dlnow;
        x->last_ul = ulnow;
        x->last_change = t;
        return 0;
    }
    if (x->req->idle_timeout > 0 && t - x->last_change >= x->req->idle_timeout) {
        x->abort = ABORT_IDLE;
        return 1;
    }
    return 0;
}

static const char *standard_reason(long status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}

/* Appends to the in-memory body, at most up to limit bytes in total. */
static int body_append(jj_http_response *r, const char *p, size_t len, size_t limit)
{
    if (r->body_len >= limit)
        return 0;
    if (len > limit - r->body_len)
        len = limit - r->body_len;
    if (len >= r->body_cap - r->body_len || !r->body) {
        if (len > SIZE_MAX / 2 - r->body_len - 1)
            return -1;
        size_t cap = r->body_cap ? r->body_cap : 16384;
        while (cap <= r->body_len + len)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (!nb)
            return -1;
        r->body = nb;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, p, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static size_t abort_with(xfer *x, int reason, int errnum)
{
    x->abort = reason;
    x->abort_errno = errnum;
    return 0;
}

static int unfollowed_redirect(const xfer *x)
{
    return !x->req->follow_redirects && x->status >= 300 && x->status < 400 && !x->file_scheme;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t len = size * nmemb;
    /* An error body, or the body of a redirect the caller follows itself:
     * kept (capped) for the caller to inspect, never given to the sink. */
    if (x->status >= 400 || unfollowed_redirect(x))
        return body_append(x->resp, p, len, ERROR_BODY_MAX) ? abort_with(x, ABORT_NOMEM, 0)
                                                            : len;
    const jj_http_request *req = x->req;
    if (req->max_size >= 0 && (long long)len > req->max_size - x->received)
        return abort_with(x, ABORT_RANGE, 0);
    x->received += (long long)len;
    if (x->out_fd >= 0) {
        if (write_all(x->out_fd, p, len))
            return abort_with(x, ABORT_WRITE, errno);
    } else if (req->on_data) {
        x->delivered = 1;
        if (req->on_data(req->on_data_ud, p, len))
            return abort_with(x, ABORT_CALLBACK, 0);
    } else if (body_append(x->resp, p, len, SIZE_MAX - 1)) {
        return abort_with(x, ABORT_NOMEM, 0);
    }
    return len;
}

static char *dup_trimmed(const char *p, size_t len, int lower)
{
    while (len && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < len; i++)
        s[i] = lower && p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] - 'A' + 'a') : p[i];
    s[len] = '\0';
    return s;
}

static int add_header(jj_http_response *r, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return 0; /* not a header line: ignore, like libcurl does */
    if (r->nheaders == r->headers_cap) {
        size_t cap = r->headers_cap ? r->headers_cap * 2 : 16;
        jj_http_header *nh = realloc(r->headers, cap * sizeof *nh);
        if (!nh)
            return -1;
        r->headers = nh;
        r->headers_cap = cap;
    }
    char *name = dup_trimmed(line, (size_t)(colon - line), 1);
    char *value = dup_trimmed(colon + 1, len - (size_t)(colon - line) - 1, 0);
    if (!name || !value) {
        free(name);
        free(value);
        return -1;
    }
    r->headers[r->nheaders].name = name;
    r->headers[r->nheaders].value = value;
    r->nheaders++;
    return 0;
}

/* Obsolete line folding: the line continues the previous header's value. */
static int continue_header(jj_http_response *r, const char *line, size_t len)
{
    jj_http_header *h = &r->headers[r->nheaders - 1];
    char *more = dup_trimmed(line, len, 0);
    if (!more)
        return -1;
    size_t a = strlen(h->value), b = strlen(more);
    char *v = realloc(h->value, a + b + 2);
    if (!v) {
        free(more);
        return -1;
    }
    v[a] = ' ';
    memcpy(v + a + 1, more, b + 1);
    h->value = v;
    free(more);
    return 0;
}

static void status_line(xfer *x, const char *line, size_t len)
{
    jj_http_response *r = x->resp;
    clear_headers(r); /* a new response (redirect, 100 Continue): start over */
    r->body_len = 0;
    const char *sp = memchr(line, ' ', len);
    long code = 0;
    const char *reason = "";
    size_t rlen = 0;
    if (sp) {
        const char *p = sp + 1, *end = line + len;
        while (p < end && *p >= '0' && *p <= '9' && code < 1000)
            code = code * 10 + (*p++ - '0');
        while (p < end && *p == ' ')
            p++;
        reason = p;
        rlen = (size_t)(end - p);
    }
    x->status = code;
    if (rlen >= sizeof r->reason)
        rlen = sizeof r->reason - 1;
    memcpy(r->reason, reason, rlen);
    r->reason[rlen] = '\0';
}

static const char *find_header(const jj_http_response *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t len = size * nmemb, n = len;
    while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        status_line(x, p, n);
        return len;
    }
    if (n == 0) {
        /* End of headers: refuse an announced oversize body up front. */
        const char *cl = find_header(x->resp, "content-length");
        if (cl && !x->head && x->status >= 200 && x->status < 300 && x->req->max_size >= 0 &&
            strtoll(cl, NULL, 10) > x->req->max_size)
            return abort_with(x, ABORT_RANGE, 0);
        return len;
    }
    int rc = (p[0] == ' ' || p[0] == '\t') && x->resp->nheaders
                 ? continue_header(x->resp, p, n)
                 : add_header(x->resp, p, n);
    return rc ? abort_with(x, ABORT_NOMEM, 0) : len;
}

/* Feeds the bytes libcurl takes into the body hash. */
static int hash_sent(xfer *x, const char *p, size_t n)
{
    x->sent += (long long)n;
    if (!x->hasher || !n)
        return 0;
    jj_error e;
    return jj_hasher_update(x->hasher, p, n, &e) ? abort_with(x, ABORT_NOMEM, 0), -1 : 0;
}

static size_t on_read(char *buf, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t room = size * nmemb;
    if (x->in_fd >= 0) {
        ssize_t r;
        do
            r = read(x->in_fd, buf, room);
        while (r < 0 && errno == EINTR);
        if (r < 0) {
            abort_with(x, ABORT_READ, errno);
            return CURL_READFUNC_ABORT;
        }
        /* Shorter or longer than when it was opened (and signed). */
        if ((r == 0 && room && x->sent < x->in_size) || (long long)r > x->in_size - x->sent) {
            abort_with(x, ABORT_CHANGED, 0);
            return CURL_READFUNC_ABORT;
        }
        if (hash_sent(x, buf, (size_t)r))
            return CURL_READFUNC_ABORT;
        return (size_t)r;
    }
    size_t left = x->req->body ? x->req->body_len - x->mem_off : 0;
    if (room > left)
        room = left;
    if (room)
        memcpy(buf, x->req->body + x->mem_off, room);
    x->mem_off += room;
    if (hash_sent(x, buf, room))
        return CURL_READFUNC_ABORT;
    return room;
}

/* Starts the body hash again as if the first `offset` bytes had just been
 * sent (after libcurl rewound the upload). 0, or -1 with x->abort set. */
static int restart_hash(xfer *x, long long offset)
{
    jj_error e;
    jj_hasher_free(x->hasher);
    x->hasher = NULL;
    x->sent = 0;
    if (jj_hasher_new(JJ_DIGEST_SHA256, &x->hasher, &e))
        return abort_with(x, ABORT_NOMEM, 0), -1;
    if (x->in_fd < 0)
        return hash_sent(x, x->req->body, (size_t)offset);
    char buf[16384];
    while (x->sent < offset) {
        size_t want = offset - x->sent < (long long)sizeof buf ? (size_t)(offset - x->sent)
                                                                : sizeof buf;
        ssize_t r = pread(x->in_fd, buf, want, (off_t)x->sent);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return abort_with(x, r < 0 ? ABORT_READ : ABORT_CHANGED, errno), -1;
        if (hash_sent(x, buf, (size_t)r))
            return -1;
    }
    return 0;
}

/* libcurl rewinds the upload for redirects and re-sent requests. */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
    xfer *x = ud;
    if (origin != SEEK_SET || offset < 0)
        return CURL_SEEKFUNC_CANTSEEK;
    if (x->in_fd >= 0) {
        if (offset > x->in_size || lseek(x->in_fd, (off_t)offset, SEEK_SET) < 0)
            return CURL_SEEKFUNC_FAIL;
    } else {
        if ((unsigned long long)offset > (unsigned long long)x->req->body_len)
            return CURL_SEEKFUNC_FAIL;
        x->mem_off = (size_t)offset;
    }
    return restart_hash(x, (long long)offset) ? CURL_SEEKFUNC_FAIL : CURL_SEEKFUNC_OK;
}

static int valid_method(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > METHOD_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return 0;
    return 1;
}

static int header_named(const char *line, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(line, name, n) == 0 && (line[n] == ':' || line[n] == ';');
}

/* Headers may carry credentials: wipe libcurl's copies before freeing. */
static void free_slist(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        OPENSSL_cleanse(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

static int build_headers(xfer *x, struct curl_slist **out, jj_error *err)
{
    struct curl_slist *l = NULL, *nl;
    int has_expect = 0;
    for (const char *const *h = x->req->headers; h && *h; h++) {
        const char *line = *h;
        const char *colon = strpbrk(line, ":;");
        if (strpbrk(line, "\r\n") || !colon || colon == line) {
            free_slist(l);
            return jj_error_set(err, JJ_EINVAL, "%s %s: malformed request header", x->method,
                                x->safe_url);
        }
        has_expect |= header_named(line, "expect");
        if (!(nl = curl_slist_append(l, line)))
            goto nomem;
        l = nl;
    }
    /* A server that ignores "Expect: 100-continue" would cost each upload a
     * one-second stall; the caller can still ask for it explicitly. */
    if (!has_expect) {
        if (!(nl = curl_slist_append(l, "Expect:")))
            goto nomem;
        l = nl;
    }
    *out = l;
    return 0;
nomem:
    free_slist(l);
    return jj_error_set(err, JJ_ENOMEM, "out of memory");
}

static CURLcode set_method(CURL *c, xfer *x)
{
    const jj_http_request *req = x->req;
    int has_body = req->body || req->body_file;
    curl_off_t size = req->body_file ? (curl_off_t)x->in_size : (curl_off_t)req->body_len;
    CURLcode rc = CURLE_OK;
    if (x->mime) {
        rc |= curl_easy_setopt(c, CURLOPT_MIMEPOST, x->mime);
        if (strcmp(x->method, "POST") != 0)
            rc |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, x->method);
        return rc;
    }
    if (has_body) {
        rc |= curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        rc |= curl_easy_setopt(c, CURLOPT_READDATA, x);
        rc |= curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
        rc |= curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
    }
    if (strcmp(x->method, "HEAD") == 0) {
        rc |= curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(x->method, "POST") == 0) {
        rc |= curl_easy_setopt(c, CURLOPT_POST, 1L);
        rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, has_body ? size : (curl_off_t)0);
        if (!has_body)
            rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    } else if (has_body || strcmp(x->method, "PUT") == 0) {
        rc |= curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        rc |= curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, has_body ? size : (curl_off_t)0);
        if (!has_body) {
            rc |= curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            rc |= curl_easy_setopt(c, CURLOPT_READDATA, x);
        }
        if (strcmp(x->method, "PUT") != 0)
            rc |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, x->method);
    } else if (strcmp(x->method, "GET") == 0) {
        rc |= curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        rc |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, x->method);
    }
    return rc;
}

static inline long to_ms(double seconds)
{
    return seconds >= (double)LONG_MAX / 1000 ? LONG_MAX : (long)(seconds * 1000);
}

/* The multipart body: data parts copied by libcurl, file parts streamed
 * from disk when sent (libcurl rewinds them for retries and redirects). */
static int build_mime(CURL *c, xfer *x, jj_error *err)
{
    const jj_http_request *req = x->req;
    if (!req->nparts)
        return 0;
    if (!(x->mime = curl_mime_init(c)))
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    for (size_t i = 0; i < req->nparts; i++) {
        const jj_http_part *p = &req->parts[i];
        curl_mimepart *mp = curl_mime_addpart(x->mime);
        if (!mp)
            return jj_error_set(err, JJ_ENOMEM, "out of memory");
        CURLcode rc = curl_mime_name(mp, p->name);
        if (p->file) {
            rc |= curl_mime_filedata(mp, p->file);
            if (p->filename)
                rc |= curl_mime_filename(mp, p->filename);
            if (!p->content_type)
                rc |= curl_mime_type(mp, "application/octet-stream");
        } else {
            rc |= curl_mime_data(mp, p->data ? p->data : "", p->data ? p->data_len : 0);
            if (p->filename)
                rc |= curl_mime_filename(mp, p->filename);
        }
        if (p->content_type)
            rc |= curl_mime_type(mp, p->content_type);
        if (rc != CURLE_OK)
            return jj_error_set_lib(err, JJ_ENOMEM, rc, "%s %s: cannot build multipart part %zu",
                                    x->method, x->safe_url, i + 1);
    }
    return 0;
}

static CURLcode set_client_cert(CURL *c, const jj_http_request *req)
{
    CURLcode rc = CURLE_OK;
    /* NOCOPY: the PEM stays in the caller's memory, which outlives the
     * transfer; the options are cleared before jj_http_perform returns. */
    if (req->client_cert) {
        struct curl_blob cert = {(void *)req->client_cert, req->client_cert_len,
                                 CURL_BLOB_NOCOPY};
        rc |= curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert);
        rc |= curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (req->client_key) {
        struct curl_blob key = {(void *)req->client_key, req->client_key_len,
                                CURL_BLOB_NOCOPY};
        rc |= curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
        rc |= curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
    }
    return rc;
}

static int setup(jj_http *h, xfer *x, struct curl_slist *headers, jj_error *err)
{
    const jj_http_request *req = x->req;
    CURL *c = h->curl;
    curl_easy_reset(c); /* keeps the connection cache */
    h->errbuf[0] = '\0';
    CURLcode rc = curl_easy_setopt(c, CURLOPT_URL, req->url);
    if (rc != CURLE_OK)
        return jj_error_set_lib(err, JJ_EINVAL, rc, "%s %s: %s", x->method, x->safe_url,
                                curl_easy_strerror(rc));
    rc |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
    rc |= curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    rc |= curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    rc |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    rc |= curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    rc |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L);
    rc |= curl_easy_setopt(c, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
    rc |= curl_easy_setopt(c, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    if (req->connect_timeout > 0)
        rc |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, to_ms(req->connect_timeout));
    /* Always: it checks cancellation and the deadline, not only idling. */
    rc |= curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    rc |= curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    rc |= curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (req->user_agent)
        rc |= curl_easy_setopt(c, CURLOPT_USERAGENT, req->user_agent);
    if (req->insecure) {
        rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (req->ca_file)
        rc |= curl_easy_setopt(c, CURLOPT_CAINFO, req->ca_file);
    if (req->use_proxy) {
        const char *p = x->https ? req->proxy_https : req->proxy_http;
        rc |= curl_easy_setopt(c, CURLOPT_PROXY, p ? p : "");
        rc |= curl_easy_setopt(c, CURLOPT_NOPROXY, req->no_proxy ? req->no_proxy : "");
    }
    if (x->file_scheme && req->max_size >= 0)
        rc |= curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_size);
    rc |= set_client_cert(c, req);
    if (rc == CURLE_OK && build_mime(c, x, err))
        return err->code;
    rc |= set_method(c, x);
    if (rc != CURLE_OK) /* only on an option this libcurl lacks or no memory */
        return jj_error_set_lib(err, JJ_EHTTP, rc, "%s %s: cannot set up libcurl", x->method,
                                x->safe_url);
    return 0;
}

static int same_time(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* body_file differs in size or modification time from when it was opened. */
static int body_file_changed(const xfer *x)
{
    struct stat st;
    if (x->in_fd < 0)
        return 0;
    return fstat(x->in_fd, &st) != 0 || (long long)st.st_size != x->in_size ||
           !same_time(st.st_mtim, x->in_mtime);
}

static int changed_error(const xfer *x, jj_error *err)
{
    return jj_error_set(err, JJ_EIO,
                        "%s %s: %s changed while it was being sent, so what was signed is not what "
                        "was sent; retry once the file is no longer being written",
                        x->method, x->safe_url, x->req->body_file);
}

static int deadline_error(const xfer *x, jj_error *err)
{
    return jj_error_set(err, JJ_EHTTP_TIMEOUT,
                        "%s %s: no complete answer within the request's deadline of %g seconds",
                        x->method, x->safe_url, x->req->deadline);
}

/* Gets ready for one more attempt: nothing of the previous one survives. */
static int reset_attempt(xfer *x, jj_error *err)
{
    jj_http_response *r = x->resp;
    clear_headers(r);
    r->body_len = 0;
    r->status = 0;
    r->reason[0] = '\0';
    r->size = 0;
    x->status = 0;
    x->received = 0;
    x->delivered = 0;
    x->abort = ABORT_NONE;
    x->abort_errno = 0;
    x->mem_off = 0;
    x->last_dl = x->last_ul = 0;
    x->last_change = now();
    if (x->out_fd >= 0 && (ftruncate(x->out_fd, 0) || lseek(x->out_fd, 0, SEEK_SET) < 0))
        return jj_error_errno(err, errno, "%s %s: cannot rewind %s", x->method, x->safe_url,
                              x->tmp_path);
    if (x->in_fd >= 0 && lseek(x->in_fd, 0, SEEK_SET) < 0)
        return jj_error_errno(err, errno, "%s %s: cannot rewind %s", x->method, x->safe_url,
                              x->req->body_file);
    if (body_file_changed(x))
        return changed_error(x, err);
    x->resp->body_sha256[0] = '\0';
    if ((x->req->body || x->in_fd >= 0) && restart_hash(x, 0))
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    return 0;
}

/* Each attempt may run until the deadline (or its own timeout, if sooner). */
static int set_attempt_timeout(jj_http *h, xfer *x, jj_error *err)
{
    double limit = x->req->timeout > 0 ? x->req->timeout : 0;
    double left = time_left(x);
    x->capped = 0;
    if (x->deadline_at > 0) {
        if (left <= 0)
            return deadline_error(x, err);
        if (limit == 0 || left < limit) {
            limit = left;
            x->capped = 1;
        }
    }
    long ms = limit > 0 ? to_ms(limit) : 0;
    if (limit > 0 && ms < 1)
        ms = 1;
    if (curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, ms) != CURLE_OK)
        return jj_error_set(err, JJ_EHTTP, "%s %s: cannot set up libcurl", x->method, x->safe_url);
    return 0;
}

/* The body's digest, when the attempt sent all of it. */
static void note_body_sha256(xfer *x)
{
    static const char hex[] = "0123456789abcdef";
    long long total = x->in_fd >= 0 ? x->in_size : (long long)x->req->body_len;
    unsigned char md[32];
    jj_error e;
    if (!x->hasher || x->sent != total || jj_hasher_final(x->hasher, md, &e))
        return;
    for (int i = 0; i < 32; i++) {
        x->resp->body_sha256[2 * i] = hex[md[i] >> 4];
        x->resp->body_sha256[2 * i + 1] = hex[md[i] & 15];
    }
    x->resp->body_sha256[64] = '\0';
}

static int is_transient(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return 1;
    default:
        return 0;
    }
}

/* errno for a file:// URL libcurl could not read. */
static int file_url_errno(const char *url)
{
    CURLU *u = curl_url();
    char *path = NULL;
    int e = EIO;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) == CURLUE_OK && path) {
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            e = errno;
        else {
            if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
                e = EISDIR;
            close(fd);
        }
    }
    curl_free(path);
    curl_url_cleanup(u);
    return e;
}

static void attempts_suffix(jj_error *err, int attempts)
{
    size_t n = strlen(err->message);
    if (attempts > 1 && n < sizeof err->message)
        snprintf(err->message + n, sizeof err->message - n, " (after %d attempts)", attempts);
}

/* Classifies the attempt's outcome: 0 on success, else a JJ_E* code in err
 * with *retry telling whether another attempt could help. */
static int outcome(jj_http *h, xfer *x, CURLcode rc, int *retry, jj_error *err)
{
    jj_http_response *r = x->resp;
    *retry = 0;
    switch (x->abort) {
    case ABORT_CALLBACK:
        return jj_error_set(err, JJ_EINTERRUPTED, "%s %s: transfer aborted by the data callback",
                            x->method, x->safe_url);
    case ABORT_RANGE:
        return jj_error_set_lib(err, JJ_ERANGE, rc, "%s %s: response body exceeds max_size (%lld bytes)",
                                x->method, x->safe_url, x->req->max_size);
    case ABORT_WRITE:
        return jj_error_errno(err, x->abort_errno, "%s %s: cannot write %s", x->method,
                              x->safe_url, x->tmp_path);
    case ABORT_READ:
        return jj_error_errno(err, x->abort_errno, "%s %s: cannot read %s", x->method,
                              x->safe_url, x->req->body_file);
    case ABORT_NOMEM:
        return jj_error_set(err, JJ_ENOMEM, "%s %s: out of memory", x->method, x->safe_url);
    case ABORT_CANCEL:
        *err = x->cancel_err;
        err->lib_code = rc;
        return err->code;
    case ABORT_DEADLINE:
        return deadline_error(x, err);
    case ABORT_CHANGED:
        return changed_error(x, err);
    case ABORT_IDLE:
        *retry = 1;
        return jj_error_set_lib(err, JJ_EHTTP_TIMEOUT, rc, "%s %s: no data moved for %g seconds",
                                x->method, x->safe_url, x->req->idle_timeout);
    default:
        break;
    }
    const char *detail = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
        if (x->file_scheme && status == 0)
            status = 200;
        if (status != x->status)
            r->reason[0] = '\0';
        if (!r->reason[0])
            snprintf(r->reason, sizeof r->reason, "%s", standard_reason(status));
        r->status = status;
        r->size = x->received;
        if (body_file_changed(x))
            return changed_error(x, err);
        if (status < 400)
            return 0;
        *retry = status >= 500 || status == 429;
        int code = status == 404 || status == 410 ? JJ_ENOENT : JJ_EHTTP;
        return jj_error_set_lib(err, code, status, "%s %s: %ld%s%s", x->method, x->safe_url,
                                status, r->reason[0] ? " " : "", r->reason);
    }
    if (rc == CURLE_FILESIZE_EXCEEDED)
        return jj_error_set_lib(err, JJ_ERANGE, rc, "%s %s: response body exceeds max_size (%lld bytes)",
                                x->method, x->safe_url, x->req->max_size);
    if (rc == CURLE_FILE_COULDNT_READ_FILE && x->file_scheme) {
        jj_error_errno(err, file_url_errno(x->req->url), "%s %s", x->method, x->safe_url);
        err->lib_code = rc;
        return err->code;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT && x->capped && time_left(x) <= DEADLINE_SLACK)
        return deadline_error(x, err);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        *retry = 1;
        return jj_error_set_lib(err, JJ_EHTTP_TIMEOUT, rc, "%s %s: %s", x->method, x->safe_url,
                                detail);
    }
    if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT)
        return jj_error_set_lib(err, JJ_EINVAL, rc, "%s %s: %s", x->method, x->safe_url, detail);
    *retry = is_transient(rc);
    return jj_error_set_lib(err, JJ_EHTTP, rc, "%s %s: %s", x->method, x->safe_url, detail);
}

static int prepare_files(xfer *x, jj_error *err)
{
    const jj_http_request *req = x->req;
    if (req->body_file) {
        x->in_fd = open(req->body_file, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (x->in_fd < 0 || fstat(x->in_fd, &st) != 0)
            return jj_error_errno(err, errno, "%s %s: cannot open %s", x->method, x->safe_url,
                                  req->body_file);
        if (!S_ISREG(st.st_mode))
            return jj_error_set(err, JJ_EINVAL, "%s %s: %s is not a regular file", x->method,
                                x->safe_url, req->body_file);
        x->in_size = (long long)st.st_size;
        x->in_mtime = st.st_mtim;
    }
    /* libcurl would only notice a missing part file mid-request. */
    for (size_t i = 0; i < req->nparts; i++) {
        const char *f = req->parts[i].file;
        struct stat st;
        if (!f)
            continue;
        int fd = open(f, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) != 0) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            return jj_error_errno(err, e, "%s %s: cannot open multipart file %s", x->method,
                                  x->safe_url, f);
        }
        close(fd);
        if (!S_ISREG(st.st_mode))
            return jj_error_set(err, JJ_EINVAL, "%s %s: multipart file %s is not a regular file",
                                x->method, x->safe_url, f);
    }
    if (req->to_file) {
        size_t n = strlen(req->to_file);
        if (n == 0)
            return jj_error_set(err, JJ_EINVAL, "%s %s: empty to_file path", x->method,
                                x->safe_url);
        if (!(x->tmp_path = malloc(n + sizeof ".part-XXXXXX")))
            return jj_error_set(err, JJ_ENOMEM, "out of memory");
        memcpy(x->tmp_path, req->to_file, n);
        memcpy(x->tmp_path + n, ".part-XXXXXX", sizeof ".part-XXXXXX");
        x->out_fd = mkostemp(x->tmp_path, O_CLOEXEC);
        if (x->out_fd < 0) {
            int e = errno;
            free(x->tmp_path);
            x->tmp_path = NULL;
            return jj_error_errno(err, e, "%s %s: cannot create a file beside %s", x->method,
                                  x->safe_url, req->to_file);
        }
    }
    return 0;
}

/* Moves the finished download into place, or removes it. */
static int finish_files(xfer *x, int ok, jj_error *err)
{
    int rc = 0;
    if (x->in_fd >= 0)
        close(x->in_fd);
    x->in_fd = -1;
    if (x->out_fd < 0)
        return 0;
    if (ok && fsync(x->out_fd) != 0)
        rc = jj_error_errno(err, errno, "%s %s: cannot write %s", x->method, x->safe_url,
                            x->tmp_path);
    if (close(x->out_fd) != 0 && ok && !rc)
        rc = jj_error_errno(err, errno, "%s %s: cannot write %s", x->method, x->safe_url,
                            x->tmp_path);
    x->out_fd = -1;
    if (ok && !rc && rename(x->tmp_path, x->req->to_file) != 0)
        rc = jj_error_errno(err, errno, "%s %s: cannot rename %s to %s", x->method,
                            x->safe_url, x->tmp_path, x->req->to_file);
    if (!ok || rc)
        unlink(x->tmp_path);
    free(x->tmp_path);
    x->tmp_path = NULL;
    return rc;
}

static int wait_before_retry(xfer *x, double delay, jj_error *err)
{
    if (delay >= time_left(x)) {
        char last[JJ_ERROR_MSG_MAX];
        snprintf(last, sizeof last, "%s", err->message);
        deadline_error(x, err);
        size_t n = strlen(err->message);
        snprintf(err->message + n, sizeof err->message - n, "; the last attempt: %s", last);
        return err->code;
    }
    char what[URL_MSG_MAX + METHOD_MAX + 32];
    snprintf(what, sizeof what, "%s %s: waiting to retry", x->method, x->safe_url);
    if (!x->req->sleep)
        return jj_sys_cancel_sleep(&x->cancel, delay, what, err);
    int rc = jj_sys_cancel_check(&x->cancel, what, err);
    if (rc)
        return rc;
    x->waited += delay;
    if (x->req->sleep(x->req->sleep_ud, delay))
        return jj_error_set(err, JJ_EINTERRUPTED, "%s %s: interrupted while waiting to retry",
                            x->method, x->safe_url);
    return jj_sys_cancel_check(&x->cancel, what, err);
}

static int check_request(xfer *x, jj_error *err)
{
    const jj_http_request *req = x->req;
    if (!valid_method(x->method))
        return jj_error_set(err, JJ_EINVAL, "invalid HTTP method");
    CURLU *u = curl_url();
    if (!u)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    char *scheme = NULL;
    CURLUcode uc = req->url ? curl_url_set(u, CURLUPART_URL, req->url, 0) : CURLUE_BAD_HANDLE;
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    int rc = 0;
    if (uc != CURLUE_OK) {
        rc = jj_error_set_lib(err, JJ_EINVAL, uc, "%s %s: invalid URL (%s)", x->method,
                              x->safe_url, curl_url_strerror(uc));
    } else if (strcmp(scheme, "http") && strcmp(scheme, "https") && strcmp(scheme, "file")) {
        rc = jj_error_set(err, JJ_EINVAL, "%s %s: unsupported URL scheme \"%s\"", x->method,
                          x->safe_url, scheme);
    } else {
        x->https = strcmp(scheme, "https") == 0;
        x->file_scheme = strcmp(scheme, "file") == 0;
    }
    curl_free(scheme);
    curl_url_cleanup(u);
    if (!rc && req->body && req->body_file)
        rc = jj_error_set(err, JJ_EINVAL, "%s %s: body and body_file are exclusive", x->method,
                          x->safe_url);
    if (!rc && req->nparts && (req->body || req->body_file))
        rc = jj_error_set(err, JJ_EINVAL, "%s %s: multipart and body/body_file are exclusive",
                          x->method, x->safe_url);
    for (size_t i = 0; !rc && i < req->nparts; i++) {
        const jj_http_part *p = &req->parts[i];
        if (!p->name || !*p->name || !p->data == !p->file)
            rc = jj_error_set(err, JJ_EINVAL,
                              "%s %s: multipart part %zu needs a name and one of data or file",
                              x->method, x->safe_url, i + 1);
    }
    if (!rc && req->to_file && req->on_data)
        rc = jj_error_set(err, JJ_EINVAL, "%s %s: to_file and on_data are exclusive",
                          x->method, x->safe_url);
    return rc;
}

int jj_http_perform(jj_http *h, const jj_http_request *req, jj_http_response *resp,
                    jj_error *err)
{
    double start = now();
    jj_http_response_free(resp);
    xfer x;
    memset(&x, 0, sizeof x);
    x.req = req;
    x.resp = resp;
    x.method = req->method ? req->method : req->nparts ? "POST" : "GET";
    x.head = strcmp(x.method, "HEAD") == 0;
    x.out_fd = x.in_fd = -1;
    jj_sys_cancel_begin(&x.cancel, req->cancel);
    if (req->deadline > 0)
        x.deadline_at = start + req->deadline;
    jj_http_safe_url(req->url, x.safe_url, sizeof x.safe_url);
    snprintf(x.what, sizeof x.what, "%.*s %s", METHOD_MAX, x.method, x.safe_url);

    struct curl_slist *headers = NULL;
    int rc = check_request(&x, err);
    if (!rc)
        rc = build_headers(&x, &headers, err);
    if (!rc)
        rc = prepare_files(&x, err);
    if (!rc)
        rc = setup(h, &x, headers, err);
    double delay = req->retry_delay > 0 ? req->retry_delay : 0;
    for (int attempt = 1; !rc; attempt++) {
        rc = reset_attempt(&x, err);
        if (rc)
            break;
        /* No attempt starts once the request is cancelled. */
        if ((rc = jj_sys_cancel_check(&x.cancel, x.what, err)) != 0)
            break;
        if ((rc = set_attempt_timeout(h, &x, err)) != 0)
            break;
        resp->attempts = attempt;
        CURLcode cc = curl_easy_perform(h->curl);
        int retry;
        rc = outcome(h, &x, cc, &retry, err);
        note_body_sha256(&x);
        /* Chunks already handed to on_data cannot be taken back. */
        if (!rc || !retry || attempt > req->retries || x.delivered)
            break;
        rc = wait_before_retry(&x, delay < RETRY_DELAY_CAP ? delay : RETRY_DELAY_CAP, err);
        delay *= 2;
    }
    if (rc)
        attempts_suffix(err, resp->attempts);
    /* A redirect's body is not the download. */
    int frc = finish_files(&x, rc == 0 && !unfollowed_redirect(&x), err);
    if (!rc)
        rc = frc;
    if (resp->attempts) {
        char *url = NULL;
        if (curl_easy_getinfo(h->curl, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url)
            resp->url = clean_url(url, 0);
    }
    /* Pointers into x (on this stack) must not outlive the call. */
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h->curl, CURLOPT_SSLCERT_BLOB, NULL);
    curl_easy_setopt(h->curl, CURLOPT_SSLKEY_BLOB, NULL);
    curl_easy_setopt(h->curl, CURLOPT_MIMEPOST, NULL);
    curl_mime_free(x.mime);
    jj_hasher_free(x.hasher);
    free_slist(headers);
    resp->elapsed = now() - start;
    return rc;
}
