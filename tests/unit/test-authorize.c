/* Unit tests for core/authorize.c and core/group-cache.c: principals of every kind, group
 * memberships looked up off the loop, the role hierarchy, denial messages. */
#undef NDEBUG
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "authorize.h"
#include "config.h"
#include "group-cache.h"
#include "macro.h"

static const Peer tls_op1 = {
        .kind = PEER_TLS,
        .subject = "CN=op1,O=example",
        .common_name = "op1",
};

static Peer unix_peer(uid_t uid, gid_t gid) {
        return (Peer){ .kind = PEER_UNIX, .uid = uid, .gid = gid, .pid = 4711 };
}

/* A config with the given [Roles]; NULL leaves a role unset. */
static void config_with_roles(Config *c, const char *reader, const char *op, const char *admin) {
        assert_int_equal(config_init_defaults(c), 0);
        if (reader)
                assert_int_equal(config_set(c, "Roles", "Reader", reader, "test"), 0);
        if (op)
                assert_int_equal(config_set(c, "Roles", "Operator", op, "test"), 0);
        if (admin)
                assert_int_equal(config_set(c, "Roles", "Admin", admin, "test"), 0);
}

static void test_role_to_string(void **state) {
        assert_string_equal(role_to_string(ROLE_NONE), "none");
        assert_string_equal(role_to_string(ROLE_READER), "reader");
        assert_string_equal(role_to_string(ROLE_OPERATOR), "operator");
        assert_string_equal(role_to_string(ROLE_ADMIN), "admin");
        assert_null(role_to_string(ROLE_ADMIN + 1));
}

static void test_default_mapping(void **state) {
        Peer root = unix_peer(0, 0), user = unix_peer(1000, 1000);
        Peer insecure = { .kind = PEER_LOCAL_INSECURE }; /* uid 0 in the struct, but no identity */
        Config c;

        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(authorize_peer(&c, &root), ROLE_ADMIN);
        assert_int_equal(authorize_peer(&c, &user), ROLE_NONE);
        assert_int_equal(authorize_peer(&c, &tls_op1), ROLE_NONE);
        assert_int_equal(authorize_peer(&c, &insecure), ROLE_NONE);
        config_done(&c);
}

static void test_uid_and_user(void **state) {
        Peer root = unix_peer(0, 0), u1000 = unix_peer(1000, 1000), u1001 = unix_peer(1001, 1000);
        Config c;

        config_with_roles(&c, "uid:1000", NULL, "user:root");
        assert_int_equal(authorize_peer(&c, &u1000), ROLE_READER);
        assert_int_equal(authorize_peer(&c, &u1001), ROLE_NONE);
        assert_int_equal(authorize_peer(&c, &root), ROLE_ADMIN);
        config_done(&c);

        /* Once [Roles] names anyone, root is not admin by default any more. */
        config_with_roles(&c, "uid:1000", NULL, NULL);
        assert_int_equal(authorize_peer(&c, &root), ROLE_NONE);
        config_done(&c);
}

static void test_gid_and_group(void **state) {
        static const gid_t root_groups[] = { 0 };
        Peer primary = unix_peer(1000, 4242), other = unix_peer(1000, 1000);
        /* uid 0 with another effective gid: group root (gid 0) is root's primary group in the user
         * database, so membership does not depend on the peer's gid once the groups are known. */
        Peer root_other_gid = unix_peer(0, 12345);
        /* Groups not looked up yet, or no passwd entry at all: only the peer's own gid can match. */
        Peer unknown_uid = unix_peer(3999999, 3999999);
        Config c;

        config_with_roles(&c, NULL, "gid:4242 group:root", NULL);
        assert_true(authorize_needs_groups(&c));
        assert_int_equal(authorize_peer(&c, &primary), ROLE_OPERATOR);
        assert_int_equal(authorize_peer(&c, &other), ROLE_NONE);
        assert_int_equal(authorize_peer(&c, &root_other_gid), ROLE_NONE);
        root_other_gid.groups = root_groups;
        root_other_gid.n_groups = 1;
        assert_int_equal(authorize_peer(&c, &root_other_gid), ROLE_NONE); /* not known: not used */
        root_other_gid.groups_known = true;
        assert_int_equal(authorize_peer(&c, &root_other_gid), ROLE_OPERATOR);
        assert_int_equal(authorize_peer(&c, &unknown_uid), ROLE_NONE);
        unknown_uid.gid = 4242;
        assert_int_equal(authorize_peer(&c, &unknown_uid), ROLE_OPERATOR);
        config_done(&c);

        config_with_roles(&c, "uid:1000 unix:*", NULL, "cn:admin");
        assert_false(authorize_needs_groups(&c));
        config_done(&c);
}

