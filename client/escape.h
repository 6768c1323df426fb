/* Server-supplied text made harmless for a terminal: control characters shown as \xNN, never sent. */
#pragma once

#include <stdbool.h>

typedef struct ProtobufCMessage ProtobufCMessage;

/* True when 's' holds a C0 or C1 control character or DEL (what a terminal would act on). */
bool escape_needed(const char *s);
/* A copy of 's' with each control byte written as \xNN (a C1 character's two UTF-8 bytes both);
 * NULL on OOM. */
char *escape_control(const char *s);
/* Rewrites, in place, every string of an unpacked message and its sub-messages (repeated ones and
 * the set member of a oneof included) that escape_needed(). -ENOMEM leaves the rest as it was. */
int escape_message_strings(ProtobufCMessage *m);
