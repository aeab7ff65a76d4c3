/* test_http.c: core/http against tests/integration/httpd.py on loopback. */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "http.h"

extern char **environ;

static pid_t server_pid = -1;
static char base[64];   /* http://127.0.0.1:PORT */
static char tmpdir[64];

static int start_server(void)
{
    const char *src = getenv("JUJU_TEST_SOURCE_DIR");
    char script[1024];
    snprintf(script, sizeof script, "%s/tests/integration/httpd.py", src ? src : ".");
    int fds[2];
    if (pipe(fds))
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    char *argv[] = {"/usr/bin/python3", script, NULL};
    int rc = posix_spawn(&server_pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc) {
        close(fds[0]);
        return -1;
    }
    FILE *f = fdopen(fds[0], "r");
    char line[32];
    int port = f && fgets(line, sizeof line, f) ? atoi(line) : 0;
    if (f)
        fclose(f);
    if (port <= 0)
        return -1;
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    return 0;
}

static void stop_server(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
}

static const char *url(const char *path)
{
    static char buf[4][256];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s%s", base, path);
    return b;
}

static int pattern_ok(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] != i % 251)
            return 0;
    return 1;
}

static const char *header(const jj_http_response *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* A fake sleep on a virtual clock: records each delay. */
typedef struct clock_rec {
    double delays[16];
    int n;
    int fail_at; /* return non-zero on this call (1-based), 0 never */
} clock_rec;

static int fake_sleep(void *ud, double s)
{
    clock_rec *c = ud;
    if (c->n < 16)
        c->delays[c->n] = s;
    c->n++;
    return c->fail_at && c->n == c->fail_at;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static jj_http *H;

static int run(jj_http_request *req, jj_http_response *resp, jj_error *err)
{
    jj_error_clear(err);
    return jj_http_perform(H, req, resp, err);
}

static void test_get_into_memory(void)
{
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/file/100000");
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), 0);
    CHECK_INT(resp.status, 200);
    CHECK_STR(resp.reason, "OK");
    CHECK_INT(resp.body_len, 100000);
    CHECK_INT(resp.size, 100000);
    CHECK(resp.body && pattern_ok(resp.body, resp.body_len));
    CHECK_STR(header(&resp, "content-length"), "100000");
    CHECK_STR(header(&resp, "content-type"), "application/octet-stream");
    CHECK_STR(resp.url, req.url);
    CHECK_INT(resp.attempts, 1);
    CHECK(resp.elapsed > 0 && resp.elapsed < 10);
    jj_http_response_free(&resp);
    CHECK(resp.body == NULL && resp.nheaders == 0);
}

static void test_not_found_is_enoent(void)
{
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/status/404");
    req.retries = 3; /* a 404 is never retried */
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), JJ_ENOENT);
    char want[256];
    snprintf(want, sizeof want, "GET %s: 404 Not Found", req.url);
    CHECK_STR(err.message, want);
    CHECK_INT(err.lib_code, 404);
    CHECK_INT(resp.status, 404);
    CHECK_INT(resp.attempts, 1);
    CHECK(resp.body && strcmp(resp.body, "status 404\n") == 0);

    req.url = url("/status/410");
    CHECK_INT(run(&req, &resp, &err), JJ_ENOENT);
    CHECK(strstr(err.message, "410 Gone") != NULL);
    jj_http_response_free(&resp);
}

static void test_other_4xx_is_http_without_retry(void)
{
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/status/403");
    req.retries = 3;
    clock_rec clk = {0};
    req.sleep = fake_sleep;
    req.sleep_ud = &clk;
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), JJ_EHTTP);
    CHECK(strstr(err.message, ": 403 Forbidden") != NULL);
    CHECK_INT(clk.n, 0);
    CHECK_INT(resp.attempts, 1);
    jj_http_response_free(&resp);
}

static void test_retries_double_the_delay(void)
{
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/flaky/3?c=retries");
    req.retries = 3;
    clock_rec clk = {0};
    req.sleep = fake_sleep;
    req.sleep_ud = &clk;
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), 0);
    CHECK_INT(resp.status, 200);
    CHECK_INT(resp.attempts, 4);
    CHECK_INT(clk.n, 3);
    CHECK(clk.delays[0] == 1 && clk.delays[1] == 2 && clk.delays[2] == 4);
    CHECK(resp.body && strcmp(resp.body, "ok after 3\n") == 0);
    jj_http_response_free(&resp);
}

