/* Column-aligned text tables for people: widths from the content, optional colour per cell. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "macro.h"

typedef struct Table Table;

/* 'headers' is a NULL-terminated list; it sets the number of columns. */
Table *table_new(const char *const *headers);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free)

/* Rows wider than 'width' (0: no limit) have their shrinkable columns cut, with "…", widest first. */
void table_set_width(Table *t, size_t width);
/* Lets column 'column' (< 64) be cut to fit the width. */
void table_set_shrinkable(Table *t, size_t column);
/* The indent printed before every row. */
void table_set_indent(Table *t, size_t indent);
/* Whether the header row is printed (default: yes); without it, only the cells set the widths. */
void table_set_header(Table *t, bool header);

/* Appends one cell, filling rows left to right; NULL prints as "-", "" as blank. 'color' is an ANSI SGR
 * sequence or NULL. */
int table_add(Table *t, const char *color, const char *text);
_printf_(3, 4) int table_addf(Table *t, const char *color, const char *format, ...);

/* With 'color' false, SGR sequences are left out. */
int table_print(Table *t, FILE *f, bool color);
