/* Who may call what on org.iommud1: every method call on our objects passes one bus filter. */
#pragma once

typedef struct BusAuthorizer BusAuthorizer;
typedef struct Config Config;
typedef struct GroupCache GroupCache;
typedef struct sd_bus sd_bus;

/* Installs the filter on bus. config and groups are borrowed; config is read per call. */
int bus_authorizer_new(sd_bus *bus, const Config *config, GroupCache *groups, BusAuthorizer **ret);
/* The group cache has new answers: calls held for them are judged again. */
void bus_authorizer_groups_changed(BusAuthorizer *a);
/* Answers pending calls with an error and removes the filter. */
BusAuthorizer *bus_authorizer_free(BusAuthorizer *a);
static inline void bus_authorizer_freep(BusAuthorizer **a) {
        bus_authorizer_free(*a);
}