static bool changed_called;

static void on_changed(void *userdata) {
        changed_called = true;
        event_base_loopbreak(userdata);
}

/* The cache's answer for p, after running the loop until the worker thread has looked it up. */
static void fill_from_cache(GroupCache *cache, struct event_base *base, Peer *p) {
        if (group_cache_fill(cache, p) == 0)
                return;
        changed_called = false;
        struct timeval tv = { .tv_sec = 10 };
        assert_int_equal(event_base_loopexit(base, &tv), 0);
        assert_int_equal(event_base_dispatch(base), 0);
        assert_true(changed_called);
        assert_int_equal(group_cache_fill(cache, p), 0);
}

/* The real user database through the cache: root's groups hold gid 0; a uid without a passwd
 * entry is known to have none; lookups happen on the worker, never in group_cache_fill(). */
static void test_group_cache(void **state) {
        struct event_base *base = event_base_new();
        GroupCache *cache = NULL;
        Peer root = unix_peer(0, 12345), nobody = unix_peer(3999999, 3999999), tls = tls_op1;
        Config c;

        assert_non_null(base);
        assert_int_equal(group_cache_new(base, 300, on_changed, base, &cache), 0);

        assert_int_equal(group_cache_fill(cache, &tls), 0); /* nothing to look up */
        assert_false(tls.groups_known);

        assert_int_equal(group_cache_fill(cache, &root), 1);
        assert_false(root.groups_known);
        fill_from_cache(cache, base, &root);
        assert_true(root.groups_known);
        bool has_root = false;
        for (size_t i = 0; i < root.n_groups; i++)
                has_root = has_root || root.groups[i] == 0;
        assert_true(has_root);

        fill_from_cache(cache, base, &nobody);
        assert_true(nobody.groups_known);
        assert_int_equal(nobody.n_groups, 0);

        config_with_roles(&c, NULL, "group:root", NULL);
        assert_int_equal(authorize_peer(&c, &root), ROLE_OPERATOR);
        assert_int_equal(authorize_peer(&c, &nobody), ROLE_NONE);
        config_done(&c);

        /* A refresh keeps the answers while it runs. */
        group_cache_refresh(cache);
        Peer again = unix_peer(0, 12345);
        assert_int_equal(group_cache_fill(cache, &again), 0);
        assert_true(again.groups_known);

        group_cache_free(cache);
        event_base_free(base);
}

/* A real supplementary membership: a user listed as member of a group that is not its primary. */
static void test_supplementary_group(void **state) {
        _cleanup_(freep) char *principal = NULL;
        struct event_base *base;
        GroupCache *cache = NULL;
        struct group *gr;
        Peer peer = {};
        bool found = false;
        Config c;

        setgrent();
        while (!found && (gr = getgrent()))
                for (char **m = gr->gr_mem; *m && !found; m++) {
                        struct passwd *pw = getpwnam(*m);

                        if (pw && pw->pw_gid != gr->gr_gid) {
                                peer = unix_peer(pw->pw_uid, pw->pw_gid);
                                assert_true(asprintf(&principal, "gid:%u", (unsigned)gr->gr_gid) >= 0);
                                found = true;
                        }
                }
        endgrent();
        if (!found)
                skip(); /* no such user on this machine */

        base = event_base_new();
        assert_non_null(base);
        assert_int_equal(group_cache_new(base, 300, on_changed, base, &cache), 0);
        config_with_roles(&c, principal, NULL, NULL);
        assert_int_equal(authorize_peer(&c, &peer), ROLE_NONE); /* groups not known yet */
        fill_from_cache(cache, base, &peer);
        assert_int_equal(authorize_peer(&c, &peer), ROLE_READER);
        config_done(&c);
        group_cache_free(cache);
        event_base_free(base);
}

