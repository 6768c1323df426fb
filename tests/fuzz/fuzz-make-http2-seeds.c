/* Writes seeds for fuzz-http2: what nghttp2's client sends for one call of a few methods, each
 * prefixed with the target's two header bytes (role, read sizes). Usage: fuzz-make-http2-seeds DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-grpc-harness.h"
#include "macro.h"

static const struct {
        const char *name;
        const char *path;
        const char *message;
        size_t size;
        uint8_t role, seed;
} seeds[] = {
        { "health-check", "/grpc.health.v1.Health/Check", "", 0, 0, 0 },
        { "health-check-service", "/grpc.health.v1.Health/Check", "\x0a\x16iommud.v1.IommuManager", 24, 0, 7 },
        { "health-watch", "/grpc.health.v1.Health/Watch", "", 0, 1, 0 },
        { "reflection-list", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "\x3a\x00", 2, 0, 3 },
        { "reflection-file", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
          "\x22\x16iommud.v1.IommuManager", 24, 1, 0 },
        { "get-host", "/iommud.v1.IommuManager/GetHost", "", 0, 1, 0 },
        { "unknown-method", "/iommud.v1.IommuManager/NoSuchThing", "\x08\x01", 2, 3, 0 },
        { "denied", "/iommud.v1.IommuManager/SetDomainType", "\x08\x01", 2, 0, 0 },
};

int main(int argc, char *argv[]) {
        if (argc != 2) {
                fprintf(stderr, "Usage: %s DIR\n", argv[0]);
                return EXIT_FAILURE;
        }
        for (size_t i = 0; i < ELEMENTSOF(seeds); i++) {
                uint8_t *wire;
                size_t size;
                char path[4096];
                FILE *f;

                if (fuzz_h2_request(seeds[i].path, (const uint8_t *)seeds[i].message, seeds[i].size, &wire, &size) < 0)
                        return EXIT_FAILURE;
                snprintf(path, sizeof(path), "%s/%s", argv[1], seeds[i].name);
                f = fopen(path, "we");
                if (!f || fputc(seeds[i].role, f) == EOF || fputc(seeds[i].seed, f) == EOF ||
                    fwrite(wire, 1, size, f) != size || fclose(f) != 0)
                        return EXIT_FAILURE;
                free(wire);
        }
        return EXIT_SUCCESS;
}
