/* `iommud --dump`: the inventory as the API's messages, printed through the one protobuf -> JSON
 * mapping (proto/proto-json.c) that `iommuctl --json` prints with, so that the two cannot drift. */
#include "svc-dump.h"

#include <assert.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "proto-json.h"
#include "svc-convert.h"

typedef struct JsonStream {
        FILE *f;
        bool compact;
} JsonStream;

/* What a line of a value at most this deep starts with. */
#define STREAM_MAX_DEPTH 2
static const char stream_indent[2 * STREAM_MAX_DEPTH] = "    ";

/* One value, serialized alone and indented for its depth, then freed: only one item's tree exists at
 * a time. The pretty layout is json-c's own (two spaces per level), so the stream equals the tree.
 * The dump is tens of MB on a large host: lines go out with fwrite_unlocked(), never printf. */
static void stream_value(JsonStream *s, json_object *o, unsigned depth) {
        size_t length;
        const char *text = json_object_to_json_string_length(
                o,
                s->compact ? JSON_C_TO_STRING_PLAIN
                           : JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE,
                &length);
        const char *end = text + length;

        assert(depth <= STREAM_MAX_DEPTH);
        for (const char *p = text; p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *next = nl ? nl + 1 : end;

                fwrite_unlocked(p, 1, (size_t)(next - p), s->f);
                if (nl)
                        fwrite_unlocked(stream_indent, 1, 2 * depth, s->f);
                p = next;
        }
        json_object_put(o);
}

static void stream_text(JsonStream *s, const char *text) {
        fwrite_unlocked(text, 1, strlen(text), s->f);
}

static void stream_key(JsonStream *s, const char *key, bool first) {
        if (!first)
                stream_text(s, s->compact ? "," : ",\n");
        stream_text(s, s->compact ? "\"" : "  \"");
        stream_text(s, key);
        stream_text(s, s->compact ? "\":" : "\": ");
}

/* One item of an array: its message built in an arena of its own, mapped, printed, freed. */
typedef json_object *(*DumpItemFunc)(ProtoArena *a, const Inventory *inv, size_t i);

static void stream_array(JsonStream *s, const char *key, const Inventory *inv, size_t n, DumpItemFunc f) {
        stream_key(s, key, false);
        stream_text(s, s->compact ? "[" : "[\n");
        for (size_t i = 0; i < n; i++) {
                ProtoArena arena = {};

                if (!s->compact)
                        stream_text(s, "    ");
                stream_value(s, f(&arena, inv, i), 2);
                proto_arena_done(&arena);
                if (i + 1 < n)
                        stream_text(s, s->compact ? "," : ",\n");
                else if (!s->compact)
                        stream_text(s, "\n");
        }
        stream_text(s, s->compact ? "]" : "  ]");
}

static json_object *unit_item(ProtoArena *a, const Inventory *inv, size_t i) {
        Iommud__V1__Unit *p = unit_to_proto(a, &inv->units[i]);

        return p && !a->oom ? proto_unit_to_json(p) : NULL;
}

static json_object *group_item(ProtoArena *a, const Inventory *inv, size_t i) {
        Iommud__V1__Group *p = group_to_proto(a, inv, &inv->groups[i], false);

        return p && !a->oom ? proto_group_to_json(p) : NULL;
}

static json_object *device_item(ProtoArena *a, const Inventory *inv, size_t i) {
        Iommud__V1__Device *p = device_to_proto(a, &inv->devices[i]);

        return p && !a->oom ? proto_device_to_json(p) : NULL;
}

int inventory_dump(const Inventory *inv, FILE *f, bool compact) {
        JsonStream s = { .f = f, .compact = compact };
        Iommud__V1__HostInfo *host;
        Iommud__V1__ItemError **errors;
        ProtoArena arena = {};
        size_t n_errors;
        int r = 0;

        flockfile(f);
        stream_text(&s, compact ? "{" : "{\n");
        stream_key(&s, "host", true);
        host = host_info_to_proto(&arena, &inv->host);
        stream_value(&s, host && !arena.oom ? proto_host_info_to_json(host) : NULL, 1);
        proto_arena_done(&arena);
        stream_array(&s, "units", inv, inv->n_units, unit_item);
        stream_array(&s, "groups", inv, inv->n_groups, group_item);
        stream_array(&s, "devices", inv, inv->n_devices, device_item);
        stream_key(&s, "errors", false);
        errors = item_errors_to_proto(&arena, &inv->errors, &n_errors);
        if (arena.oom)
                r = -ENOMEM;
        stream_value(&s, proto_errors_to_json(errors, n_errors), 1);
        proto_arena_done(&arena);
        stream_text(&s, compact ? "}\n" : "\n}\n");
        funlockfile(f);
        return r < 0 ? r : ferror(f) ? -EIO : 0;
}
