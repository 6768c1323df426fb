/* The org.iommud1.Error.* names and the one errno -> D-Bus error name table of the D-Bus transport. */
#pragma once

#include <systemd/sd-bus.h>

#define BUS_ERROR_NOT_FOUND "org.iommud1.Error.NotFound"
#define BUS_ERROR_INVALID_ARGUMENT "org.iommud1.Error.InvalidArgument"
#define BUS_ERROR_ACCESS_DENIED "org.iommud1.Error.AccessDenied"
#define BUS_ERROR_BUSY "org.iommud1.Error.Busy"
#define BUS_ERROR_NOT_SUPPORTED "org.iommud1.Error.NotSupported"
#define BUS_ERROR_LIMITS_EXCEEDED "org.iommud1.Error.LimitsExceeded"
#define BUS_ERROR_TIMED_OUT "org.iommud1.Error.TimedOut"
#define BUS_ERROR_CANCELLED "org.iommud1.Error.Cancelled"
#define BUS_ERROR_UNAVAILABLE "org.iommud1.Error.Unavailable"
#define BUS_ERROR_READ_ONLY "org.iommud1.Error.ReadOnly"
#define BUS_ERROR_FAILED "org.iommud1.Error.Failed"

/* Registers the table with sd-bus so that sd_bus_error_get_errno() knows our names too. */
int bus_error_register(void);

/* The name for -errno (or errno): the table's entry, or BUS_ERROR_FAILED. */
const char *bus_error_name(int error);

/* Answers call with the error named for 'error' and message (NULL: strerror). Returns what
 * sd_bus_reply_method_errorf() returns, so handlers can 'return bus_reply_errno(...)'. */
int bus_reply_errno(sd_bus_message *call, int error, const char *message);

/* Fills ret_error the same way, for property getters and find functions; returns -abs(error). */
int bus_error_set(sd_bus_error *ret_error, int error, const char *message);
