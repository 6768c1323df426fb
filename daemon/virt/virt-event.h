/* libvirt's event loop on the daemon's libevent base: the one adapter for libvirt's loop. */
#pragma once

struct event_base;

/* Registers the adapter with virEventRegisterImpl. Call once, on the loop thread, before any libvirt
 * connection is opened; libvirt is then used from the loop thread only. */
int virt_event_register(struct event_base *base);

/* Runs the free callbacks still waiting and drops every watch and timer. Call after the last libvirt
 * connection is closed and before the base is freed. */
void virt_event_unregister(void);
