/* The gRPC transport's settings from core's Config: [Limits] (seconds become milliseconds) and [TLS]. */
#include "svc-config.h"

#include "config.h"

void svc_grpc_limits(const ConfigLimits *l, GrpcLimits *ret) {
        *ret = (GrpcLimits){
                .max_connections = l->max_connections,
                .max_connections_per_peer = l->max_connections_per_peer,
                .reserved_connections = l->reserved_connections,
                .max_handshakes = l->max_handshakes,
                .max_streams = l->max_streams,
                .max_message_size = l->max_message_size,
                .max_header_list_size = l->max_header_list_size,
                .max_header_fields = l->max_header_fields,
                .max_connection_memory = l->max_connection_memory,
                .max_peer_memory = l->max_peer_memory,
                .max_memory = l->max_memory,
                .max_send_queue = l->max_send_queue,
                .handshake_timeout_ms = l->handshake_timeout_sec * 1000,
                .header_timeout_ms = l->header_timeout_sec * 1000,
                .request_timeout_ms = l->request_timeout_sec * 1000,
                .idle_timeout_ms = l->idle_timeout_sec * 1000,
                .keepalive_ms = l->keepalive_sec * 1000,
                .keepalive_timeout_ms = l->keepalive_timeout_sec * 1000,
        };
}

void svc_grpc_tls(const Config *c, GrpcTlsConfig *ret) {
        *ret = (GrpcTlsConfig){
                .cert_file = c->tls_certificate,
                .key_file = c->tls_key,
                .client_ca_file = c->tls_client_ca,
                .crl_file = c->tls_crl,
        };
}