static void test_tls_principals(void **state) {
        Peer other_org = { .kind = PEER_TLS, .subject = "CN=op1,O=elsewhere", .common_name = "op1" };
        Peer no_cn = { .kind = PEER_TLS, .subject = "O=example" };
        Peer root = unix_peer(0, 0);
        Config c;

        config_with_roles(&c, "tls:*", "cn:op1", "subject:CN=op1,O=example");
        assert_int_equal(authorize_peer(&c, &tls_op1), ROLE_ADMIN);
        assert_int_equal(authorize_peer(&c, &other_org), ROLE_OPERATOR);
        assert_int_equal(authorize_peer(&c, &no_cn), ROLE_READER);
        /* Certificate principals never match a local peer, and the other way round. */
        assert_int_equal(authorize_peer(&c, &root), ROLE_NONE);
        config_done(&c);

        config_with_roles(&c, NULL, NULL, "uid:0 unix:*");
        assert_int_equal(authorize_peer(&c, &tls_op1), ROLE_NONE);
        config_done(&c);
}

static void test_san_principals(void **state) {
        static const char *const dns[] = { "node1.example.org", "*.pool.example.org" };
        static const char *const uri[] = { "spiffe://example.org/ns/kube/sa/scheduler" };
        Peer orchestrator = { .kind = PEER_TLS, .subject = "O=example", .san_dns = dns, .n_san_dns = 2,
                              .san_uri = uri, .n_san_uri = 1 };
        Peer other = { .kind = PEER_TLS, .subject = "CN=node1.example.org", .common_name = "node1.example.org" };
        Config c;

        config_with_roles(&c, "san-dns:NODE1.example.org", "san-uri:spiffe://example.org/ns/kube/sa/scheduler", NULL);
        assert_int_equal(authorize_peer(&c, &orchestrator), ROLE_OPERATOR);
        /* A CN is not a SAN. */
        assert_int_equal(authorize_peer(&c, &other), ROLE_NONE);
        config_done(&c);

        /* URIs compare exactly; a wildcard SAN matches only a principal that spells it. */
        config_with_roles(&c, "san-uri:spiffe://example.org/ns/kube/sa/Scheduler san-dns:x.pool.example.org", NULL,
                          "san-dns:*.pool.example.org");
        assert_int_equal(authorize_peer(&c, &orchestrator), ROLE_ADMIN);
        config_done(&c);

        config_with_roles(&c, "san-uri:spiffe://example.org/ns/kube/sa/Scheduler san-dns:x.pool.example.org", NULL,
                          NULL);
        assert_int_equal(authorize_peer(&c, &orchestrator), ROLE_NONE);
        config_done(&c);
}

static void test_wildcards(void **state) {
        Peer user = unix_peer(1234, 1234), root = unix_peer(0, 0);
        Peer insecure = { .kind = PEER_LOCAL_INSECURE };
        Config c;

        config_with_roles(&c, "unix:*", NULL, "uid:0");
        assert_int_equal(authorize_peer(&c, &user), ROLE_READER);
        assert_int_equal(authorize_peer(&c, &root), ROLE_ADMIN);
        assert_int_equal(authorize_peer(&c, &tls_op1), ROLE_NONE);
        /* Plaintext peers have no identity: neither unix:* nor uid:0 (its zeroed uid) matches. */
        assert_int_equal(authorize_peer(&c, &insecure), ROLE_NONE);
        config_done(&c);

        config_with_roles(&c, NULL, "insecure:*", NULL);
        assert_int_equal(authorize_peer(&c, &insecure), ROLE_OPERATOR);
        assert_int_equal(authorize_peer(&c, &user), ROLE_NONE);
        assert_int_equal(authorize_peer(&c, &tls_op1), ROLE_NONE);
        config_done(&c);
}

