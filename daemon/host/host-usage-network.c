/* Network facts: every interface in sysfs with its state, master and uppers, and the addresses
 * and routes of the host's (PID 1's) network namespace. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fileio.h"
#include "host-usage-private.h"
#include "macro.h"
#include "parse.h"
#include "string-util.h"
#include "strv.h"

void host_usage_network_done(HostUsage *u) {
        FOREACH_ARRAY(i, u->interfaces, u->n_interfaces) {
                free(i->name);
                free(i->path);
                free(i->operstate);
                free(i->master);
                strv_free(i->uppers);
                strv_free(i->addresses);
        }
        free(u->interfaces);
        free(u->interfaces_unknown);
        free(u->routes_unknown);
}

const NetInterface *host_usage_find_interface(const HostUsage *u, const char *name) {
        FOREACH_ARRAY(i, u->interfaces, u->n_interfaces)
                if (streq(i->name, name))
                        return i;
        return NULL;
}

static NetInterface *find_interface(HostUsage *u, const char *name) {
        return (NetInterface *)host_usage_find_interface(u, name);
}

static int read_interface(int sysfs_fd, const char *name, NetInterface *i) {
        _cleanup_(freep) char *dir = strprintf("sys/class/net/%s", name), *flags_path = NULL, *flags = NULL,
                             *operstate_path = NULL, *master_path = NULL;
        _cleanup_(strv_freep) char **entries = NULL;
        size_t n_uppers = 0;
        uint32_t value;
        int r;

        if (!dir || !(i->name = strdup(name)) || !(i->uppers = calloc(1, sizeof(char *))) ||
            !(i->addresses = calloc(1, sizeof(char *))))
                return -ENOMEM;
        r = sysfs_link_path(sysfs_fd, dir, &i->path);
        if (r == -ENOMEM)
                return r;

        flags_path = strprintf("%s/flags", dir);
        operstate_path = strprintf("%s/operstate", dir);
        master_path = strprintf("%s/master", dir);
        if (!flags_path || !operstate_path || !master_path)
                return -ENOMEM;
        if (read_attr_at(sysfs_fd, flags_path, &flags) >= 0 && parse_u32(flags, 16, &value) >= 0) {
                i->flags = value;
                i->flags_known = true;
        }
        (void)read_attr_at(sysfs_fd, operstate_path, &i->operstate);
        r = read_link_basename_at(sysfs_fd, master_path, &i->master);
        if (r == -ENOMEM)
                return r;

        /* Stacked interfaces link back as upper_<name> (bond, bridge, VLAN, macvlan, team). */
        r = read_dir_at(sysfs_fd, dir, &entries, NULL);
        if (r == -ENOMEM)
                return r;
        for (char **e = entries; e && *e; e++)
                if (strncmp(*e, "upper_", 6) == 0 && (*e)[6] && strv_push_dup(&i->uppers, &n_uppers, *e + 6) < 0)
                        return -ENOMEM;
        return 0;
}

static int interface_add_address(NetInterface *i, const char *address) {
        size_t n = strv_length(i->addresses);

        if (strv_contains(i->addresses, address))
                return 0;
        return strv_push_dup(&i->addresses, &n, address);
}

/* proc/1/net/route: "Iface Destination Gateway Flags RefCnt Use Metric Mask ...", hex fields. */
static int read_ipv4_routes(const HostRoots *roots, HostUsage *u) {
        _cleanup_(freep) char *text = NULL;
        char *saveptr = NULL;
        int r;

        r = read_attr_at(roots->proc_fd, "proc/1/net/route", &text);
        if (r < 0)
                return r;
        for (char *line = strtok_r(text, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr)) {
                char iface[IF_NAMESIZE + 1], destination[16], mask[16];
                NetInterface *i;

                if (sscanf(line, "%16s %15s %*s %*s %*s %*s %*s %15s", iface, destination, mask) != 3 ||
                    streq(iface, "Iface"))
                        continue;
                i = find_interface(u, iface);
                if (!i)
                        continue;
                i->routes = true;
                if (streq(destination, "00000000") && streq(mask, "00000000"))
                        i->default_route = true;
        }
        return 0;
}

/* proc/1/net/ipv6_route: "dest plen src splen nexthop metric refcnt use flags iface". The kernel
 * keeps an unreachable default route on lo (RTF_REJECT), which carries nothing. */
static int read_ipv6_routes(const HostRoots *roots, HostUsage *u) {
        _cleanup_(freep) char *text = NULL;
        char *saveptr = NULL;
        int r;

        r = read_attr_at(roots->proc_fd, "proc/1/net/ipv6_route", &text);
        if (r == -ENOENT)
                return 0; /* IPv6 is off */
        if (r < 0)
                return r;
        for (char *line = strtok_r(text, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr)) {
                char destination[33], prefix[3], flags[9], iface[IF_NAMESIZE + 1];
                uint32_t flag_bits;
                NetInterface *i;

                if (sscanf(line, "%32s %2s %*s %*s %*s %*s %*s %*s %8s %16s", destination, prefix, flags, iface) != 4)
                        continue;
                if (parse_u32(flags, 16, &flag_bits) < 0 || (flag_bits & 0x0200 /* RTF_REJECT */))
                        continue;
                i = find_interface(u, iface);
                if (!i)
                        continue;
                i->routes = true;
                if (streq(prefix, "00") && strspn(destination, "0") == 32)
                        i->default_route = true;
        }
        return 0;
}

