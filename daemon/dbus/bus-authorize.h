/* Who may call what on org.iommud1: every method call on our objects passes one bus filter. */
#pragma once

typedef struct BusAuthorizer BusAuthorizer;
typedef struct Config Config;
typedef struct sd_bus sd_bus;

/* Installs the filter on bus. config is borrowed and read per call. */
int bus_authorizer_new(sd_bus *bus, const Config *config, BusAuthorizer **ret);
/* Answers pending calls with an error and removes the filter. */
BusAuthorizer *bus_authorizer_free(BusAuthorizer *a);
static inline void bus_authorizer_freep(BusAuthorizer **a) {
        bus_authorizer_free(*a);
}
