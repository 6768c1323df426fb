/* Server-supplied text made harmless for a terminal: control characters shown as \xNN, never sent. */
#pragma once

#include <stdbool.h>

typedef struct ProtobufCMessage ProtobufCMessage;

/* True when 's' holds what a terminal would act on or show misleadingly: a C0 or C1 control
 * character, DEL, a bidirectional override or isolate, a byte that is not UTF-8 (or a backslash,
 * which the escapes themselves use). */
bool escape_needed(const char *s);
/* A copy of 's' with those written as \xNN or \uNNNN and a backslash as \\; NULL on OOM. */
char *escape_control(const char *s);
/* Rewrites, in place, every string of an unpacked message and its sub-messages (repeated ones and
 * the set member of a oneof included) that escape_needed(). -ENOMEM leaves the rest as it was. */
int escape_message_strings(ProtobufCMessage *m);
