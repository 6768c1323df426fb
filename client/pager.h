/* A pager for long output on a terminal, started the way systemd's tools start theirs. */
#pragma once

/* When standard output is a terminal, pipes it into $SYSTEMD_PAGER, else $PAGER, else less (with
 * LESS=$SYSTEMD_LESS, default "FRSXMK": one screen prints and exits, colours pass), else more. An
 * empty or "cat" pager means none. Idempotent; 0 also when no pager is wanted or none starts. */
int pager_open(void);
/* Flushes and closes the pipe, waits for the pager to end and gives standard output back. */
void pager_close(void);
