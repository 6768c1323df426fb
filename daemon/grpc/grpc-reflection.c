/* gRPC server reflection (v1 and v1alpha on one handler) from the embedded FileDescriptorSet. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "descriptor-set.h"
#include "grpc-internal.h"
#include "macro.h"
#include "reflection.pb-c.h"

/* NOT_FOUND travels inside an OK stream message; grpcurl treats it as "no such element". */
#define REFLECTION_NOT_FOUND 5

static int symbol_cmp(const void *key, const void *elem) {
        return strcmp(key, ((const ProtoSymbol *)elem)->name);
}

static const ProtoSymbol *symbol_find(const char *name) {
        return bsearch(name, proto_symbols, proto_n_symbols, sizeof(ProtoSymbol), symbol_cmp);
}

/* Fields and enum values are not indexed: resolve them through their parent's file. */
static int file_for_symbol(const char *name) {
        char buf[512];

        const ProtoSymbol *sym = symbol_find(name);
        if (sym)
                return sym->file;
        size_t n = strlen(name);
        if (n >= sizeof(buf))
                return -ENOENT;
        memcpy(buf, name, n + 1);
        char *dot = strrchr(buf, '.');
        if (!dot)
                return -ENOENT;
        *dot = '\0';
        sym = symbol_find(buf);
        return sym ? sym->file : -ENOENT;
}

static int file_for_name(const char *name) {
        for (size_t i = 0; i < proto_n_files; i++)
                if (strcmp(proto_files[i].name, name) == 0)
                        return (int)i;
        return -ENOENT;
}

/* The requested file first, then its transitive imports, each once. */
static void closure_add(size_t file, bool *seen, ProtobufCBinaryData *out, size_t *n) {
        if (seen[file])
                return;
        seen[file] = true;
        out[(*n)++] = (ProtobufCBinaryData){
                .len = proto_files[file].size,
                .data = (uint8_t *)(proto_descriptor_set + proto_files[file].offset),
        };
        for (size_t i = 0; i < proto_files[file].n_deps; i++)
                closure_add(proto_files[file].deps[i], seen, out, n);
}

static bool service_registered(GrpcServer *s, const char *service) {
        size_t n = strlen(service);

        for (size_t i = 0; i < s->n_methods; i++) {
                const char *p = s->methods[i].method->path;
                if (strncmp(p + 1, service, n) == 0 && p[1 + n] == '/')
                        return true;
        }
        return false;
}

static int on_reflection_info(GrpcCall *call, const ProtobufCMessage *request, void *userdata) {
        const Grpc__Reflection__V1__ServerReflectionRequest *req =
                (const Grpc__Reflection__V1__ServerReflectionRequest *)request;
        Grpc__Reflection__V1__ServerReflectionResponse resp =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
        Grpc__Reflection__V1__FileDescriptorResponse fdr =
                GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
        Grpc__Reflection__V1__ListServiceResponse lsr = GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
        Grpc__Reflection__V1__ExtensionNumberResponse enr =
                GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
        Grpc__Reflection__V1__ErrorResponse err = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
        _cleanup_(freep) ProtobufCBinaryData *blobs = NULL;
        _cleanup_(freep) bool *seen = NULL;
        _cleanup_(freep) Grpc__Reflection__V1__ServiceResponse *svcs = NULL;
        _cleanup_(freep) Grpc__Reflection__V1__ServiceResponse **svcp = NULL;
        int file = -ENOENT;

        /* Client half-closed: every request was answered as it came. */
        if (!request)
                return grpc_call_finish(call);

        resp.valid_host = req->host;
        resp.original_request = (Grpc__Reflection__V1__ServerReflectionRequest *)req;

        switch (req->message_request_case) {
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES: {
                GrpcServer *s = grpc_call_get_server(call);
                svcs = calloc(proto_n_services, sizeof(*svcs));
                svcp = calloc(proto_n_services, sizeof(*svcp));
                if (!svcs || !svcp)
                        return -ENOMEM;
                for (size_t i = 0; i < proto_n_services; i++) {
                        if (!service_registered(s, proto_services[i]))
                                continue;
                        grpc__reflection__v1__service_response__init(&svcs[lsr.n_service]);
                        svcs[lsr.n_service].name = (char *)proto_services[i];
                        svcp[lsr.n_service] = &svcs[lsr.n_service];
                        lsr.n_service++;
                }
                lsr.service = svcp;
                resp.message_response_case =
                        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
                resp.list_services_response = &lsr;
                return grpc_call_send(call, &resp.base);
        }
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
                file = file_for_name(req->file_by_filename ? req->file_by_filename : "");
                break;
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
                file = file_for_symbol(req->file_containing_symbol ? req->file_containing_symbol : "");
                break;
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE: {
                const char *type =
                        req->all_extension_numbers_of_type ? req->all_extension_numbers_of_type : "";
                if (!symbol_find(type))
                        break;
                /* proto3 only: no extensions anywhere, and that is a valid answer. */
                enr.base_type_name = (char *)type;
                resp.message_response_case =
                        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
                resp.all_extension_numbers_response = &enr;
                return grpc_call_send(call, &resp.base);
        }
        default:
                break;
        }

        if (file < 0) {
                err.error_code = REFLECTION_NOT_FOUND;
                err.error_message = (char *)"not found";
                resp.message_response_case =
                        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
                resp.error_response = &err;
                return grpc_call_send(call, &resp.base);
        }

        blobs = calloc(proto_n_files, sizeof(*blobs));
        seen = calloc(proto_n_files, sizeof(*seen));
        if (!blobs || !seen)
                return -ENOMEM;
        closure_add((size_t)file, seen, blobs, &fdr.n_file_descriptor_proto);
        fdr.file_descriptor_proto = blobs;
        resp.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp.file_descriptor_response = &fdr;
        return grpc_call_send(call, &resp.base);
}

/* The two versions are wire-identical, so one decoder serves both. */
static const GrpcMethod reflection_methods[] = {
        {
                .path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                .kind = GRPC_METHOD_BIDI_STREAM,
                .request = &grpc__reflection__v1__server_reflection_request__descriptor,
                .handler = on_reflection_info,
                .role = GRPC_ROLE_NONE,
        },
        {
                .path = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                .kind = GRPC_METHOD_BIDI_STREAM,
                .request = &grpc__reflection__v1__server_reflection_request__descriptor,
                .handler = on_reflection_info,
                .role = GRPC_ROLE_NONE,
        },
};

int grpc_reflection_add_methods(GrpcServer *s) {
        return grpc_server_add_methods(s, reflection_methods, ELEMENTSOF(reflection_methods), NULL);
}

int grpc_server_add_standard_services(GrpcServer *s) {
        int r = grpc_health_add_methods(s);
        if (r < 0)
                return r;
        return grpc_reflection_add_methods(s);
}