static void test_retries_exhausted(void)
{
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/flaky/5?c=exhausted");
    req.retries = 2;
    req.retry_delay = 20; /* capped at 30 */
    clock_rec clk = {0};
    req.sleep = fake_sleep;
    req.sleep_ud = &clk;
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), JJ_EHTTP);
    CHECK(strstr(err.message, ": 503 Service Unavailable (after 3 attempts)") != NULL);
    CHECK_INT(err.lib_code, 503);
    CHECK_INT(resp.attempts, 3);
    CHECK_INT(clk.n, 2);
    CHECK(clk.delays[0] == 20 && clk.delays[1] == 30);
    jj_http_response_free(&resp);
}

static int cancel_sleep(void *ud, double seconds)
{
    (void)seconds;
    jj_sys_cancel_request(ud);
    return 0;
}

static void test_sleep_can_abandon(void)
{
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/flaky/5?c=abandon");
    req.retries = 4;
    clock_rec clk = {.fail_at = 2};
    req.sleep = fake_sleep;
    req.sleep_ud = &clk;
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), JJ_EINTERRUPTED);
    CHECK_INT(resp.attempts, 2);
    jj_http_response_free(&resp);
}

static void test_cancelled_before_an_attempt(void)
{
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/file/10");
    jj_sys_cancel c;
    jj_sys_cancel_init(&c, NULL);
    jj_sys_cancel_request(&c);
    req.cancel = &c;
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), JJ_EINTERRUPTED);
    CHECK_INT(resp.attempts, 0);
    CHECK(strstr(err.message, "GET http://127.0.0.1:") == err.message);
    CHECK(strstr(err.message, "/file/10: interrupted") != NULL);
    jj_http_response_free(&resp);
}

static void test_cancelled_between_attempts(void)
{
    /* The sleep function runs between attempts: cancelling from it stops
     * the request before the next attempt, with the cancel's message. */
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/flaky/5?c=cancel");
    req.retries = 4;
    jj_sys_cancel c;
    jj_sys_cancel_init(&c, NULL);
    req.cancel = &c;
    req.sleep = cancel_sleep;
    req.sleep_ud = &c;
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), JJ_EINTERRUPTED);
    CHECK_INT(resp.attempts, 1);
    CHECK(strstr(err.message, "waiting to retry: interrupted") != NULL);
    jj_http_response_free(&resp);
}

static void test_connection_refused_is_retried(void)
{
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = "http://127.0.0.1:1/x";
    req.retries = 2;
    clock_rec clk = {0};
    req.sleep = fake_sleep;
    req.sleep_ud = &clk;
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), JJ_EHTTP);
    CHECK_INT(err.lib_code, CURLE_COULDNT_CONNECT);
    CHECK(strncmp(err.message, "GET http://127.0.0.1:1/x: ", 26) == 0);
    CHECK_INT(resp.attempts, 3);
    CHECK_INT(clk.n, 2);
    jj_http_response_free(&resp);
}

static void test_to_file_streams_and_renames(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/tools.tgz", tmpdir);
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/file/3000000");
    req.to_file = path;
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), 0);
    CHECK_INT(resp.size, 3000000);
    CHECK(resp.body == NULL); /* nothing kept in memory */
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (f) {
        static char buf[3000001];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        CHECK_INT(n, 3000000);
        CHECK(pattern_ok(buf, n));
    }
    CHECK_INT(count_entries(tmpdir), 1); /* no temp file left */

    /* A failed download leaves the old file alone and no temp file. */
    req.url = url("/status/500");
    CHECK_INT(run(&req, &resp, &err), JJ_EHTTP);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 3000000);
    CHECK_INT(count_entries(tmpdir), 1);
    unlink(path);

    req.url = url("/status/404");
    CHECK_INT(run(&req, &resp, &err), JJ_ENOENT);
    CHECK_INT(count_entries(tmpdir), 0);

    /* Missing directory: reported, nothing created. */
    snprintf(path, sizeof path, "%s/no/such/dir/file", tmpdir);
    req.url = url("/file/10");
    CHECK_INT(run(&req, &resp, &err), JJ_ENOENT);
    CHECK(strstr(err.message, "cannot create a file beside") != NULL);
    jj_http_response_free(&resp);
}

typedef struct sink {
    size_t total;
    int calls;
    int stop_after;
    int ok;
} sink;

static int collect(void *ud, const char *data, size_t len)
{
    sink *s = ud;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)data[i] != (s->total + i) % 251)
            s->ok = 0;
    s->total += len;
    s->calls++;
    return s->stop_after && s->calls >= s->stop_after;
}

