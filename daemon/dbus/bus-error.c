/* errno <-> org.iommud1.Error.*: the single table, used to answer and to decode our own errors. */
#include "bus-error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The first row for an errno names it; later rows with the same errno only decode. */
static const sd_bus_error_map bus_error_table[] = {
        SD_BUS_ERROR_MAP(BUS_ERROR_NOT_FOUND, ENOENT),
        SD_BUS_ERROR_MAP(BUS_ERROR_NOT_FOUND, ENODEV),
        SD_BUS_ERROR_MAP(BUS_ERROR_NOT_FOUND, ENXIO),
        SD_BUS_ERROR_MAP(BUS_ERROR_INVALID_ARGUMENT, EINVAL),
        SD_BUS_ERROR_MAP(BUS_ERROR_ACCESS_DENIED, EPERM),
        SD_BUS_ERROR_MAP(BUS_ERROR_ACCESS_DENIED, EACCES),
        SD_BUS_ERROR_MAP(BUS_ERROR_BUSY, EBUSY),
        SD_BUS_ERROR_MAP(BUS_ERROR_NOT_SUPPORTED, EOPNOTSUPP),
        SD_BUS_ERROR_MAP(BUS_ERROR_NOT_SUPPORTED, ENOSYS),
        SD_BUS_ERROR_MAP(BUS_ERROR_READ_ONLY, EROFS),
        SD_BUS_ERROR_MAP(BUS_ERROR_LIMITS_EXCEEDED, EUSERS),
        SD_BUS_ERROR_MAP(BUS_ERROR_LIMITS_EXCEEDED, ENOBUFS),
        SD_BUS_ERROR_MAP(BUS_ERROR_TIMED_OUT, ETIMEDOUT),
        SD_BUS_ERROR_MAP(BUS_ERROR_TIMED_OUT, ETIME),
        SD_BUS_ERROR_MAP(BUS_ERROR_CANCELLED, ECANCELED),
        SD_BUS_ERROR_MAP(BUS_ERROR_UNAVAILABLE, EAGAIN),
        SD_BUS_ERROR_MAP(BUS_ERROR_UNAVAILABLE, ESHUTDOWN),
        SD_BUS_ERROR_MAP(SD_BUS_ERROR_NO_MEMORY, ENOMEM),
        SD_BUS_ERROR_MAP(BUS_ERROR_FAILED, EIO),
        SD_BUS_ERROR_MAP_END,
};

int bus_error_register(void) {
        return sd_bus_error_add_map(bus_error_table);
}

const char *bus_error_name(int error) {
        error = abs(error);
        for (const sd_bus_error_map *e = bus_error_table; e->name; e++)
                if (e->code == error)
                        return e->name;
        return BUS_ERROR_FAILED;
}

int bus_reply_errno(sd_bus_message *call, int error, const char *message) {
        return sd_bus_reply_method_errorf(call, bus_error_name(error), "%s",
                                          message ?: strerror(abs(error)));
}

int bus_error_set(sd_bus_error *ret_error, int error, const char *message) {
        sd_bus_error_set(ret_error, bus_error_name(error), message ?: strerror(abs(error)));
        return -abs(error);
}
