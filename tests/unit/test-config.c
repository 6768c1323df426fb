/* Unit tests for core/config.c: defaults, option table, INI error reports, flags, cross-checks. */
#undef NDEBUG
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "build-config.h"
#include "config.h"
#include "macro.h"
#include "strv.h"

/* log.c writes to stderr: point fd 2 at a temporary file while the code under test runs. */
static int saved_stderr = -1;
static FILE *captured;

static void capture_begin(void) {
        fflush(stderr);
        captured = tmpfile();
        assert_non_null(captured);
        saved_stderr = dup(STDERR_FILENO);
        assert_true(saved_stderr >= 0);
        assert_true(dup2(fileno(captured), STDERR_FILENO) >= 0);
}

static char *capture_end(void) {
        char *text;
        long size;

        fflush(stderr);
        assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
        close(saved_stderr);
        saved_stderr = -1;

        assert_int_equal(fseek(captured, 0, SEEK_END), 0);
        size = ftell(captured);
        assert_true(size >= 0);
        rewind(captured);
        text = calloc(1, size + 1);
        assert_non_null(text);
        assert_int_equal(fread(text, 1, size, captured), (size_t)size);
        fclose(captured);
        captured = NULL;
        return text;
}

static char *write_temp(const char *content) {
        char *path = strdup("/tmp/iommud-test-config-XXXXXX");
        int fd;

        assert_non_null(path);
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        close(fd);
        return path;
}

/* Loads content into c (already initialized); returns load's result, the log in *ret_log and the
 * file name in *ret_path (removed already). */
static int load_text(Config *c, const char *content, char **ret_log, char **ret_path) {
        char *path = write_temp(content);
        int r;

        capture_begin();
        r = config_load_file(c, path, true);
        *ret_log = capture_end();
        unlink(path);
        *ret_path = path;
        return r;
}

/* noinline: inlined under -fsanitize=undefined, gcc invents a NULL haystack and warns (format-overflow). */
__attribute__((noinline)) static void assert_contains(const char *haystack, const char *needle) {
        if (!strstr(haystack, needle))
                fail_msg("expected \"%s\" in:\n%s", needle, haystack);
}

static size_t count_lines(const char *s) {
        size_t n = 0;

        for (; *s; s++)
                n += *s == '\n';
        return n;
}

/* Expects content to fail with exactly one message, starting "<path>:<line>: " and containing 'what'. */
static void assert_load_fails(const char *content, unsigned line, const char *what) {
        _cleanup_(freep) char *log = NULL, *path = NULL, *prefix = NULL;
        Config c;

        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(load_text(&c, content, &log, &path), -EINVAL);
        assert_true(asprintf(&prefix, "%s:%u: ", path, line) >= 0);
        assert_contains(log, prefix);
        assert_contains(log, what);
        if (count_lines(log) != 1)
                fail_msg("expected one message, got:\n%s", log);
        config_done(&c);
}