static void test_on_data_chunks_and_abort(void)
{
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/file/1000000");
    sink s = {.ok = 1};
    req.on_data = collect;
    req.on_data_ud = &s;
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), 0);
    CHECK_INT(s.total, 1000000);
    CHECK(s.calls > 1);
    CHECK(s.ok);
    CHECK(resp.body == NULL);

    sink t = {.ok = 1, .stop_after = 1};
    req.on_data_ud = &t;
    req.retries = 3; /* an abort is never retried */
    CHECK_INT(run(&req, &resp, &err), JJ_EINTERRUPTED);
    CHECK_INT(t.calls, 1);
    CHECK_INT(resp.attempts, 1);
    jj_http_response_free(&resp);
}

static void test_max_size(void)
{
    jj_http_request req;
    jj_http_request_init(&req);
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    req.max_size = 1000;
    req.url = url("/file/1000");
    CHECK_INT(run(&req, &resp, &err), 0);
    CHECK_INT(resp.body_len, 1000);
    req.url = url("/file/1001");
    CHECK_INT(run(&req, &resp, &err), JJ_ERANGE);
    CHECK(strstr(err.message, "max_size (1000 bytes)") != NULL);
    req.url = url("/file/200000?chunked=1"); /* no Content-Length: counted */
    CHECK_INT(run(&req, &resp, &err), JJ_ERANGE);
    req.url = url("/file/1000?chunked=1");
    CHECK_INT(run(&req, &resp, &err), 0);
    CHECK_INT(resp.size, 1000);
    jj_http_response_free(&resp);
}

static void test_idle_timeout(void)
{
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/slow");
    req.idle_timeout = 1;
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), JJ_EHTTP_TIMEOUT);
    CHECK(resp.elapsed >= 1 && resp.elapsed < 4);

    /* Total timeout as well. */
    req.idle_timeout = 0;
    req.timeout = 0.5;
    CHECK_INT(run(&req, &resp, &err), JJ_EHTTP_TIMEOUT);
    CHECK_INT(err.lib_code, CURLE_OPERATION_TIMEDOUT);
    CHECK(resp.elapsed < 3);
    jj_http_response_free(&resp);
}

static void test_file_urls(void)
{
    char path[128], u[256];
    snprintf(path, sizeof path, "%s/local.json", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("{\"x\":1}", f);
    fclose(f);
    snprintf(u, sizeof u, "file://%s", path);
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = u;
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), 0);
    CHECK_INT(resp.status, 200);
    CHECK(resp.body && strcmp(resp.body, "{\"x\":1}") == 0);

    req.max_size = 3;
    CHECK_INT(run(&req, &resp, &err), JJ_ERANGE);
    req.max_size = -1;
    unlink(path);
    CHECK_INT(run(&req, &resp, &err), JJ_ENOENT);
    char want[300];
    snprintf(want, sizeof want, "GET %s: No such file or directory", u);
    CHECK_STR(err.message, want);
    jj_http_response_free(&resp);
}

static void test_put_body_file_and_memory(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/upload.bin", tmpdir);
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 500000; i++)
        fputc(i % 251, f);
    fclose(f);
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/store/up");
    req.method = "PUT";
    req.body_file = path;
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), 0);
    CHECK_INT(resp.status, 201);
    CHECK(resp.body && strstr(resp.body, "\"size\": 500000") != NULL);

    jj_http_request get;
    jj_http_request_init(&get);
    get.url = req.url;
    CHECK_INT(run(&get, &resp, &err), 0);
    CHECK_INT(resp.body_len, 500000);
    CHECK(pattern_ok(resp.body, resp.body_len));
    unlink(path);

    req.body_file = NULL;
    req.body = "small";
    req.body_len = 5;
    CHECK_INT(run(&req, &resp, &err), 0);
    CHECK(strstr(resp.body, "\"size\": 5") != NULL);

    req.method = "DELETE";
    req.body = NULL;
    req.body_len = 0;
    CHECK_INT(run(&req, &resp, &err), 0);
    CHECK_INT(resp.status, 204);
    CHECK_INT(run(&req, &resp, &err), JJ_ENOENT);

    req.method = "PUT";
    req.body_file = path; /* gone */
    CHECK_INT(run(&req, &resp, &err), JJ_ENOENT);
    CHECK(strstr(err.message, "cannot open") != NULL);
    jj_http_response_free(&resp);
}

