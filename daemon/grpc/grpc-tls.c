/* TLS for the gRPC listener: the server context (ALPN h2, client certificates, CRLs, resumption)
 * and the identity a verified client certificate gives its holder. */
#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc-internal.h"
#include "log.h"
#include "strv.h"

/* Generous for any real DN or name list, small enough that a crafted certificate cannot make
 * every call's role check expensive. */
#define MAX_SUBJECT 2048
#define MAX_SANS 64

/* What a client certificate says about its holder; certificates that say it ambiguously are refused. */
typedef struct CertIdentity {
        char *subject;     /* RFC 2253 */
        char *common_name; /* UTF-8, NULL when there is none */
        char **san_dns;    /* NULL-terminated, may be NULL */
        size_t n_san_dns;
        char **san_uri;
        size_t n_san_uri;
} CertIdentity;

static void cert_identity_done(CertIdentity *id) {
        free(id->subject);
        free(id->common_name);
        strv_free(id->san_dns);
        strv_free(id->san_uri);
        *id = (CertIdentity){};
}

static bool text_is_clean(const unsigned char *s, size_t n) {
        /* No NUL (C would cut the name there), no control characters (they end up in logs). */
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] == 0x7f)
                        return false;
        return n > 0;
}

static int subject_rfc2253(X509_NAME *name, char **ret) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *data = NULL;
        int r = 0;

        if (!bio)
                return -ENOMEM;
        /* RFC 2253 escapes control bytes and NUL as \XX, so the string is one C string. */
        if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0)
                r = -EBADMSG;
        long n = r < 0 ? 0 : BIO_get_mem_data(bio, &data);
        if (r == 0 && (n < 0 || n > MAX_SUBJECT || (n > 0 && memchr(data, 0, (size_t)n))))
                r = -EBADMSG;
        if (r == 0) {
                *ret = strndup(n > 0 ? data : "", (size_t)n);
                if (!*ret)
                        r = -ENOMEM;
        }
        BIO_free(bio);
        return r;
}

/* Exactly one CN, or none. Two CNs, a CN that is not valid text in its ASN.1 type, or one with
 * NUL or control characters: -EBADMSG, because a name matcher could be made to see either half. */
static int common_name(X509_NAME *name, char **ret) {
        int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
        unsigned char *utf8 = NULL;

        if (i < 0) {
                *ret = NULL;
                return 0;
        }
        if (X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
                return -EBADMSG;
        int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
        if (n < 0)
                return -EBADMSG;
        int r = text_is_clean(utf8, (size_t)n) ? 0 : -EBADMSG;
        if (r == 0) {
                *ret = strndup((const char *)utf8, (size_t)n);
                if (!*ret)
                        r = -ENOMEM;
        }
        OPENSSL_free(utf8);
        return r;
}

/* DNS names and URIs are IA5String: printable ASCII without spaces is all a principal can name. */
static int san_add(char ***list, size_t *n, const ASN1_IA5STRING *s) {
        const unsigned char *d = ASN1_STRING_get0_data(s);
        int len = ASN1_STRING_length(s);

        if (len <= 0 || *n >= MAX_SANS)
                return -EBADMSG;
        for (int i = 0; i < len; i++)
                if (d[i] <= 0x20 || d[i] >= 0x7f)
                        return -EBADMSG;
        char *copy = strndup((const char *)d, (size_t)len);
        if (!copy)
                return -ENOMEM;
        int r = strv_push(list, n, copy);
        if (r < 0)
                free(copy);
        return r;
}

static int subject_alt_names(X509 *cert, CertIdentity *id) {
        int crit = -1;
        GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
        int r = 0;

        if (!names)
                /* -1: none. Anything else (-2: the extension twice, or undecodable) is ambiguous. */
                return crit == -1 ? 0 : -EBADMSG;
        for (int i = 0; r == 0 && i < sk_GENERAL_NAME_num(names); i++) {
                const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
                if (gn->type == GEN_DNS)
                        r = san_add(&id->san_dns, &id->n_san_dns, gn->d.dNSName);
                else if (gn->type == GEN_URI)
                        r = san_add(&id->san_uri, &id->n_san_uri, gn->d.uniformResourceIdentifier);
        }
        GENERAL_NAMES_free(names);
        return r;
}

static int cert_identity(X509 *cert, CertIdentity *ret) {
        CertIdentity id = {};
        X509_NAME *subject = X509_get_subject_name(cert);
        int r;

        r = subject_rfc2253(subject, &id.subject);
        if (r >= 0)
                r = common_name(subject, &id.common_name);
        if (r >= 0)
                r = subject_alt_names(cert, &id);
        if (r < 0) {
                cert_identity_done(&id);
                return r;
        }
        *ret = id;
        return 0;
}

static int on_verify(int ok, X509_STORE_CTX *store) {
        if (!ok || X509_STORE_CTX_get_error_depth(store) != 0)
                return ok;

        /* The chain is good; refuse a leaf whose names are ambiguous before the handshake ends, so
         * the client gets an alert instead of a connection that cannot be trusted. */
        CertIdentity id = {};
        int r = cert_identity(X509_STORE_CTX_get_current_cert(store), &id);
        cert_identity_done(&id);
        if (r == -EBADMSG) {
                SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
                GrpcConn *c = ssl ? SSL_get_app_data(ssl) : NULL;
                if (c)
                        grpc_server_log_refusal(c->server,
                                                "Refusing TLS client %s: its certificate has two CNs, a "
                                                "CN or subject alternative name with NUL or control "
                                                "characters, or invalid text.",
                                                c->description);
                X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
                return 0;
        }
        if (r < 0) {
                X509_STORE_CTX_set_error(store, X509_V_ERR_OUT_OF_MEM);
                return 0;
        }
        return 1;
}

int grpc_tls_peer_identity(GrpcConn *c) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        CertIdentity id = {};

        /* The handshake already required and verified the certificate; this only names it. */
        X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
        if (!cert)
                return -ENOKEY;
        int r = cert_identity(cert, &id);
        if (r < 0)
                return r;

        c->subject = TAKE_PTR(id.subject);
        c->common_name = TAKE_PTR(id.common_name);
        c->san_dns = TAKE_PTR(id.san_dns);
        c->san_uri = TAKE_PTR(id.san_uri);
        c->peer.subject = c->subject;
        c->peer.common_name = c->common_name;
        c->peer.san_dns = (const char *const *)c->san_dns;
        c->peer.n_san_dns = id.n_san_dns;
        c->peer.san_uri = (const char *const *)c->san_uri;
        c->peer.n_san_uri = id.n_san_uri;
        return 0;
}