static void test_defaults(void **state) {
        Config c;

        assert_int_equal(config_init_defaults(&c), 0);
        assert_string_equal(c.sysfs_root, "/");
        assert_string_equal(c.proc_root, "/");
        assert_string_equal(c.dev_root, "/");
        assert_null(c.pci_ids);
        assert_int_equal(c.rescan_interval_sec, 300);
        assert_string_equal(c.state_directory, IOMMUD_STATE_DIR);
        assert_string_equal(c.runtime_directory, IOMMUD_RUNTIME_DIR);
        assert_true(c.udev);
        assert_string_equal(c.unix_socket, IOMMUD_SOCKET);
        assert_string_equal(c.libvirt_uri, "qemu:///system");
        assert_int_equal(c.hook_on_unreachable, HOOK_UNREACHABLE_START);
        assert_int_equal(c.unix_mode, 0666);
        assert_null(c.tls_listen);
        assert_null(c.insecure_tcp);
        assert_null(c.tls_certificate);
        assert_null(c.tls_key);
        assert_null(c.tls_client_ca);
        assert_int_equal(c.readers.n, 0);
        assert_int_equal(c.operators.n, 0);
        assert_int_equal(c.admins.n, 1);
        assert_int_equal(c.admins.items[0].kind, PRINCIPAL_UID);
        assert_int_equal(c.admins.items[0].uid, 0);
        assert_true(c.default_roles);
        assert_null(c.tls_crl);
        assert_int_equal(c.group_refresh_sec, 300);
        assert_int_equal(c.limits.max_connections, 256);
        assert_int_equal(c.limits.max_connections_per_peer, 16);
        assert_int_equal(c.limits.reserved_connections, 32);
        assert_int_equal(c.limits.max_handshakes, 64);
        assert_int_equal(c.limits.max_streams, 100);
        assert_int_equal(c.limits.max_message_size, 4 * 1024 * 1024);
        assert_int_equal(c.limits.max_header_list_size, 16 * 1024);
        assert_int_equal(c.limits.max_header_fields, 64);
        assert_int_equal(c.limits.max_connection_memory, 16 * 1024 * 1024);
        assert_int_equal(c.limits.max_peer_memory, 32 * 1024 * 1024);
        assert_int_equal(c.limits.max_memory, 256 * 1024 * 1024);
        assert_int_equal(c.limits.max_send_queue, 4 * 1024 * 1024);
        assert_int_equal(c.limits.handshake_timeout_sec, 10);
        assert_int_equal(c.limits.header_timeout_sec, 10);
        assert_int_equal(c.limits.request_timeout_sec, 30);
        assert_int_equal(c.limits.idle_timeout_sec, 300);
        assert_int_equal(c.limits.keepalive_sec, 60);
        assert_int_equal(c.limits.keepalive_timeout_sec, 20);
        assert_int_equal(c.limits.max_watchers, 64);
        assert_int_equal(c.limits.max_queued_operations, 32);
        assert_int_equal(c.limits.operation_timeout_sec, 120);
        assert_int_equal(config_verify(&c), 0);
        config_done(&c);
        config_done(&c); /* idempotent */
}

static void test_option_table(void **state) {
        const ConfigOption *options;
        size_t n;

        options = config_options(&n);
        assert_int_equal(n, 48);
        for (size_t i = 0; i < n; i++) {
                const ConfigOption *o = &options[i];

                assert_non_null(o->section);
                assert_non_null(o->key);
                assert_non_null(o->flag);
                assert_non_null(o->value_name);
                assert_non_null(o->help);
                assert_non_null(o->parse);
                assert_true(o->offset < sizeof(Config));
                for (size_t j = 0; j < i; j++) {
                        assert_string_not_equal(o->flag, options[j].flag);
                        assert_false(strcmp(o->section, options[j].section) == 0 &&
                                     strcmp(o->key, options[j].key) == 0);
                }
        }
}

