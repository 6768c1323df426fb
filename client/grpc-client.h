/* A small blocking gRPC client (unary and server-streaming calls) over HTTP/2 on a Unix socket or TLS. */
#pragma once

#include <stdint.h>

#include "grpc-status.h"

struct event_base;
typedef struct ProtobufCMessage ProtobufCMessage;
typedef struct ProtobufCMessageDescriptor ProtobufCMessageDescriptor;

typedef struct GrpcClient GrpcClient;

typedef struct GrpcClientOptions {
        /* Exactly one of the two: a Unix socket path, or "HOST:PORT" / "[V6]:PORT" spoken over TLS. */
        const char *unix_path;
        const char *host;
        /* TLS: CA bundle that must have signed the server certificate (NULL: the system's), and the
         * client certificate chain and key to present (both or neither). */
        const char *ca_file;
        const char *cert_file;
        const char *key_file;
        /* Per call, sent as grpc-timeout and enforced locally; 0: none. Also bounds the connect. */
        uint64_t timeout_usec;
} GrpcClientOptions;

/* How a call ended: the server's grpc-status and percent-decoded grpc-message, or, when no answer
 * came, a status and a message of our own (e.g. UNAVAILABLE "connection refused"). */
typedef struct GrpcClientStatus {
        GrpcStatus code;
        char *message; /* NULL when the server sent none */
} GrpcClientStatus;

void grpc_client_status_done(GrpcClientStatus *s);

/* Called for each response message of a streaming call; the callee owns 'msg' (free it with
 * protobuf_c_message_free_unpacked). A negative return cancels the call with that error. */
typedef int (*GrpcClientMessageFunc)(ProtobufCMessage *msg, void *userdata);

/* Copies the options; connects lazily, on the first call, and keeps the connection for the next. */
int grpc_client_new(struct event_base *base, const GrpcClientOptions *options, GrpcClient **ret);
GrpcClient *grpc_client_free(GrpcClient *c);
static inline void grpc_client_freep(GrpcClient **c) {
        grpc_client_free(*c);
}

/* Both calls run the event base until the call ends. They return 0 when the server answered with a
 * status (OK or not: see *ret_status), or -errno when it did not: -ENOENT / -ECONNREFUSED / -EACCES
 * (cannot connect), -ETIMEDOUT (deadline), -ECANCELED (grpc_client_cancel), -EPROTO (TLS or HTTP/2
 * failure), -ECONNRESET (connection lost), -EBADMSG (malformed response). *ret_status is set in
 * every case and must be released with grpc_client_status_done(). On OK, *ret_response is the
 * unpacked unary response, owned by the caller. */
int grpc_client_call(GrpcClient *c, const char *path, const ProtobufCMessage *request,
                     const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **ret_response,
                     GrpcClientStatus *ret_status);
int grpc_client_call_stream(GrpcClient *c, const char *path, const ProtobufCMessage *request,
                            const ProtobufCMessageDescriptor *response_type,
                            GrpcClientMessageFunc on_message, void *userdata, GrpcClientStatus *ret_status);

/* A paged List call (ListGroups, ListDevices: field 1 of the response is the repeated items, with
 * next_page_token beside it; the request has page_token) fetched to its last page: *ret_response is
 * the first page's response (so its sequence is the one the whole list reflects, to Watch from) with
 * the items of every page, and no next_page_token. The request's page_token is used as the first
 * page's and restored before returning; set page_size in it to choose the page size. Returns as
 * grpc_client_call(), with the status of the first page that failed; -EINVAL when the types are not
 * a paged List, -EBADMSG when the server repeats a token. */
int grpc_client_list_all(GrpcClient *c, const char *path, ProtobufCMessage *request,
                         const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **ret_response,
                         GrpcClientStatus *ret_status);

/* Ends the running call (e.g. from a signal event on the same base): the stream is reset with
 * CANCEL and the call returns -ECANCELED. No-op when no call runs. */
void grpc_client_cancel(GrpcClient *c);
