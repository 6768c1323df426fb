/* Server-supplied text made harmless for a terminal: control characters shown as \xNN, never sent.
 *
 * A device name, a driver or an error message comes from files on the daemon's host; printed raw, an
 * ESC in one of them would let that host move the cursor, retitle the window or hide text on the
 * operator's terminal. --json output needs none of this: JSON escapes control characters itself. */
#include "escape.h"

#include <errno.h>
#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "string-util.h"

/* The rule is util's, shared with the libvirt hook (str_escape_terminal()). */
bool escape_needed(const char *s) {
        return !str_is_terminal_safe(s);
}

char *escape_control(const char *s) {
        return str_escape_terminal(s);
}

static int escape_string(char **s) {
        char *e;

        /* Unpacked strings are heap copies; the shared default "" never needs escaping. */
        if (!*s || !escape_needed(*s))
                return 0;
        e = escape_control(*s);
        if (!e)
                return -ENOMEM;
        free(*s);
        *s = e;
        return 0;
}

int escape_message_strings(ProtobufCMessage *m) {
        const ProtobufCMessageDescriptor *desc;

        if (!m)
                return 0;
        desc = m->descriptor;
        for (unsigned i = 0; i < desc->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &desc->fields[i];
                char *member = (char *)m + f->offset;
                size_t n = 1;
                int r = 0;

                if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
                        continue;
                /* A oneof's members share their storage: only the one that is set holds this type. */
                if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                    *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
                        continue;
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                        n = *(const size_t *)((const char *)m + f->quantifier_offset);
                        member = *(char **)member;
                }
                for (size_t k = 0; r >= 0 && k < n; k++) {
                        void **slot = (void **)member + k;

                        r = f->type == PROTOBUF_C_TYPE_STRING ? escape_string((char **)slot)
                                                              : escape_message_strings(*slot);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}
