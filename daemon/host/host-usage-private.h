/* Shared between the host-usage readers (storage, network, open nodes); not used by other layers. */
#pragma once

#include "host-usage.h"

/* "../../devices/pci0000:00/…" (a class link's target) -> "devices/pci0000:00/…" (below sys/). */
int sysfs_link_path(int sysfs_fd, const char *link, char **ret);

/* Undoes the octal escapes (\040 for a space) that mountinfo and swaps use, in place. */
void unescape_octal(char *s);

int host_usage_read_storage(const HostRoots *roots, HostUsage *u);
int host_usage_read_network(const HostRoots *roots, HostUsage *u);
int host_usage_read_open_nodes(const HostRoots *roots, HostUsage *u);

void host_usage_storage_done(HostUsage *u);
void host_usage_network_done(HostUsage *u);
void host_usage_open_nodes_done(HostUsage *u);
