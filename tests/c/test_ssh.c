/* test_ssh.c: core/ssh: connect errors and (as root, when /usr/sbin/sshd
 * exists) sessions against a real OpenSSH server started here on 127.0.0.9
 * with a private config, keys and authorized_keys in a temp directory
 * (never /etc/ssh). The host-key policy is tests/c/test_knownhosts.c. */
#include "check.h"
#include "crypto.h"
#include "fs.h"
#include "ssh.h"
#include "ssh_test_helpers.h"
#include "sys.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_connect_errors(void)
{
    jj_ssh_connect_opts o;
    jj_ssh_connect_opts_init(&o);
    CHECK_INT(o.port, 22);
    CHECK_INT(o.keepalive, 30);
    jj_ssh_session *s = (jj_ssh_session *)1;
    jj_error err;
    CHECK_INT(jj_ssh_connect(&o, &s, &err), JJ_EINVAL);
    CHECK(s == NULL);
    o.host = "127.0.0.9";
    o.user = "root";
    o.private_key_file = P("no-such-key");
    CHECK_INT(jj_ssh_connect(&o, &s, &err), JJ_ENOENT);
    CHECK(contains(err.message, "no-such-key"));
    o.trust_on_first_use = 1;
    CHECK_INT(jj_ssh_connect(&o, &s, &err), JJ_EINVAL);
}

/* A server that accepts (the kernel does, from the listen queue) and never
 * speaks: a cancelled token stops the handshake wait instead of the
 * connect timeout. */
static void test_connect_cancelled(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 4) == 0 &&
          getsockname(lfd, (struct sockaddr *)&a, &al) == 0);
    char *pem = NULL, *pub = NULL;
    jj_error err;
    CHECK_INT(jj_ssh_keygen_ed25519("test", &pem, &pub, &err), 0);
    CHECK_INT(write_text(P("cancel_key"), pem, 0600), 0);
    jj_secret_free(pem);
    free(pub);
    jj_ssh_connect_opts o;
    jj_ssh_connect_opts_init(&o);
    o.host = "127.0.0.1";
    o.port = ntohs(a.sin_port);
    o.user = "root";
    o.private_key_file = P("cancel_key");
    o.connect_timeout = 30;
    jj_sys_cancel c;
    jj_sys_cancel_init(&c, NULL);
    jj_sys_cancel_request(&c);
    o.cancel = &c;
    jj_ssh_session *s = NULL;
    double t0 = jj_sys_monotonic();
    CHECK_INT(jj_ssh_connect(&o, &s, &err), JJ_EINTERRUPTED);
    CHECK(jj_sys_monotonic() - t0 < 10); /* not the 30 s connect timeout */
    CHECK(s == NULL);
    CHECK(contains(err.message, "interrupted"));
    close(lfd);
}

/* ---- a real sshd ------------------------------------------------------------------ */

typedef struct server {
    int port;
    jj_proc proc;
    char host_pub[256];
    char user_key[512];
    int up;
} server;

static int free_port(const char *ip)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &a.sin_addr);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int listening(const char *ip, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, ip, &a.sin_addr);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int start_server(server *sv)
{
    jj_error err;
    char *pem, *pub;
    memset(sv, 0, sizeof *sv);
    jj_proc_init(&sv->proc);
    chmod(base, 0755);
    if (jj_ssh_keygen_ed25519("host", &pem, &pub, &err) != 0)
        return -1;
    write_text(P("host_key"), pem, 0600);
    snprintf(sv->host_pub, sizeof sv->host_pub, "%s", pub);
    jj_secret_free(pem);
    free(pub);
    if (jj_ssh_keygen_ed25519("user", &pem, &pub, &err) != 0)
        return -1;
    write_text(P("id_ed25519"), pem, 0600);
    snprintf(sv->user_key, sizeof sv->user_key, "%s", P("id_ed25519"));
    char line[512];
    snprintf(line, sizeof line, "%s\n", pub);
    write_text(P("authorized_keys"), line, 0644);
    jj_secret_free(pem);
    free(pub);
    sv->port = free_port("127.0.0.9");
    char config[4096];
    snprintf(config, sizeof config,
             "ListenAddress 127.0.0.9\nPort %d\nHostKey %s\nPidFile %s\nAuthorizedKeysFile %s\n"
             "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
             "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nUseDNS no\n"
             "Subsystem sftp internal-sftp\n",
             sv->port, P("host_key"), P("sshd.pid"), P("authorized_keys"));
    write_text(P("sshd_config"), config, 0644);
    mkdir("/run/sshd", 0755);
    const char *setpriv = jj_fs_exists("/usr/bin/setpriv") ? "/usr/bin/setpriv" : NULL;
    const char *argv_sp[] = {"/usr/bin/setpriv", "--pdeathsig", "KILL", "/usr/sbin/sshd",
                             "-D", "-e", "-f", P("sshd_config"), NULL};
    const char *argv_plain[] = {"/usr/sbin/sshd", "-D", "-e", "-f", P("sshd_config"), NULL};
    jj_proc_opts po;
    memset(&po, 0, sizeof po);
    po.argv = setpriv ? argv_sp : argv_plain;
    po.stdin_mode = JJ_STDIO_NULL;
    po.stdout_mode = po.stderr_mode = JJ_STDIO_FILE;
    char logpath[512];
    snprintf(logpath, sizeof logpath, "%s", P("sshd.log"));
    po.stdout_path = po.stderr_path = logpath;
    if (jj_proc_spawn(&sv->proc, &po, &err) != 0)
        return -1;
    for (int i = 0; i < 500; i++) {
        if (listening("127.0.0.9", sv->port)) {
            sv->up = 1;
            return 0;
        }
        usleep(20000);
    }
    return -1;
}