static void test_echo_method_headers_body(void)
{
    const char *headers[] = {"X-Test: one", "Authorization: Bearer s3cr3t", "X-Empty;",
                             "Accept:", NULL};
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/echo");
    req.method = "POST";
    req.headers = headers;
    req.body = "a=1&b=2";
    req.body_len = 7;
    req.user_agent = "test-agent";
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), 0);
    const char *b = resp.body ? resp.body : "";
    CHECK(strstr(b, "\"method\": \"POST\"") != NULL);
    CHECK(strstr(b, "\"x-test\": \"one\"") != NULL);
    CHECK(strstr(b, "\"x-empty\": \"\"") != NULL);
    CHECK(strstr(b, "\"accept\"") == NULL);
    CHECK(strstr(b, "\"expect\"") == NULL);
    CHECK(strstr(b, "\"user-agent\": \"test-agent\"") != NULL);
    CHECK(strstr(b, "\"body\": \"a=1&b=2\"") != NULL);
    /* Two X-Dup headers are both kept, in order. */
    int dups = 0;
    for (size_t i = 0; i < resp.nheaders; i++)
        dups += strcmp(resp.headers[i].name, "x-dup") == 0;
    CHECK_INT(dups, 2);

    const char *bad[] = {"X-Evil: a\r\nInjected: b", NULL};
    req.headers = bad;
    CHECK_INT(run(&req, &resp, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "Injected") == NULL);
    req.headers = NULL;
    req.method = "get";
    CHECK_INT(run(&req, &resp, &err), JJ_EINVAL);
    jj_http_response_free(&resp);
}

static int echo_port(jj_http_response *resp)
{
    const char *p = resp->body ? strstr(resp->body, "\"client_port\": ") : NULL;
    return p ? atoi(p + 15) : -1;
}

static void test_keep_alive_reuses_connection(void)
{
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/echo");
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), 0);
    int p1 = echo_port(&resp);
    CHECK_INT(run(&req, &resp, &err), 0);
    int p2 = echo_port(&resp);
    CHECK(p1 > 0);
    CHECK_INT(p2, p1);
    jj_http_response_free(&resp);
}

static void test_redirects(void)
{
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/redirect");
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), 0);
    CHECK_INT(resp.status, 200);
    CHECK_INT(resp.body_len, 10);
    CHECK(pattern_ok(resp.body, 10));
    CHECK_STR(resp.url, url("/file/10"));

    req.follow_redirects = 0;
    CHECK_INT(run(&req, &resp, &err), 0);
    CHECK_INT(resp.status, 302);
    CHECK_STR(header(&resp, "location"), "/file/10");

    req.follow_redirects = 1;
    req.url = url("/redirect-file"); /* a server must not make us read local files */
    CHECK(run(&req, &resp, &err) != 0);
    jj_http_response_free(&resp);
}

static void test_head(void)
{
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = url("/file/777");
    req.method = "HEAD";
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), 0);
    CHECK_INT(resp.status, 200);
    CHECK_STR(header(&resp, "content-length"), "777");
    CHECK_INT(resp.size, 0);
    CHECK_INT(resp.body_len, 0);
    jj_http_response_free(&resp);
}

static void test_messages_hide_credentials(void)
{
    char u[256];
    snprintf(u, sizeof u, "http://admin:hunter2@%s/status/401?X-Amz-Signature=abc&k=v",
             base + strlen("http://"));
    jj_http_request req;
    jj_http_request_init(&req);
    req.url = u;
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    CHECK_INT(run(&req, &resp, &err), JJ_EHTTP);
    CHECK(strstr(err.message, "hunter2") == NULL);
    CHECK(strstr(err.message, "admin") == NULL);
    CHECK(strstr(err.message, "abc") == NULL);
    CHECK(strstr(err.message, "X-Amz-Signature=REDACTED&k=v: 401 Unauthorized") != NULL);
    CHECK(resp.url && strstr(resp.url, "hunter2") == NULL);
    jj_http_response_free(&resp);

    char out[128];
    jj_http_safe_url("https://u:p@h.example/a?sig=x&Signature=y&ok=1", out, sizeof out);
    CHECK_STR(out, "https://h.example/a?sig=REDACTED&Signature=REDACTED&ok=1");
    jj_http_safe_url("http://plain.example/x?a=b", out, sizeof out);
    CHECK_STR(out, "http://plain.example/x?a=b");
    jj_http_safe_url("not a url", out, sizeof out);
    CHECK_STR(out, "<invalid URL>");
    jj_http_safe_url("http://h/x", out, 6);
    CHECK_STR(out, "http:");
}

