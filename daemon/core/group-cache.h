/* Group memberships from the user database, looked up off the event loop and cached, so that a
 * slow NSS source (LDAP, sssd) can never stall a call: authorize.c only ever reads this cache. */
#pragma once

#include <sys/types.h>

typedef struct GroupCache GroupCache;
typedef struct Peer Peer;
struct event_base;

/* Runs on the loop thread after lookups came back: peers that waited may be asked about again. */
typedef void (*GroupCacheChanged)(void *userdata);

/* Entries are looked up again every refresh_sec (at least 1), and dropped when unused for twice
 * that. */
int group_cache_new(struct event_base *base, unsigned refresh_sec, GroupCacheChanged changed, void *userdata,
                    GroupCache **ret);
GroupCache *group_cache_free(GroupCache *c);
static inline void group_cache_freep(GroupCache **c) {
        group_cache_free(*c);
}

/* Fills p->groups for a Unix peer from the cache. 0: p->groups_known (a uid without a user entry
 * has no groups). 1: not known yet; a lookup is under way and changed() follows. Other peers: 0,
 * nothing to fill. The list stays valid until the next return to the event loop. */
int group_cache_fill(GroupCache *c, Peer *p);

/* Looks every cached uid up again (settings reloaded); the old answers serve until then. */
void group_cache_refresh(GroupCache *c);
void group_cache_set_interval(GroupCache *c, unsigned refresh_sec);
