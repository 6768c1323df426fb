/* inih with line numbers: an fgets-like reader that counts lines and reports what inih only counts. */
#include "ini-reader.h"

#include <errno.h>
#include <ini.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "string-util.h"

#define SYNTAX_ERROR "syntax error: expected [Section], Key=Value, or a comment starting with # or ;"

typedef struct IniState {
        const IniHandler *handler;
        void *userdata;
        FILE *file;
        unsigned line;
        char *section;             /* the last section entered, NULL before the first */
        bool section_rejected;     /* on_section() refused it: skip its keys silently */
        unsigned first_inih_error; /* first line we reported that inih also counts as an error; 0: none */
        int error;
} IniState;

static void fail(IniState *st, int error) {
        /* Out of memory wins over a bad value: the file may well be fine. */
        if (st->error != -ENOMEM)
                st->error = error;
}

/* inih counts this line as an error too; remember that it has been reported. */
static void mark_inih_error(IniState *st) {
        if (st->first_inih_error == 0)
                st->first_inih_error = st->line;
}

static void report(IniState *st, const char *message) {
        st->handler->on_error(st->userdata, st->line, message);
        fail(st, -EINVAL);
}

/* Takes ownership of name. */
static void enter_section(IniState *st, char *name) {
        int r;

        free(st->section);
        st->section = name;
        r = st->handler->on_section(st->userdata, name, st->line);
        st->section_rejected = r < 0;
        if (r < 0)
                fail(st, r);
}

/* inih's reader callback. It exists because the distribution's inih does not pass line numbers to
 * the handler: we count lines here. It also reports what inih only counts or gets wrong: syntax
 * errors (inih returns just the first error's line), over-long lines (inih would parse their tail as
 * a line of its own) and sections without keys (inih calls back only for keys). */
static char *on_read_line(char *buf, int size, void *userdata) {
        IniState *st = userdata;
        const char *s = buf;
        size_t len;

        if (!fgets(buf, size, st->file))
                return NULL;
        st->line++;

        len = strlen(buf);
        if (len > 0 && buf[len - 1] != '\n') {
                int ch = fgetc(st->file);

                if (ch != EOF && ch != '\n') {
                        _cleanup_(freep) char *message = NULL;

                        while (ch != EOF && ch != '\n')
                                ch = fgetc(st->file);
                        message = strprintf("line is longer than %d characters%s", size - 3,
                                            st->handler->long_line_hint ?: "");
                        if (message)
                                report(st, message);
                        else
                                fail(st, -ENOMEM);
                        /* An empty line in its place, so nothing of it is applied. */
                        strcpy(buf, "\n");
                        return buf;
                }
        }

        if (st->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0) /* inih skips a UTF-8 BOM */
                s += 3;

        /* Indented lines are left to inih: after a key they continue its value. */
        if (s[0] == '[') {
                const char *end = strchr(s, ']');
                char *name;

                if (!end) {
                        report(st, "syntax error: section header without ']'");
                        mark_inih_error(st);
                        return buf;
                }
                name = strndup(s + 1, end - s - 1);
                if (!name) {
                        fail(st, -ENOMEM);
                        return buf;
                }
                enter_section(st, name);
        } else if (s[0] && !strchr(" \t\r\n;#", s[0]) && !strpbrk(s, "=:")) {
                report(st, SYNTAX_ERROR);
                mark_inih_error(st);
        }
        return buf;
}

/* inih's key callback; returning 0 makes inih count the line as an error, which we then have reported. */
static int on_ini_key(void *userdata, const char *section, const char *key, const char *value) {
        IniState *st = userdata;
        int r;

        if (!*section) {
                _cleanup_(freep) char *message = strprintf("%s= is outside of any section", key);

                if (message)
                        report(st, message);
                else
                        fail(st, -ENOMEM);
                mark_inih_error(st);
                return 0;
        }

        /* A header inih saw and our reader did not: an indented "[...]" with no key before it. */
        if (!st->section || strcmp(st->section, section) != 0) {
                char *name = strdup(section);

                if (!name) {
                        fail(st, -ENOMEM);
                        mark_inih_error(st);
                        return 0;
                }
                enter_section(st, name);
        }

        if (st->section_rejected)
                r = -EINVAL;
        else
                r = st->handler->on_key(st->userdata, section, key, value, st->line);
        if (r < 0) {
                fail(st, r);
                mark_inih_error(st);
                return 0;
        }
        return 1;
}

int ini_read(FILE *f, const IniHandler *handler, void *userdata) {
        IniState st = { .handler = handler, .userdata = userdata, .file = f };
        int r;

        r = ini_parse_stream(on_read_line, &st, on_ini_key, &st);
        free(st.section);
        /* -2: inih could not allocate its line buffer (heap builds only). */
        if (r == -2 || st.error == -ENOMEM)
                return -ENOMEM;
        if (ferror(f))
                return -EIO;

        /* inih returns the first line it rejected. If we did not report that line, it is a syntax
         * error our reader's quick check missed (such as "Key ; a=b": inih cuts the comment first). */
        if (r > 0 && (st.first_inih_error == 0 || (unsigned)r < st.first_inih_error)) {
                handler->on_error(userdata, r, SYNTAX_ERROR);
                if (st.error == 0)
                        st.error = -EINVAL;
        }
        return st.error;
}