static void test_bad_urls(void)
{
    jj_http_request req;
    jj_http_request_init(&req);
    jj_http_response resp;
    jj_http_response_init(&resp);
    jj_error err;
    req.url = "ftp://example.com/x";
    CHECK_INT(run(&req, &resp, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "unsupported URL scheme") != NULL);
    req.url = "http://exa mple/";
    CHECK_INT(run(&req, &resp, &err), JJ_EINVAL);
    req.url = NULL;
    CHECK_INT(run(&req, &resp, &err), JJ_EINVAL);
    CHECK_INT(resp.attempts, 0);
    jj_http_response_free(&resp);
}

static void test_escape_unescape(void)
{
    char out[64];
    const char in[] = "a b/c~d-e_f.g%\xc3\xa9";
    size_t n = jj_http_url_escape(in, strlen(in), out);
    CHECK_STR(out, "a%20b%2Fc~d-e_f.g%25%C3%A9");
    CHECK_INT(n, strlen(out));
    char back[64];
    size_t m = jj_http_url_unescape(out, n, back);
    CHECK_INT(m, strlen(in));
    CHECK(memcmp(back, in, m) == 0);
    m = jj_http_url_unescape("%zz%4%41+%00x", 13, back);
    CHECK_INT(m, 9);
    CHECK(memcmp(back, "%zz%4A+\0x", 9) == 0);
}

static void test_parse_url(void)
{
    jj_http_url u;
    jj_error err;
    CHECK_INT(jj_http_parse_url("https://us%40r:p%3Ass@Host.example:8443/a%20b/c?x=1&y=2#frag",
                                &u, &err), 0);
    CHECK_STR(u.scheme, "https");
    CHECK_STR(u.host, "Host.example");
    CHECK_INT(u.port, 8443);
    CHECK_STR(u.path, "/a%20b/c");
    CHECK_STR(u.query, "x=1&y=2");
    CHECK_STR(u.fragment, "frag");
    CHECK_STR(u.user, "us@r");
    CHECK_STR(u.password, "p:ss");
    jj_http_url_free(&u);
    CHECK(u.scheme == NULL && u.password == NULL);
    jj_http_url_free(&u); /* idempotent */

    CHECK_INT(jj_http_parse_url("http://example.com", &u, &err), 0);
    CHECK_INT(u.port, 80);
    CHECK_STR(u.path, "/");
    CHECK(u.query == NULL && u.user == NULL);
    jj_http_url_free(&u);

    CHECK_INT(jj_http_parse_url("file:///var/lib/x", &u, &err), 0);
    CHECK_STR(u.path, "/var/lib/x");
    CHECK_INT(u.port, 0);
    jj_http_url_free(&u);

    CHECK_INT(jj_http_parse_url("http://[::1", &u, &err), JJ_EINVAL);
    CHECK(strncmp(err.message, "invalid URL: ", 13) == 0);
    CHECK(u.scheme == NULL);
}

int main(void)
{
    jj_error err;
    if (jj_http_global_init(&err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/juju-test-http-XXXXXX");
    if (!mkdtemp(tmpdir) || start_server()) {
        fprintf(stderr, "cannot set up: %s\n", strerror(errno));
        stop_server();
        return 1;
    }
    if (jj_http_new(&H, &err)) {
        fprintf(stderr, "%s\n", err.message);
        stop_server();
        return 1;
    }
    RUN(test_get_into_memory);
    RUN(test_not_found_is_enoent);
    RUN(test_other_4xx_is_http_without_retry);
    RUN(test_retries_double_the_delay);
    RUN(test_retries_exhausted);
    RUN(test_sleep_can_abandon);
    RUN(test_cancelled_before_an_attempt);
    RUN(test_cancelled_between_attempts);
    RUN(test_connection_refused_is_retried);
    RUN(test_to_file_streams_and_renames);
    RUN(test_on_data_chunks_and_abort);
    RUN(test_max_size);
    RUN(test_idle_timeout);
    RUN(test_file_urls);
    RUN(test_put_body_file_and_memory);
    RUN(test_echo_method_headers_body);
    RUN(test_keep_alive_reuses_connection);
    RUN(test_redirects);
    RUN(test_head);
    RUN(test_messages_hide_credentials);
    RUN(test_bad_urls);
    RUN(test_escape_unescape);
    RUN(test_parse_url);
    jj_http_free(H);
    jj_http_free(NULL);
    stop_server();
    rmdir(tmpdir);
    curl_global_cleanup();
    return check_summary();
}
