/* INI files through inih, with the line numbers and syntax checks inih leaves out, so that every
 * problem can be reported as "file:line: ...". Used by the daemon's config and the policy files. */
#pragma once

#include <stdio.h>

/* The longest line inih accepts: its 200-byte buffer holds "\r\n\0" besides the text. */
#define INI_LINE_MAX 197

typedef struct IniHandler {
        /* A "[name]" line. Returning < 0 rejects the section (the callback reported why): keys in it
         * are then skipped without another message. */
        int (*on_section)(void *userdata, const char *name, unsigned line);
        /* A Key=Value line in an accepted section. Returns < 0 for a bad key or value, reported by
         * the callback itself. An indented line continues the previous key: it is passed again with
         * the continuation as its value. */
        int (*on_key)(void *userdata, const char *section, const char *key, const char *value,
                      unsigned line);
        /* A problem the reader found itself (syntax, over-long line, key before any section); the
         * message carries no location. */
        void (*on_error)(void *userdata, unsigned line, const char *message);
        /* Appended to "line is longer than N characters", e.g. "; split it". May be NULL. */
        const char *long_line_hint;
} IniHandler;

/* Reads all of f, so that every problem is reported, not only the first. Returns 0 when nothing was
 * reported; -ENOMEM when a callback or inih ran out of memory; -EIO when f could not be read (not
 * reported: the caller knows the file's name); otherwise the last error a callback returned, or
 * -EINVAL. */
int ini_read(FILE *f, const IniHandler *handler, void *userdata);