static void test_hierarchy(void **state) {
        Peer reader = unix_peer(1000, 1000), op = unix_peer(1001, 1001), admin = unix_peer(0, 0);
        Config c;

        /* Listed in several roles: the highest counts. */
        config_with_roles(&c, "uid:1000 uid:1001 uid:0", "uid:1001", "uid:0");
        assert_int_equal(authorize_peer(&c, &op), ROLE_OPERATOR);

        assert_int_equal(authorize_action(&c, &admin, "SetDomainType", ROLE_ADMIN, NULL), 0);
        assert_int_equal(authorize_action(&c, &admin, "Prepare", ROLE_OPERATOR, NULL), 0);
        assert_int_equal(authorize_action(&c, &admin, "ListGroups", ROLE_READER, NULL), 0);
        assert_int_equal(authorize_action(&c, &op, "Prepare", ROLE_OPERATOR, NULL), 0);
        assert_int_equal(authorize_action(&c, &op, "Watch", ROLE_READER, NULL), 0);
        assert_int_equal(authorize_action(&c, &op, "Block", ROLE_ADMIN, NULL), -EPERM);
        assert_int_equal(authorize_action(&c, &reader, "Watch", ROLE_READER, NULL), 0);
        assert_int_equal(authorize_action(&c, &reader, "Release", ROLE_OPERATOR, NULL), -EPERM);
        /* ROLE_NONE is for anyone (Health). */
        assert_int_equal(authorize_action(&c, &tls_op1, "Check", ROLE_NONE, NULL), 0);
        config_done(&c);
}

static void test_denial_message(void **state) {
        Peer reader = unix_peer(1000, 1000), stranger = unix_peer(1002, 1002);
        Peer insecure = { .kind = PEER_LOCAL_INSECURE };
        char *message = (char *)"untouched";
        Config c;

        config_with_roles(&c, "uid:1000", NULL, NULL);

        assert_int_equal(authorize_action(&c, &reader, "ListGroups", ROLE_READER, &message), 0);
        assert_string_equal(message, "untouched");

        assert_int_equal(authorize_action(&c, &reader, "SetDomainType", ROLE_ADMIN, &message), -EPERM);
        assert_string_equal(message,
                            "permission denied: SetDomainType needs the admin role; "
                            "unix uid=1000 has reader; [Roles] Admin= (nobody)");
        free(message);

        assert_int_equal(authorize_action(&c, &stranger, "Prepare", ROLE_OPERATOR, &message), -EPERM);
        assert_string_equal(message,
                            "permission denied: Prepare needs the operator role; unix uid=1002 has no role; "
                            "[Roles] Operator= (nobody)");
        free(message);

        assert_int_equal(authorize_action(&c, &tls_op1, "Watch", ROLE_READER, &message), -EPERM);
        assert_string_equal(message,
                            "permission denied: Watch needs the reader role; "
                            "tls CN=op1,O=example has no role; [Roles] Reader=uid:1000");
        free(message);

        assert_int_equal(authorize_action(&c, &insecure, "Watch", ROLE_READER, &message), -EPERM);
        assert_string_equal(message,
                            "permission denied: Watch needs the reader role; plaintext loopback client has "
                            "no role (plaintext peers have no identity; see insecure:* in [Roles]); "
                            "[Roles] Reader=uid:1000");
        free(message);
        config_done(&c);

        /* Names as the file spells them, so that the message says which group to join. */
        config_with_roles(&c, "group:root cn:op2", NULL, "user:root uid:7");
        assert_int_equal(authorize_action(&c, &tls_op1, "Watch", ROLE_READER, &message), -EPERM);
        assert_string_equal(message,
                            "permission denied: Watch needs the reader role; "
                            "tls CN=op1,O=example has no role; [Roles] Reader=group:root cn:op2");
        free(message);
        assert_int_equal(authorize_action(&c, &stranger, "Block", ROLE_ADMIN, &message), -EPERM);
        assert_string_equal(message,
                            "permission denied: Block needs the admin role; unix uid=1002 has no role; "
                            "[Roles] Admin=user:root uid:7");
        free(message);
        config_done(&c);

        /* The built-in default: root is admin. */
        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(authorize_action(&c, &stranger, "Block", ROLE_ADMIN, &message), -EPERM);
        assert_string_equal(message,
                            "permission denied: Block needs the admin role; unix uid=1002 has no role; "
                            "[Roles] Admin=uid:0");
        free(message);
        config_done(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_role_to_string),
                cmocka_unit_test(test_default_mapping),
                cmocka_unit_test(test_uid_and_user),
                cmocka_unit_test(test_gid_and_group),
                cmocka_unit_test(test_group_cache),
                cmocka_unit_test(test_supplementary_group),
                cmocka_unit_test(test_tls_principals),
                cmocka_unit_test(test_san_principals),
                cmocka_unit_test(test_wildcards),
                cmocka_unit_test(test_hierarchy),
                cmocka_unit_test(test_denial_message),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