static int on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                          unsigned int inlen, void *arg) {
        /* h2 or nothing: gRPC clients must fail a connection that did not negotiate it anyway. */
        for (unsigned i = 0; i < inlen;) {
                unsigned l = in[i];
                if (i + 1 + l > inlen)
                        break;
                if (l == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
                        *out = in + i + 1;
                        *outlen = 2;
                        return SSL_TLSEXT_ERR_OK;
                }
                i += 1 + l;
        }
        return SSL_TLSEXT_ERR_ALERT_FATAL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(SSL_CTX *, SSL_CTX_free)

static int load_crls(SSL_CTX *ctx, const char *path) {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());

        if (!lookup || X509_load_crl_file(lookup, path, X509_FILETYPE_PEM) <= 0) {
                log_error("Cannot load CRLs from %s: %s", path, ERR_reason_error_string(ERR_get_error()));
                return -EBADMSG;
        }
        /* The leaf is checked; its issuer's CRL must be in the file, or the client is refused
         * ("unable to get certificate CRL"): unknown is never taken as "not revoked". */
        if (X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK) != 1)
                return -ENOMEM;
        return 0;
}

int grpc_tls_context_new(const GrpcTlsConfig *tls, SSL_CTX **ret) {
        static const unsigned char session_context[] = "iommud-grpc";
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;

        if (!tls || !tls->cert_file || !tls->key_file || !tls->client_ca_file)
                return -EINVAL;
        ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx)
                return -ENOMEM;
        /* HTTP/2 forbids TLS < 1.2 and the weak TLS 1.2 suites (RFC 9113 9.2). */
        if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
            SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1)
                return -EINVAL;
        SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                         SSL_OP_CIPHER_SERVER_PREFERENCE);
        /* Without it, resuming a session that carried a client certificate fails the handshake with
         * internal_error ("session id context uninitialized"). */
        if (SSL_CTX_set_session_id_context(ctx, session_context, sizeof(session_context) - 1) != 1)
                return -ENOMEM;

        if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert_file) != 1) {
                log_error("Cannot load TLS certificate %s: %s", tls->cert_file,
                          ERR_reason_error_string(ERR_get_error()));
                return -EBADMSG;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, tls->key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
                log_error("Cannot load TLS key %s: %s", tls->key_file, ERR_reason_error_string(ERR_get_error()));
                return -EBADMSG;
        }
        if (SSL_CTX_load_verify_locations(ctx, tls->client_ca_file, NULL) != 1) {
                log_error("Cannot load client CA %s: %s", tls->client_ca_file,
                          ERR_reason_error_string(ERR_get_error()));
                return -EBADMSG;
        }
        if (tls->crl_file) {
                int r = load_crls(ctx, tls->crl_file);
                if (r < 0)
                        return r;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(tls->client_ca_file);
        if (names)
                SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, on_verify);
        SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, NULL);

        *ret = TAKE_PTR(ctx);
        return 0;
}
