/* What one client may hold: connection admission per listener, per peer and by role, and memory
 * budgets per connection, per peer and in total (dbus-broker's per-user quotas, for gRPC). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grpc-internal.h"

int grpc_slot_acquire(GrpcServer *s, const char *key, GrpcPeerSlot **ret) {
        GrpcPeerSlot *slot;

        for (slot = s->slots; slot; slot = slot->next)
                if (strcmp(slot->key, key) == 0) {
                        slot->n_conns++;
                        *ret = slot;
                        return 0;
                }
        slot = calloc(1, sizeof(GrpcPeerSlot));
        if (!slot)
                return -ENOMEM;
        slot->key = strdup(key);
        if (!slot->key) {
                free(slot);
                return -ENOMEM;
        }
        slot->n_conns = 1;
        slot->next = s->slots;
        s->slots = slot;
        *ret = slot;
        return 0;
}

void grpc_slot_release(GrpcServer *s, GrpcPeerSlot *slot) {
        if (!slot)
                return;
        if (slot->n_conns > 0)
                slot->n_conns--;
        if (slot->n_conns > 0 || slot->memory > 0)
                return;
        for (GrpcPeerSlot **p = &s->slots; *p; p = &(*p)->next)
                if (*p == slot) {
                        *p = slot->next;
                        break;
                }
        free(slot->key);
        free(slot);
}

GrpcTier grpc_tier_of(const GrpcPeer *peer, GrpcRole role) {
        /* Root on the Unix socket is the libvirt hook and the admin's CLI, whatever [Roles] says. */
        if ((peer->kind == GRPC_PEER_UNIX && peer->uid == 0) || role >= GRPC_ROLE_OPERATOR)
                return GRPC_TIER_PRIVILEGED;
        return role == GRPC_ROLE_READER ? GRPC_TIER_READER : GRPC_TIER_NONE;
}

/* The connections a listener admits from a tier; the reserves above it belong to higher tiers. */
static unsigned tier_connections(const GrpcLimits *l, GrpcTier tier) {
        unsigned keep = tier == GRPC_TIER_NONE ? 2 * l->reserved_connections
                        : tier == GRPC_TIER_READER ? l->reserved_connections
                                                   : 0;

        /* Settings are checked so that this leaves room; never lock a tier out completely. */
        return l->max_connections > keep ? l->max_connections - keep : 1;
}

static size_t tier_memory(const GrpcLimits *l, GrpcTier tier) {
        switch (tier) {
        case GRPC_TIER_NONE:
                return l->max_memory / 2;
        case GRPC_TIER_READER:
                return l->max_memory / 4 * 3;
        default:
                return l->max_memory;
        }
}

static bool peer_limit_exempt(const GrpcConn *c) {
        return c->peer.kind == GRPC_PEER_UNIX && c->peer.uid == 0;
}

bool grpc_conn_admissible(const GrpcConn *c, const char **ret_why) {
        const GrpcLimits *l = &c->server->limits;

        if (c->listener && c->listener->n_conns > tier_connections(l, c->tier)) {
                *ret_why = c->tier == GRPC_TIER_PRIVILEGED ? "the listener is full"
                                                           : "the listener's connections for this role are taken";
                return false;
        }
        if (c->slot && !peer_limit_exempt(c) && c->slot->n_conns > l->max_connections_per_peer) {
                *ret_why = "this peer has too many connections";
                return false;
        }
        return true;
}

bool grpc_conn_budget_allows(const GrpcConn *c, size_t more) {
        const GrpcLimits *l = &c->server->limits;

        if (c->memory + more > l->max_connection_memory)
                return false;
        if (c->slot && c->tier != GRPC_TIER_PRIVILEGED && c->slot->memory + more > l->max_peer_memory)
                return false;
        return c->server->memory + more <= tier_memory(l, c->tier);
}

void grpc_conn_charge(GrpcConn *c, ssize_t delta) {
        c->memory += (size_t)delta;
        if (c->slot)
                c->slot->memory += (size_t)delta;
        c->server->memory += (size_t)delta;
}