/* proc/1/net/if_inet6: "address ifindex prefixlen scope flags name"; link-local (scope 0x20) and
 * host (0x10) addresses say nothing about use: every interface that is up has one. */
static int read_ipv6_addresses(const HostRoots *roots, HostUsage *u) {
        _cleanup_(freep) char *text = NULL;
        char *saveptr = NULL;
        int r;

        r = read_attr_at(roots->proc_fd, "proc/1/net/if_inet6", &text);
        if (r == -ENOENT)
                return 0; /* IPv6 is off */
        if (r < 0)
                return r;
        for (char *line = strtok_r(text, "\n", &saveptr); line; line = strtok_r(NULL, "\n", &saveptr)) {
                char hex[33], prefix[3], scope[3], iface[IF_NAMESIZE + 1], text_address[INET6_ADDRSTRLEN];
                struct in6_addr address;
                uint32_t plen, scope_bits;
                NetInterface *i;

                if (sscanf(line, "%32s %*s %2s %2s %*s %16s", hex, prefix, scope, iface) != 4 || strlen(hex) != 32 ||
                    parse_u32(prefix, 16, &plen) < 0 || parse_u32(scope, 16, &scope_bits) < 0)
                        continue;
                if (scope_bits & 0x30)
                        continue;
                i = find_interface(u, iface);
                if (!i)
                        continue;
                for (size_t k = 0; k < 16; k++) {
                        char byte[3] = { hex[2 * k], hex[2 * k + 1], 0 };
                        uint32_t v;

                        if (parse_u32(byte, 16, &v) < 0)
                                goto next;
                        address.s6_addr[k] = (uint8_t)v;
                }
                if (inet_ntop(AF_INET6, &address, text_address, sizeof(text_address))) {
                        _cleanup_(freep) char *s = strprintf("%s/%u", text_address, plen);

                        if (!s || interface_add_address(i, s) < 0)
                                return -ENOMEM;
                }
        next:;
        }
        return 0;
}

/* procfs has no per-interface list of IPv4 addresses; on the live host, when iommud shares PID 1's
 * network namespace, ask the kernel over netlink (getifaddrs). Elsewhere the routes still show
 * every interface that carries traffic. */
static int read_ipv4_addresses(const HostRoots *roots, HostUsage *u) {
        _cleanup_(freep) char *own = NULL, *host = NULL;
        struct ifaddrs *list;

        if (!host_roots_proc_is_live(roots) || read_link_at(roots->proc_fd, "proc/self/ns/net", &own) < 0 ||
            read_link_at(roots->proc_fd, "proc/1/ns/net", &host) < 0 || !streq(own, host))
                return 0;
        if (getifaddrs(&list) < 0)
                return 0;
        for (struct ifaddrs *a = list; a; a = a->ifa_next) {
                char text[INET_ADDRSTRLEN];
                NetInterface *i;
                unsigned plen = 0;

                if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || !(i = find_interface(u, a->ifa_name)))
                        continue;
                if (a->ifa_netmask)
                        plen = (unsigned)__builtin_popcount(((struct sockaddr_in *)a->ifa_netmask)->sin_addr.s_addr);
                if (inet_ntop(AF_INET, &((struct sockaddr_in *)a->ifa_addr)->sin_addr, text, sizeof(text))) {
                        _cleanup_(freep) char *s = strprintf("%s/%u", text, plen);

                        if (!s || interface_add_address(i, s) < 0) {
                                freeifaddrs(list);
                                return -ENOMEM;
                        }
                }
        }
        freeifaddrs(list);
        return 0;
}

int host_usage_read_network(const HostRoots *roots, HostUsage *u) {
        _cleanup_(strv_freep) char **names = NULL;
        int r;

        r = read_dir_at(roots->sysfs_fd, "sys/class/net", &names, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                u->interfaces_unknown = strprintf("sys/class/net: %s", strerror(-r));
                return u->interfaces_unknown ? 0 : -ENOMEM;
        }
        for (char **n = names; *n; n++) {
                NetInterface *i = array_append(&u->interfaces, &u->n_interfaces, sizeof(NetInterface));

                if (!i)
                        return -ENOMEM;
                r = read_interface(roots->sysfs_fd, *n, i);
                if (r < 0)
                        return r;
        }

        r = read_ipv4_routes(roots, u);
        if (r >= 0)
                r = read_ipv6_routes(roots, u);
        if (r == -ENOMEM)
                return r;
        if (r < 0 && !(u->routes_unknown = strprintf("proc/1/net: %s", strerror(-r))))
                return -ENOMEM;
        /* Addresses only add detail to what the flags and routes tell. */
        r = read_ipv6_addresses(roots, u);
        if (r == -ENOMEM)
                return r;
        return read_ipv4_addresses(roots, u) == -ENOMEM ? -ENOMEM : 0;
}