static void test_full_file(void **state) {
        static const char text[] =
                "# every option once\n"
                "[Daemon]\n"
                "SysfsRoot=/srv/host\n"
                "ProcRoot=/srv/host\n"
                "DevRoot = /srv/dev\n"
                "PciIds=/usr/share/misc/pci.ids\n"
                "RescanIntervalSec=0\n"
                "StateDirectory=/var/lib/iommud-test\n"
                "RuntimeDirectory=/run/iommud-test\n"
                "Udev=no\n"
                "\n"
                "[Listen]\n"
                "Unix=/run/iommud-test/api.sock\n"
                "UnixMode=0660\n"
                "TLS=192.0.2.10:7443\n"
                "TLS=[0:0::0]:7443 ; all IPv6 addresses\n"
                "InsecureTCP=127.0.0.1:7080\n"
                "\n"
                "[Metrics]\n"
                "Listen=[0::1]:9109\n"
                "\n"
                "[TLS]\n"
                "Certificate=/etc/iommud/tls/server.pem\n"
                "Key=/etc/iommud/tls/server.key\n"
                "ClientCA=/etc/iommud/tls/clients.pem\n"
                "CRL=/etc/iommud/tls/clients.crl\n"
                "\n"
                "[Roles]\n"
                "GroupRefreshSec=60\n"
                "Reader=unix:* tls:*\n"
                "Reader=insecure:*\n"
                "Operator=group:root gid:4242 cn:orchestrator\n"
                "Admin=user:root uid:1001 subject:CN=admin,O=example\n"
                "\n"
                "[Limits]\n"
                "MaxConnections=10\n"
                "MaxConnectionsPerPeer=3\n"
                "ReservedConnections=2\n"
                "MaxHandshakes=4\n"
                "MaxStreams=20\n"
                "MaxMessageSize=8M\n"
                "MaxHeaderListSize=32K\n"
                "MaxHeaderFields=30\n"
                "MaxConnectionMemory=16M\n"
                "MaxPeerMemory=20M\n"
                "MaxMemory=40M\n"
                "MaxSendQueue=1M\n"
                "HandshakeTimeoutSec=3\n"
                "HeaderTimeoutSec=4\n"
                "RequestTimeoutSec=5\n"
                "IdleTimeoutSec=0\n"
                "KeepaliveSec=7\n"
                "KeepaliveTimeoutSec=2\n"
                "MaxWatchers=5\n"
                "MaxQueuedOperations=7\n"
                "OperationTimeoutSec=600\n"
                "\n"
                "[LibvirtHook]\n"
                "OnUnreachable=fail\n"
                "CallTimeoutSec=660\n";
        _cleanup_(freep) char *log = NULL, *path = NULL;
        Config c;

        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(load_text(&c, text, &log, &path), 0);
        assert_string_equal(log, "");

        assert_string_equal(c.sysfs_root, "/srv/host");
        assert_string_equal(c.proc_root, "/srv/host");
        assert_string_equal(c.dev_root, "/srv/dev");
        assert_string_equal(c.pci_ids, "/usr/share/misc/pci.ids");
        assert_int_equal(c.rescan_interval_sec, 0);
        assert_string_equal(c.state_directory, "/var/lib/iommud-test");
        assert_string_equal(c.runtime_directory, "/run/iommud-test");
        assert_false(c.udev);

        assert_string_equal(c.unix_socket, "/run/iommud-test/api.sock");
        assert_int_equal(c.unix_mode, 0660);
        assert_int_equal(strv_length(c.tls_listen), 2);
        assert_string_equal(c.tls_listen[0], "192.0.2.10:7443");
        assert_string_equal(c.tls_listen[1], "[::]:7443"); /* canonical */
        assert_string_equal(c.insecure_tcp, "127.0.0.1:7080");
        assert_string_equal(c.metrics_listen, "[::1]:9109"); /* canonical; any address may serve metrics */

        assert_string_equal(c.tls_certificate, "/etc/iommud/tls/server.pem");
        assert_string_equal(c.tls_key, "/etc/iommud/tls/server.key");
        assert_string_equal(c.tls_client_ca, "/etc/iommud/tls/clients.pem");

        assert_false(c.default_roles);
        assert_int_equal(c.readers.n, 3);
        assert_int_equal(c.readers.items[0].kind, PRINCIPAL_ANY_UNIX);
        assert_int_equal(c.readers.items[1].kind, PRINCIPAL_ANY_TLS);
        assert_int_equal(c.readers.items[2].kind, PRINCIPAL_ANY_INSECURE);
        assert_int_equal(c.operators.n, 3);
        assert_int_equal(c.operators.items[0].kind, PRINCIPAL_GID);
        assert_int_equal(c.operators.items[0].gid, 0);
        assert_int_equal(c.operators.items[1].kind, PRINCIPAL_GID);
        assert_int_equal(c.operators.items[1].gid, 4242);
        assert_int_equal(c.operators.items[2].kind, PRINCIPAL_CN);
        assert_string_equal(c.operators.items[2].name, "orchestrator");
        assert_int_equal(c.admins.n, 3);
        assert_int_equal(c.admins.items[0].kind, PRINCIPAL_UID);
        assert_int_equal(c.admins.items[0].uid, 0);
        assert_int_equal(c.admins.items[1].uid, 1001);
        assert_int_equal(c.admins.items[2].kind, PRINCIPAL_SUBJECT);
        assert_string_equal(c.admins.items[2].name, "CN=admin,O=example");

        assert_string_equal(c.tls_crl, "/etc/iommud/tls/clients.crl");
        assert_int_equal(c.group_refresh_sec, 60);
        assert_int_equal(c.limits.max_connections, 10);
        assert_int_equal(c.limits.max_connections_per_peer, 3);
        assert_int_equal(c.limits.reserved_connections, 2);
        assert_int_equal(c.limits.max_handshakes, 4);
        assert_int_equal(c.limits.max_streams, 20);
        assert_int_equal(c.limits.max_message_size, 8 * 1024 * 1024);
        assert_int_equal(c.limits.max_header_list_size, 32 * 1024);
        assert_int_equal(c.limits.max_header_fields, 30);
        assert_int_equal(c.limits.max_connection_memory, 16 * 1024 * 1024);
        assert_int_equal(c.limits.max_peer_memory, 20 * 1024 * 1024);
        assert_int_equal(c.limits.max_memory, 40 * 1024 * 1024);
        assert_int_equal(c.limits.max_send_queue, 1024 * 1024);
        assert_int_equal(c.limits.handshake_timeout_sec, 3);
        assert_int_equal(c.limits.header_timeout_sec, 4);
        assert_int_equal(c.limits.request_timeout_sec, 5);
        assert_int_equal(c.limits.idle_timeout_sec, 0);
        assert_int_equal(c.limits.keepalive_sec, 7);
        assert_int_equal(c.limits.keepalive_timeout_sec, 2);
        assert_int_equal(c.limits.max_watchers, 5);
        assert_int_equal(c.limits.max_queued_operations, 7);
        assert_int_equal(c.limits.operation_timeout_sec, 600);
        assert_int_equal(c.hook_on_unreachable, HOOK_UNREACHABLE_FAIL);
        assert_int_equal(c.hook_call_timeout_sec, 660);

        assert_int_equal(config_verify(&c), 0);
        config_done(&c);
}

