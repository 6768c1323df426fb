/* The protos' serialized FileDescriptorSet embedded in the binary, indexed for gRPC server reflection. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct ProtoFile {
        const char *name;     /* "iommud/v1/iommud.proto" */
        size_t offset, size;  /* its serialized FileDescriptorProto inside proto_descriptor_set */
        const uint16_t *deps; /* indexes into proto_files of its direct imports */
        size_t n_deps;
} ProtoFile;

typedef struct ProtoSymbol {
        const char *name; /* fully qualified: package, message, nested message, enum, service, method */
        uint16_t file;    /* index into proto_files */
} ProtoSymbol;

extern const uint8_t proto_descriptor_set[];
extern const size_t proto_descriptor_set_size;
extern const ProtoFile proto_files[]; /* in dependency order: imports come before their importers */
extern const size_t proto_n_files;
extern const ProtoSymbol proto_symbols[]; /* sorted by name (strcmp), for bsearch */
extern const size_t proto_n_symbols;
extern const char *const proto_services[]; /* sorted */
extern const size_t proto_n_services;
