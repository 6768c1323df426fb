/* Column-aligned text tables for people: widths from the content, optional colour per cell. */
#include "table.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ANSI_BOLD "\033[1m"
#define ANSI_RESET "\033[0m"

typedef struct Cell {
        char *text;
        const char *color;
} Cell;

struct Table {
        size_t n_columns;
        char **headers;
        Cell *cells;
        size_t n_cells;
        uint64_t shrinkable; /* bit per column */
        size_t max_width;
        size_t indent;
        bool no_header;
};

/* Terminal columns taken by UTF-8 text: one per code point (names in pci.ids are not CJK). */
static size_t text_width(const char *s) {
        size_t n = 0;

        for (; *s; s++)
                if (((unsigned char)*s & 0xc0) != 0x80)
                        n++;
        return n;
}

Table *table_new(const char *const *headers) {
        Table *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        while (headers[t->n_columns])
                t->n_columns++;
        t->headers = calloc(t->n_columns, sizeof(char *));
        if (!t->headers)
                return table_free(t);
        for (size_t i = 0; i < t->n_columns; i++)
                if (!(t->headers[i] = strdup(headers[i])))
                        return table_free(t);
        return t;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; t->headers && i < t->n_columns; i++)
                free(t->headers[i]);
        free(t->headers);
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i].text);
        free(t->cells);
        free(t);
        return NULL;
}

void table_set_width(Table *t, size_t width) {
        t->max_width = width;
}

void table_set_shrinkable(Table *t, size_t column) {
        if (column < 64)
                t->shrinkable |= UINT64_C(1) << column;
}

void table_set_indent(Table *t, size_t indent) {
        t->indent = indent;
}

void table_set_header(Table *t, bool header) {
        t->no_header = !header;
}

int table_add(Table *t, const char *color, const char *text) {
        Cell *c = array_append(&t->cells, &t->n_cells, sizeof(Cell));

        if (!c)
                return -ENOMEM;
        c->text = strdup(text ?: "-");
        c->color = color;
        if (!c->text) {
                t->n_cells--;
                return -ENOMEM;
        }
        return 0;
}

int table_addf(Table *t, const char *color, const char *format, ...) {
        _cleanup_(freep) char *s = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return table_add(t, color, s);
}

/* Prints 'text' in exactly 'width' columns (cut with "…" when longer), or unpadded when last. */
static void print_cell(FILE *f, const char *text, size_t width, bool last, const char *color) {
        size_t w = text_width(text);

        if (color)
                fputs(color, f);
        if (w > width) {
                size_t n = 0;
                const char *p = text;

                for (; *p && n < width - 1; p++) {
                        fputc(*p, f);
                        if (((unsigned char)p[1] & 0xc0) != 0x80)
                                n++;
                }
                fputs("…", f);
                w = width;
        } else
                fputs(text, f);
        if (color)
                fputs(ANSI_RESET, f);
        if (!last)
                fprintf(f, "%*s", (int)(width - w + 2), "");
}

int table_print(Table *t, FILE *f, bool color) {
        _cleanup_(freep) size_t *widths = calloc(t->n_columns, sizeof(size_t));
        size_t total = t->indent;

        if (!widths)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_columns; i++)
                widths[i] = t->no_header ? 0 : text_width(t->headers[i]);
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t w = text_width(t->cells[i].text), col = i % t->n_columns;

                if (w > widths[col])
                        widths[col] = w;
        }
        for (size_t i = 0; i < t->n_columns; i++)
                total += widths[i] + (i + 1 < t->n_columns ? 2 : 0);
        /* Names stay readable down to this many columns; below that the row just wraps. */
        while (t->max_width > 0 && total > t->max_width) {
                size_t widest = t->n_columns;

                for (size_t i = 0; i < t->n_columns && i < 64; i++)
                        if ((t->shrinkable & (UINT64_C(1) << i)) && widths[i] > 16 &&
                            (widest == t->n_columns || widths[i] > widths[widest]))
                                widest = i;
                if (widest == t->n_columns)
                        break;
                widths[widest]--;
                total--;
        }

        if (!t->no_header) {
                fprintf(f, "%*s", (int)t->indent, "");
                for (size_t i = 0; i < t->n_columns; i++)
                        print_cell(f, t->headers[i], widths[i], i + 1 == t->n_columns, color ? ANSI_BOLD : NULL);
                fputc('\n', f);
        }
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t col = i % t->n_columns;

                if (col == 0)
                        fprintf(f, "%*s", (int)t->indent, "");
                print_cell(f, t->cells[i].text, widths[col], col + 1 == t->n_columns || i + 1 == t->n_cells,
                           color ? t->cells[i].color : NULL);
                if (col + 1 == t->n_columns || i + 1 == t->n_cells)
                        fputc('\n', f);
        }
        return 0;
}
