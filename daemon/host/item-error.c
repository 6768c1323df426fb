/* Per-item read problems: which file, what was wrong. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"
#include "macro.h"
#include "string-util.h"

/* strerror() for the errors our readers make up, whose standard texts would puzzle an operator. */
static const char *error_to_string(int error) {
        switch (error < 0 ? -error : error) {
        case EBADMSG:
                return "the file holds NUL bytes, not text";
        case EILSEQ:
                return "the file is not valid UTF-8 text";
        case EFBIG:
                return "the file is larger than any attribute the kernel writes";
        default:
                return strerror(error < 0 ? -error : error);
        }
}

void item_errors_add(ItemErrors *errors, const char *file, int error, const char *message_format, ...) {
        _cleanup_(freep) char *f = NULL, *message = NULL;
        ItemError *e;

        if (message_format) {
                _cleanup_(freep) char *text = NULL;
                va_list ap;
                int k;

                va_start(ap, message_format);
                k = vasprintf(&text, message_format, ap);
                va_end(ap);
                if (k < 0)
                        return;
                /* "cannot parse: No such file or directory" when both are known. */
                if (error != 0) {
                        if (asprintf(&message, "%s: %s", text, error_to_string(error)) < 0)
                                message = NULL;
                } else
                        message = TAKE_PTR(text);
        } else
                message = strdup(error_to_string(error));

        f = strdup(file);
        if (!f || !message)
                return;

        e = array_append(&errors->items, &errors->n, sizeof(ItemError));
        if (!e)
                return;
        e->file = TAKE_PTR(f);
        e->message = TAKE_PTR(message);
}

void item_errors_done(ItemErrors *errors) {
        FOREACH_ARRAY(e, errors->items, errors->n) {
                free(e->file);
                free(e->message);
        }
        free(errors->items);
        *errors = (ItemErrors){};
}

bool item_errors_equal(const ItemErrors *a, const ItemErrors *b) {
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (!streq_ptr(a->items[i].file, b->items[i].file) ||
                    !streq_ptr(a->items[i].message, b->items[i].message))
                        return false;
        return true;
}