static void test_unknown_section(void **state) {
        /* Reported once, at the section's line, not again for each key in it. */
        assert_load_fails("[Daemon]\nUdev=yes\n[Listener]\nUnix=/run/x.sock\nUnixMode=0600\n", 3,
                          "unknown section [Listener]");
        /* Also when it holds no keys (inih never calls back for it). */
        assert_load_fails("[Daemon]\nUdev=yes\n\n[Extra]\n", 4, "unknown section [Extra]");
        assert_load_fails("Udev=yes\n", 1, "Udev= is outside of any section");
}

static void test_unknown_key(void **state) {
        assert_load_fails("[Daemon]\nUdev=yes\nSysfsroot=/srv\n", 3,
                          "unknown key Sysfsroot= in [Daemon], did you mean SysfsRoot=?");
        assert_load_fails("[Limits]\nMaxBananas=3\n", 2, "unknown key MaxBananas= in [Limits]");
        /* A key of another section is unknown here. */
        assert_load_fails("[Daemon]\nUnix=/run/x.sock\n", 2, "unknown key Unix= in [Daemon]");
}

static void test_bad_values(void **state) {
        static const struct {
                const char *text;
                unsigned line;
                const char *what;
        } cases[] = {
                { "[Listen]\nTLS=192.0.2.1:70000\n", 2,
                  "[Listen] TLS=192.0.2.1:70000: port '70000' is not a number between 1 and 65535" },
                { "[Listen]\nTLS=192.0.2.1:0\n", 2, "between 1 and 65535" },
                { "[Listen]\nTLS=192.0.2.1\n", 2, "expected ADDRESS:PORT" },
                { "[Listen]\nTLS=::1:7443\n", 2, "write IPv6 in brackets: [::1]:PORT" },
                { "[Listen]\nTLS=[::1]7443\n", 2, "expected [IPv6]:PORT" },
                { "[Listen]\nTLS=[::1]:\n", 2, "port '' is not a number" },
                { "[Listen]\nTLS=192.0.2.1:80:90\n", 2, "'192.0.2.1:80' is not a numeric IPv4 address" },
                { "[Listen]\nTLS=example.org:7443\n", 2, "'example.org' is not a numeric IPv4 address" },
                { "[Daemon]\nUdev=yes\nSysfsRoot=srv/host\n", 3,
                  "[Daemon] SysfsRoot=srv/host: must be an absolute path" },
                { "[TLS]\nKey=server.key\n", 2, "must be an absolute path" },
                { "[Listen]\nInsecureTCP=0.0.0.0:7080\n", 2, "only a loopback address" },
                { "[Listen]\nInsecureTCP=[2001:db8::1]:7080\n", 2,
                  "must not be reachable from other hosts" },
                { "[Listen]\nUnixMode=0999\n", 2, "expected an octal file mode" },
                { "[Listen]\nUnixMode=01777\n", 2, "expected an octal file mode" },
                { "[Listen]\nUnixMode=rw\n", 2, "expected an octal file mode" },
                { "[Listen]\nUnix=/run/iommud/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n", /* 120 characters */
                  2, "at most 107 characters" },
                { "[Daemon]\nUdev=maybe\n", 2, "expected yes/no" },
                { "[Daemon]\nRescanIntervalSec=-1\n", 2, "expected a number of seconds" },
                { "[Limits]\nMaxConnections=0\n", 2, "expected a number between 1 and" },
                { "[Limits]\nMaxStreams=12abc\n", 2, "expected a number between 1 and" },
                { "[Limits]\nMaxMessageSize=4G\n", 2, "expected a size" },
                { "[Limits]\nMaxMessageSize=8192M\n", 2, "expected a size" },
                { "[Limits]\nMaxHeaderListSize=K\n", 2, "expected a size" },
                { "[Limits]\nOperationTimeoutSec=0\n", 2, "expected a number of seconds between 1" },
                { "[LibvirtHook]\nOnUnreachable=ignore\n", 2,
                  "[LibvirtHook] OnUnreachable=ignore: expected start or fail" },
                { "[Roles]\nReader=uid:1000 friends\n", 2, "unknown principal 'friends'" },
                { "[Roles]\nReader=san-uri:scheduler\n", 2, "'san-uri:scheduler' is not a URI such as" },
                { "[Roles]\nReader=san-dns:\n", 2, "'san-dns:' names nothing" },
                { "[Roles]\nReader=san-dns:h\xc3\xa9.example\n", 2, "a name in a certificate is printable ASCII" },
                { "[Roles]\nReader=uid:-3\n", 2, "'uid:-3': '-3' is not a numeric id" },
                { "[Roles]\nAdmin=user:no-such-user-iommud\n", 2, "unknown user 'no-such-user-iommud'" },
                { "[Roles]\nAdmin=group:no-such-group-iommud\n", 2, "unknown group 'no-such-group-iommud'" },
                { "[Roles]\nAdmin=subject:op1\n", 2, "is not a subject" },
                { "[Roles]\nAdmin=cn:\n", 2, "'cn:' names nothing" },
                { "[Daemon]\nthis is not an assignment\n", 2, "syntax error" },
                { "[Daemon]\nUdev=yes\n[Listen\n", 3, "syntax error: section header without ']'" },
                { "[Daemon]\nUdev ; =yes\n", 2, "syntax error" }, /* found by inih only */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_load_fails(cases[i].text, cases[i].line, cases[i].what);
}

static void test_line_too_long(void **state) {
        _cleanup_(freep) char *text = NULL, *log = NULL, *path = NULL;
        char list[400] = "";
        Config c;

        /* Many principals on one line: inih's buffer is 200 bytes, so this must be reported, not cut. */
        while (strlen(list) < 300)
                strcat(list, "uid:1000 ");
        assert_true(asprintf(&text, "[Roles]\nReader=%s\nOperator=uid:7\n", list) >= 0);
        assert_load_fails(text, 2, "line is longer than 197 characters");

        /* Nothing of the long line was applied; the next line was. */
        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(load_text(&c, text, &log, &path), -EINVAL);
        assert_int_equal(c.readers.n, 0);
        assert_int_equal(c.operators.n, 1);
        config_done(&c);
}

static void test_all_errors_reported(void **state) {
        _cleanup_(freep) char *log = NULL, *path = NULL, *l2 = NULL, *l4 = NULL, *l6 = NULL, *l7 = NULL;
        Config c;

        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(load_text(&c,
                                   "[Listen]\nTLS=1.2.3.4:99999\n"
                                   "[Limits]\nMaxStreams=none\n"
                                   "[Daemon]\nDevRoot=dev\n"
                                   "not an assignment\n",
                                   &log, &path),
                         -EINVAL);
        assert_true(asprintf(&l2, "%s:2: ", path) >= 0);
        assert_true(asprintf(&l4, "%s:4: ", path) >= 0);
        assert_true(asprintf(&l6, "%s:6: ", path) >= 0);
        assert_true(asprintf(&l7, "%s:7: syntax error", path) >= 0);
        assert_contains(log, l2);
        assert_contains(log, l4);
        assert_contains(log, l6);
        assert_contains(log, l7);
        assert_int_equal(count_lines(log), 4);
        config_done(&c);
}

static void test_bom_and_comments(void **state) {
        _cleanup_(freep) char *log = NULL, *path = NULL;
        Config c;

        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(load_text(&c, "\xEF\xBB\xBF[Daemon]\n; comment\n# comment\n  \nUdev=no ; inline\n",
                                   &log, &path),
                         0);
        assert_string_equal(log, "");
        assert_false(c.udev);
        config_done(&c);
}

static void test_missing_file(void **state) {
        char *log;
        Config c;

        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(config_load_file(&c, "/nonexistent/iommud.conf", false), 0);
        assert_string_equal(c.sysfs_root, "/");

        capture_begin();
        assert_int_equal(config_load_file(&c, "/nonexistent/iommud.conf", true), -ENOENT);
        log = capture_end();
        assert_contains(log, "/nonexistent/iommud.conf");
        free(log);
        config_done(&c);
}

static void test_repeated_roles_append(void **state) {
        _cleanup_(freep) char *log = NULL, *log2 = NULL, *path = NULL;
        Config c;

        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(load_text(&c, "[Roles]\nReader=uid:1 uid:2\nReader=gid:3\n  uid:4\n", &log, &path),
                         0);
        assert_int_equal(c.readers.n, 4);
        assert_int_equal(c.readers.items[0].uid, 1);
        assert_int_equal(c.readers.items[1].uid, 2);
        assert_int_equal(c.readers.items[2].kind, PRINCIPAL_GID);
        assert_int_equal(c.readers.items[2].gid, 3);
        assert_int_equal(c.readers.items[3].uid, 4); /* the indented line continues Reader= */
        /* Naming any role replaced the built-in "uid 0 is admin", which config_verify() points out. */
        assert_int_equal(c.admins.n, 0);
        assert_false(c.default_roles);
        capture_begin();
        assert_int_equal(config_verify(&c), 0);
        log2 = capture_end();
        assert_contains(log2, "maps nobody to the admin role (--admin)");

        /* An empty assignment clears the list, e.g. to override the file from the command line. */
        assert_int_equal(config_set(&c, "Roles", "Reader", "", "--reader"), 0);
        assert_int_equal(c.readers.n, 0);
        assert_int_equal(config_set(&c, "Roles", "Reader", "uid:9", "--reader"), 0);
        assert_int_equal(c.readers.n, 1);

        /* A bad entry leaves the list as it was, even the good entries before it. */
        capture_begin();
        assert_int_equal(config_set(&c, "Roles", "Reader", "uid:10 uid:x", "--reader"), -EINVAL);
        free(capture_end());
        assert_int_equal(c.readers.n, 1);
        config_done(&c);
}

static void test_bad_role_keeps_default(void **state) {
        Config c;

        assert_int_equal(config_init_defaults(&c), 0);
        capture_begin();
        assert_int_equal(config_set(&c, "Roles", "Reader", "bogus", "--reader"), -EINVAL);
        free(capture_end());
        assert_true(c.default_roles);
        assert_int_equal(c.admins.n, 1);
        config_done(&c);
}

static void test_flags(void **state) {
        char *log;
        Config c;

        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(config_set(&c, "Listen", "Unix", "/tmp/iommud.sock", "--unix-socket"), 0);
        assert_string_equal(c.unix_socket, "/tmp/iommud.sock");
        assert_int_equal(config_set(&c, "Listen", "Unix", "", "--unix-socket"), 0);
        assert_null(c.unix_socket);
        assert_int_equal(config_set(&c, "Daemon", "PciIds", "/x/pci.ids", "--pci-ids"), 0);
        assert_int_equal(config_set(&c, "Daemon", "PciIds", "", "--pci-ids"), 0);
        assert_null(c.pci_ids);
        assert_int_equal(config_set(&c, "Listen", "TLS", "[::1]:1", "--listen-tls"), 0);
        assert_int_equal(config_set(&c, "Listen", "TLS", "", "--listen-tls"), 0);
        assert_null(c.tls_listen);
        assert_int_equal(config_set(&c, "Listen", "InsecureTCP", "[::ffff:127.0.0.2]:80",
                                    "--listen-insecure-tcp"),
                         0);
        assert_string_equal(c.insecure_tcp, "[::ffff:127.0.0.2]:80");
        assert_int_equal(config_set(&c, "Limits", "MaxMessageSize", "1000", "--max-message-size"), 0);
        assert_int_equal(c.limits.max_message_size, 1000);
        assert_int_equal(config_set(&c, "Daemon", "Udev", "false", "--udev"), 0);
        assert_false(c.udev);

        capture_begin();
        assert_int_equal(config_set(&c, "Listen", "InsecureTCP", "10.0.0.1:80", "--listen-insecure-tcp"),
                         -EINVAL);
        assert_int_equal(config_set(&c, "Nope", "Unix", "/x", "--nope"), -EINVAL);
        log = capture_end();
        assert_contains(log,
                        "--listen-insecure-tcp: [Listen] InsecureTCP=10.0.0.1:80: only a loopback address");
        assert_contains(log, "--nope: unknown section [Nope]");
        /* A rejected value leaves the old one. */
        assert_string_equal(c.insecure_tcp, "[::ffff:127.0.0.2]:80");
        free(log);
        config_done(&c);
}

static void test_verify(void **state) {
        char *log;
        Config c;

        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(config_set(&c, "Listen", "TLS", "0.0.0.0:7443", "test"), 0);
        assert_int_equal(config_set(&c, "TLS", "Key", "/etc/k.pem", "test"), 0);

        capture_begin();
        assert_int_equal(config_verify(&c), -EINVAL);
        log = capture_end();
        assert_contains(log,
                        "[TLS] Certificate= (--tls-certificate) is required when TLS= listeners are set");
        assert_contains(log, "[TLS] ClientCA= (--tls-client-ca) is required");
        assert_null(strstr(log, "Key="));
        free(log);

        assert_int_equal(config_set(&c, "TLS", "Certificate", "/etc/c.pem", "test"), 0);
        assert_int_equal(config_set(&c, "TLS", "ClientCA", "/etc/ca.pem", "test"), 0);
        assert_int_equal(config_verify(&c), 0);

        /* The same socket twice, in another spelling. */
        assert_int_equal(config_set(&c, "Listen", "TLS", "[::]:7443", "test"), 0);
        assert_int_equal(config_set(&c, "Listen", "TLS", "[0::0]:7443", "test"), 0);
        capture_begin();
        assert_int_equal(config_verify(&c), -EINVAL);
        log = capture_end();
        assert_contains(log, "[Listen] TLS= (--listen-tls) lists [::]:7443 twice");
        free(log);

        assert_int_equal(config_set(&c, "Listen", "TLS", "", "test"), 0);
        assert_int_equal(config_set(&c, "Listen", "TLS", "127.0.0.1:7443", "test"), 0);
        assert_int_equal(config_set(&c, "Listen", "InsecureTCP", "127.0.0.1:7443", "test"), 0);
        capture_begin();
        assert_int_equal(config_verify(&c), -EINVAL);
        log = capture_end();
        assert_contains(log, "both use 127.0.0.1:7443");
        free(log);

        /* Metrics on the address of a gRPC listener. */
        assert_int_equal(config_set(&c, "Listen", "InsecureTCP", "", "test"), 0);
        assert_int_equal(config_set(&c, "Metrics", "Listen", "127.0.0.1:7443", "test"), 0);
        capture_begin();
        assert_int_equal(config_verify(&c), -EINVAL);
        log = capture_end();
        assert_contains(log, "[Metrics] Listen= (--metrics-listen) both use 127.0.0.1:7443");
        free(log);

        /* The libvirt hook must not give up before an operation's own timeout. */
        assert_int_equal(config_set(&c, "Metrics", "Listen", "", "test"), 0);
        assert_int_equal(config_verify(&c), 0);
        assert_int_equal(config_set(&c, "Limits", "OperationTimeoutSec", "200", "test"), 0);
        capture_begin();
        assert_int_equal(config_verify(&c), -EINVAL);
        log = capture_end();
        assert_contains(log, "[LibvirtHook] CallTimeoutSec= (--libvirt-hook-call-timeout) 150 is below [Limits] "
                             "OperationTimeoutSec= (200)");
        free(log);
        assert_int_equal(config_set(&c, "LibvirtHook", "CallTimeoutSec", "200", "test"), 0);
        assert_int_equal(config_verify(&c), 0);
        assert_int_equal(config_set(&c, "Metrics", "Listen", "", "test"), 0);

        /* TLS files without a TLS listener are only a warning. */
        assert_int_equal(config_set(&c, "Listen", "TLS", "", "test"), 0);
        capture_begin();
        assert_int_equal(config_verify(&c), 0);
        log = capture_end();
        assert_contains(log, "ignoring");
        free(log);
        config_done(&c);
}

/* Limits that would lock clients out are refused, naming the option and its flag. */
static void test_verify_limits(void **state) {
        static const struct {
                const char *key, *value, *what;
        } cases[] = {
                { "ReservedConnections", "128", "ReservedConnections= (--reserved-connections) 128 must be less than half" },
                { "MaxConnectionMemory", "7M", "MaxConnectionMemory= (--max-connection-memory) 7340032 must be at least twice" },
                { "MaxPeerMemory", "8M", "MaxPeerMemory= (--max-peer-memory) 8388608 is below MaxConnectionMemory=" },
                { "MaxMemory", "63M", "MaxMemory= (--max-memory) 66060288 must be at least twice MaxPeerMemory=" },
        };
        char *log;

        FOREACH_ARRAY(t, cases, ELEMENTSOF(cases)) {
                Config c;

                assert_int_equal(config_init_defaults(&c), 0);
                assert_int_equal(config_set(&c, "Limits", t->key, t->value, "test"), 0);
                capture_begin();
                assert_int_equal(config_verify(&c), -EINVAL);
                log = capture_end();
                assert_contains(log, t->what);
                free(log);
                config_done(&c);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_verify_limits),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_option_table),
                cmocka_unit_test(test_full_file),
                cmocka_unit_test(test_unknown_section),
                cmocka_unit_test(test_unknown_key),
                cmocka_unit_test(test_bad_values),
                cmocka_unit_test(test_line_too_long),
                cmocka_unit_test(test_all_errors_reported),
                cmocka_unit_test(test_bom_and_comments),
                cmocka_unit_test(test_missing_file),
                cmocka_unit_test(test_repeated_roles_append),
                cmocka_unit_test(test_bad_role_keeps_default),
                cmocka_unit_test(test_flags),
                cmocka_unit_test(test_verify),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