static void stop_server(server *sv)
{
    jj_error err;
    jj_proc_kill(&sv->proc, 15, &err);
    jj_proc_close(&sv->proc);
}

static jj_ssh_connect_opts opts_for(const server *sv)
{
    jj_ssh_connect_opts o;
    jj_ssh_connect_opts_init(&o);
    o.host = "127.0.0.9";
    o.port = sv->port;
    o.user = "root";
    o.private_key_file = sv->user_key;
    o.host_key = sv->host_pub;
    o.connect_timeout = 10;
    o.timeout = 20;
    return o;
}

typedef struct chunks {
    size_t out, err, calls;
} chunks;

static int count_output(void *ud, int stream, const char *data, size_t len)
{
    (void)data;
    chunks *c = ud;
    c->calls++;
    if (stream == JJ_SSH_STDOUT)
        c->out += len;
    else
        c->err += len;
    return 0;
}

static int stop_at_once(void *ud, int stream, const char *data, size_t len)
{
    (void)stream;
    (void)data;
    (void)len;
    (*(int *)ud)++;
    return 1;
}

static void test_real_sshd(void)
{
    if (geteuid() != 0 || !jj_fs_exists("/usr/sbin/sshd")) {
        printf("test_real_sshd: skipped (needs root and /usr/sbin/sshd)\n");
        return;
    }
    server sv;
    int rc = start_server(&sv);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        stop_server(&sv);
        return;
    }
    jj_error err;
    jj_ssh_connect_opts o = opts_for(&sv);
    jj_ssh_session *s = NULL;
    CHECK_INT(jj_ssh_connect(&o, &s, &err), 0);
    if (!s) {
        fprintf(stderr, "connect: %s\n", err.message);
        stop_server(&sv);
        return;
    }
    const jj_ssh_host_key *hk = jj_ssh_session_host_key(s);
    char fp[JJ_SSH_FP_SHA256_SIZE];
    fingerprint(sv.host_pub, fp);
    CHECK_STR(hk->fingerprint, fp);
    CHECK_STR(hk->type, "ssh-ed25519");
    CHECK_INT(hk->verified, JJ_KNOWNHOSTS_VERIFIED_PINNED);

    /* stdin in, stdout and stderr out, exit status */
    size_t big = 3 * 1024 * 1024 + 5;
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)((i * 131) ^ (i >> 11));
    jj_ssh_exec_opts eo;
    jj_ssh_exec_opts_init(&eo);
    eo.stdin_data = data;
    eo.stdin_len = big;
    jj_ssh_exec_result r;
    jj_ssh_exec_result_init(&r);
    CHECK_INT(jj_ssh_exec(s, "cat; echo done >&2; exit 5", &eo, &r, &err), 0);
    CHECK_INT(r.code, 5);
    CHECK_INT(r.out_len, big);
    CHECK(r.out && memcmp(r.out, data, big) == 0);
    CHECK_STR(r.err, "done\n");

    /* callbacks without collecting */
    chunks c = {0, 0, 0};
    jj_ssh_exec_opts_init(&eo);
    eo.collect = 0;
    eo.on_output = count_output;
    eo.ud = &c;
    CHECK_INT(jj_ssh_exec(s, "head -c 100000 /dev/zero; echo -n abc >&2", &eo, &r, &err), 0);
    CHECK(r.out == NULL);
    CHECK_INT(c.out, 100000);
    CHECK_INT(c.err, 3);

    /* a callback that stops the command; the session goes on */
    int calls = 0;
    jj_ssh_exec_opts_init(&eo);
    eo.on_output = stop_at_once;
    eo.ud = &calls;
    CHECK_INT(jj_ssh_exec(s, "echo a; sleep 10", &eo, &r, &err), JJ_EINTERRUPTED);
    CHECK_INT(calls, 1);

    /* timeout */
    jj_ssh_exec_opts_init(&eo);
    eo.timeout = 0.5;
    double t0 = jj_sys_monotonic();
    CHECK_INT(jj_ssh_exec(s, "sleep 20", &eo, &r, &err), JJ_ETIMEOUT);
    CHECK(jj_sys_monotonic() - t0 < 3);
    CHECK_INT(jj_ssh_exec(s, "echo ok", NULL, &r, &err), 0);
    CHECK_STR(r.out, "ok\n");

    /* SFTP round trip */
    CHECK_INT(jj_fs_write_atomic(P("up"), data, big, 0600, &err), 0);
    uint64_t bytes = 0;
    jj_ssh_transfer_opts to = {.mode = 0640};
    CHECK_INT(jj_ssh_upload(s, P("up"), P("remote"), &to, &bytes, &err), 0);
    CHECK_INT(bytes, big);
    CHECK_INT(mode_of(P("remote")), 0640);
    CHECK_INT(jj_ssh_upload(s, P("up"), P("remote"), NULL, &bytes, &err), 0); /* overwrite */
    CHECK_INT(mode_of(P("remote")), 0644);
    CHECK_INT(jj_ssh_download(s, P("remote"), P("down"), NULL, &bytes, &err), 0);
    CHECK_INT(bytes, big);
    char *back = NULL;
    size_t back_len = 0;
    CHECK_INT(jj_fs_read_file(P("down"), &back, &back_len, &err), 0);
    CHECK(back_len == big && back && memcmp(back, data, big) == 0);
    CHECK_INT(mode_of(P("down")), 0600);
    free(back);
    CHECK_INT(jj_ssh_download(s, P("absent"), P("down2"), NULL, &bytes, &err), JJ_ENOENT);
    CHECK(!jj_fs_exists(P("down2")));
    jj_ssh_exec_result_free(&r);
    free(data);
    jj_ssh_close(s);

    /* TOFU through known_hosts, then known; a wrong pin; an unknown user key */
    jj_ssh_connect_opts t = opts_for(&sv);
    t.host_key = NULL;
    t.known_hosts = P("kh/known_hosts");
    CHECK_INT(jj_ssh_connect(&t, &s, &err), JJ_ESSH_HOSTKEY);
    CHECK(contains(err.message, fp));
    t.trust_on_first_use = 1;
    CHECK_INT(jj_ssh_connect(&t, &s, &err), 0);
    if (s)
        CHECK_INT(jj_ssh_session_host_key(s)->verified, JJ_KNOWNHOSTS_VERIFIED_ADDED);
    jj_ssh_close(s);
    t.trust_on_first_use = 0;
    CHECK_INT(jj_ssh_connect(&t, &s, &err), 0);
    if (s)
        CHECK_INT(jj_ssh_session_host_key(s)->verified, JJ_KNOWNHOSTS_VERIFIED_KNOWN);
    jj_ssh_close(s);

    char *wrong = new_pub();
    jj_ssh_connect_opts w = opts_for(&sv);
    w.host_key = wrong;
    CHECK_INT(jj_ssh_connect(&w, &s, &err), JJ_ESSH_HOSTKEY);
    free(wrong);

    char *pem, *pub;
    CHECK_INT(jj_ssh_keygen_ed25519("stranger", &pem, &pub, &err), 0);
    write_text(P("stranger"), pem, 0600);
    jj_secret_free(pem);
    free(pub);
    jj_ssh_connect_opts a = opts_for(&sv);
    a.private_key_file = P("stranger");
    CHECK_INT(jj_ssh_connect(&a, &s, &err), JJ_ESSH_AUTH);
    CHECK(contains(err.message, "ssh-ed25519"));
    CHECK(contains(err.message, "root"));

    stop_server(&sv);
    /* now nothing listens there */
    jj_ssh_connect_opts d = opts_for(&sv);
    CHECK_INT(jj_ssh_connect(&d, &s, &err), JJ_ESSH);
    char hp[64];
    snprintf(hp, sizeof hp, "127.0.0.9:%d", sv.port);
    CHECK(contains(err.message, hp));
}

int main(void)
{
    char *d;
    jj_error err;
    if (jj_fs_mkdtemp("/tmp/juju-test-ssh-", &d, &err) != 0) {
        fprintf(stderr, "mkdtemp: %s\n", err.message);
        return 2;
    }
    snprintf(base, sizeof base, "%s", d);
    free(d);
    RUN(test_connect_errors);
    RUN(test_connect_cancelled);
    RUN(test_real_sshd);
    jj_fs_remove_tree(base, &err);
    return check_summary();
}
