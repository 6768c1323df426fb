/* Logging with syslog levels and errno helpers: to the journal with structured fields when systemd
 * runs us, to stderr with a priority prefix otherwise. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "macro.h"

void log_set_max_level(int level);
int log_get_max_level(void);

/* What a message is about, as journal fields: journalctl IOMMUD_GROUP=5 shows a group's story.
 * Fields left zero are not sent. Set group with LOG_GROUP(), since 0 is a group too. */
typedef struct LogFields {
        const char *message_id; /* MESSAGE_ID=, one of log-ids.h: a kind of event, explained in the catalog */
        bool has_group;
        unsigned group;        /* IOMMUD_GROUP= */
        const char *device;    /* IOMMUD_DEVICE=, a PCI address */
        uint64_t operation;    /* IOMMUD_OPERATION=, the operation's id; 0: none */
        const char *peer;      /* IOMMUD_PEER=, who asked (the person behind the call) */
} LogFields;

#define LOG_GROUP(g) .has_group = true, .group = (g)

/* Logs at the given level; returns -abs(error) so callers can 'return log_...errno(r, ...)'.
 * "%m" in the format prints strerror(error). fields may be NULL. */
int log_internal(int level, int error, const LogFields *fields, const char *file, int line, const char *func,
                 const char *format, ...) _printf_(7, 8);

/* Where messages go: "journal" (native protocol, with fields) or "stderr". Decided once: the
 * journal when $JOURNAL_STREAM names our stderr, that is, when systemd connected it. */
const char *log_target(void);

#define log_full_errno(level, error, ...) log_internal(level, error, NULL, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_full(level, ...) (void)log_full_errno(level, 0, __VA_ARGS__)

/* A message with journal fields: log_event(LOG_INFO, ((LogFields){ .message_id = ..., LOG_GROUP(5) }), "..."). */
#define log_event_errno(level, error, fields, ...)                                                        \
        ({                                                                                                \
                const LogFields _f_ = fields;                                                             \
                log_internal(level, error, &_f_, __FILE__, __LINE__, __func__, __VA_ARGS__);              \
        })
#define log_event(level, fields, ...) (void)log_event_errno(level, 0, fields, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, error, __VA_ARGS__)
#define log_info_errno(error, ...) log_full_errno(LOG_INFO, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, error, __VA_ARGS__)

#define log_oom() log_error_errno(ENOMEM, "Out of memory.")
