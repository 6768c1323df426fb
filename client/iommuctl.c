/* iommuctl: the command-line client of iommud, over its gRPC API (tables for people, --json for programs).
 */
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "build-config.h"
#include "grpc-client.h"
#include "iommud.pb-c.h"
#include "macro.h"
#include "parse.h"
#include "policy.h"
#include "proto-json.h"
#include "table.h"

#define DEFAULT_SOCKET IOMMUD_SOCKET
/* Reads answer in milliseconds; a daemon that does not answer in this time is stuck. */
#define DEFAULT_TIMEOUT_USEC (30 * UINT64_C(1000000))
/* Operations wait for drivers to unbind and bind; the daemon's own deadline is 120 s by default. */
#define OPERATION_TIMEOUT_USEC (150 * UINT64_C(1000000))

#define SERVICE "/iommud.v1.IommuManager/"

enum {
        EXIT_OK = 0,
        EXIT_ERROR = 1,
        EXIT_USAGE = 2,
        EXIT_DENIED = 3,
        EXIT_NOT_FOUND = 4,
};

#define COLOR_GREEN "\033[32m"
#define COLOR_RED "\033[31m"
#define COLOR_YELLOW "\033[33m"
#define COLOR_BOLD "\033[1m"
#define COLOR_DIM "\033[2m"
#define COLOR_RESET "\033[0m"

static const char *arg_socket = NULL;
static const char *arg_host = NULL;
static const char *arg_ca = NULL;
static const char *arg_cert = NULL;
static const char *arg_key = NULL;
static uint64_t arg_timeout_usec = 0;
static bool arg_timeout_set = false;
static bool arg_json = false;
static bool arg_snapshot = false;
static bool arg_dry_run = false;
static bool arg_force = false;
static const char *arg_owner = NULL;
static uint32_t arg_limit = 0;
static uint32_t arg_groups[16];
static size_t arg_n_groups = 0;
static bool use_color = false;
static size_t term_width = 0;

static const char *c(const char *color) {
        return use_color ? color : "";
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct event_base *, event_base_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct event *, event_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

static void protobuf_c_message_freep(ProtobufCMessage **m) {
        if (*m)
                protobuf_c_message_free_unpacked(*m, NULL);
}

static void help(void) {
        printf("Usage: iommuctl [OPTIONS] VERB [ARGUMENT]\n"
               "\n"
               "Shows the IOMMU groups, devices and units that iommud sees, and follows their changes.\n"
               "\n"
               "Verbs:\n"
               "  status              Kernel, IOMMU and VFIO state; counts of units, groups, devices\n"
               "  units               IOMMU hardware units\n"
               "  groups              IOMMU groups with their devices, drivers and VFIO viability\n"
               "  group N             One group: members, reserved regions, why it is (not) viable\n"
               "  devices             All PCI devices\n"
               "  device ADDRESS      One PCI device (DDDD:BB:SS.F, or BB:SS.F in domain 0000)\n"
               "  watch               Print changes as they happen, one line each, until Ctrl-C\n"
               "  rescan              Make the daemon re-read the host now (role: operator)\n"
               "\n"
               "  set-type N TYPE     Set group N's domain type: identity, DMA, DMA-FQ or auto (admin)\n"
               "  prepare N|ADDRESS   Bind the whole group to vfio-pci for a VM (operator)\n"
               "  release N|ADDRESS   Give the group back to the drivers it had (operator)\n"
               "  block N             Keep every member of group N off any driver, across re-plug (admin)\n"
               "  unblock N           Give the blocked members their drivers back (admin)\n"
               "  plan                What the policy wants for each group, and why (file:line)\n"
               "  apply               Apply the policy now (admin)\n"
               "  policy check FILE.. Check policy files offline (no daemon); problems as file:line\n"
               "  history             The operations iommud ran, newest first: who, when, what, result\n"
               "\n"
               "Options:\n"
               "  --json              JSON for programs, in the shape of `iommud --dump`\n"
               "                      (watch: one JSON object per line)\n"
               "  --socket PATH       Daemon's Unix socket (default " DEFAULT_SOCKET ")\n"
               "  --host HOST:PORT    Talk to a remote daemon over mutual TLS instead\n"
               "  --ca FILE           CA certificates that signed the server's certificate\n"
               "                      (default: the system's)\n"
               "  --cert FILE         Client certificate chain (PEM) to present with --host\n"
               "  --key FILE          Its private key (PEM)\n"
               "  --timeout SECONDS   Give up on a call after this long (default 30; watch: none);\n"
               "                      also sent to the daemon as the call's deadline\n"
               "  --snapshot          watch: print the current state first\n"
               "  --dry-run           Operations: only list the steps they would take\n"
               "  --force             Operations: take a group the host uses or the policy marks\n"
               "                      critical (admin)\n"
               "  --owner NAME        prepare: who holds the group afterwards\n"
               "  -n N                history: the newest N entries only\n"
               "  --group N           history: only group N's entries (repeatable)\n"
               "  -h --help           Show this help\n"
               "     --version        Show the version\n"
               "\n"
               "Colour is used when the output is a terminal and NO_COLOR is not set.\n"
               "\n"
               "Exit status: 0 success, 1 error (e.g. daemon not running), 2 usage error (including\n"
               "an invalid group number or PCI address), 3 permission denied, 4 no such group or device.\n"
               "\n"
               "Examples:\n"
               "  iommuctl groups                       which groups could be passed through\n"
               "  iommuctl group 14                     why group 14 is not viable\n"
               "  iommuctl device 01:00.0 --json        one device, for a script\n"
               "  iommuctl --json groups | jq '.[] | select(.viable) | .id'\n"
               "  iommuctl watch                        follow binds, unbinds, hotplug\n"
               "  iommuctl --host node7:7443 --ca ca.pem --cert me.pem --key me.key status\n");
}

/* ---- argument checks: refuse locally what the daemon would refuse, with a clearer message ---- */

static int parse_group_id(const char *s, uint32_t *ret) {
        for (const char *p = s; *p; p++)
                if (!isdigit((unsigned char)*p))
                        return -EINVAL;
        return parse_u32(s, 10, ret);
}

/* Accepts DDDD:BB:SS.F and BB:SS.F (domain 0000, as lspci prints it), any case; writes the
 * kernel's lower-case spelling. */
static int parse_pci_address(const char *s, char out[static 13]) {
        unsigned domain = 0, bus, slot, function;
        int n = 0;
        size_t len = strlen(s);

        for (const char *p = s; *p; p++)
                if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                        return -EINVAL;
        if (len == 12) {
                if (sscanf(s, "%4x:%2x:%2x.%1x%n", &domain, &bus, &slot, &function, &n) != 4)
                        return -EINVAL;
        } else if (len == 7) {
                if (sscanf(s, "%2x:%2x.%1x%n", &bus, &slot, &function, &n) != 3)
                        return -EINVAL;
        } else
                return -EINVAL;
        if ((size_t)n != len || slot > 0x1f || function > 7)
                return -EINVAL;
        snprintf(out, 13, "%04x:%02x:%02x.%x", domain, bus, slot, function);
        return 0;
}

static int parse_timeout(const char *s, uint64_t *ret) {
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || v <= 0 || v > 1e9)
                return -EINVAL;
        if (strcmp(end, "ms") == 0)
                v /= 1000;
        else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
                v *= 60;
        else if (*end && strcmp(end, "s") != 0)
                return -EINVAL;
        *ret = (uint64_t)(v * 1e6);
        return *ret > 0 ? 0 : -EINVAL;
}

/* ---- calls and how they fail ------------------------------------------------------------------ */

static int exit_code_for(GrpcStatus code) {
        switch (code) {
        case GRPC_STATUS_OK:
                return EXIT_OK;
        case GRPC_STATUS_PERMISSION_DENIED:
        case GRPC_STATUS_UNAUTHENTICATED:
                return EXIT_DENIED;
        case GRPC_STATUS_NOT_FOUND:
                return EXIT_NOT_FOUND;
        case GRPC_STATUS_INVALID_ARGUMENT:
                return EXIT_USAGE;
        default:
                return EXIT_ERROR;
        }
}

/* Says why a call failed, once, on stderr, and returns the exit code. */
static int report_failure(const char *what, int r, const GrpcClientStatus *st) {
        const char *message = st->message && *st->message ? st->message : NULL;

        if (r < 0) {
                fprintf(stderr, "iommuctl: %s\n", message ?: strerror(-r));
                if (arg_socket && (r == -ENOENT || r == -ECONNREFUSED))
                        fprintf(stderr,
                                "iommuctl: iommud is not running on %s (start it with 'systemctl start "
                                "iommud', or name its socket with --socket).\n",
                                arg_socket);
                else if (arg_socket && r == -EACCES)
                        fprintf(stderr, "iommuctl: you may not open %s; ask for access to the socket.\n",
                                arg_socket);
                else if (arg_host && r == -ECONNREFUSED)
                        fprintf(stderr,
                                "iommuctl: nothing listens on %s; is iommud's TLS listener enabled?\n",
                                arg_host);
                return EXIT_ERROR;
        }

        fprintf(stderr, "iommuctl: %s: %s%s%s\n", what, message ?: "failed", message ? "" : " with ",
                message ? "" : grpc_status_to_string(st->code) ?: "an unknown status");
        switch (st->code) {
        case GRPC_STATUS_PERMISSION_DENIED:
        case GRPC_STATUS_UNAUTHENTICATED:
                /* Roles, not the policy ("is critical", "may not be passed through"), need a hint. */
                if (!message || strstr(message, "role"))
                        fprintf(stderr, "iommuctl: permission denied: your identity lacks the role this needs "
                                        "(see [Roles] in iommud.conf).\n");
                break;
        default:
                break;
        }
        return exit_code_for(st->code);
}

static int client_new(struct event_base *base, GrpcClient **ret) {
        GrpcClientOptions o = {
                .unix_path = arg_host ? NULL : arg_socket,
                .host = arg_host,
                .ca_file = arg_ca,
                .cert_file = arg_cert,
                .key_file = arg_key,
                .timeout_usec = arg_timeout_usec,
        };
        int r = grpc_client_new(base, &o, ret);

        if (r < 0)
                fprintf(stderr, "iommuctl: cannot set up the client: %s\n", strerror(-r));
        return r;
}

/* One unary call; returns an exit code and, on success, the response. */
static int call_pages(const char *what, const char *method, ProtobufCMessage *request,
                      const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **ret);

static int call(const char *what, const char *method, const ProtobufCMessage *request,
                const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **ret) {
        _cleanup_(event_base_freep) struct event_base *base = event_base_new();
        _cleanup_(grpc_client_freep) GrpcClient *client = NULL;
        _cleanup_(grpc_client_status_done) GrpcClientStatus st = {};
        int r;

        if (!base || client_new(base, &client) < 0)
                return EXIT_ERROR;
        r = grpc_client_call(client, method, request, response_type, ret, &st);
        if (r < 0 || st.code != GRPC_STATUS_OK)
                return report_failure(what, r, &st);
        return EXIT_OK;
}

/* A paged List call, every page of it. */
static int call_pages(const char *what, const char *method, ProtobufCMessage *request,
                      const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **ret) {
        _cleanup_(event_base_freep) struct event_base *base = event_base_new();
        _cleanup_(grpc_client_freep) GrpcClient *client = NULL;
        _cleanup_(grpc_client_status_done) GrpcClientStatus st = {};
        int r;

        if (!base || client_new(base, &client) < 0)
                return EXIT_ERROR;
        r = grpc_client_list_all(client, method, request, response_type, ret, &st);
        if (r < 0 || st.code != GRPC_STATUS_OK)
                return report_failure(what, r, &st);
        return EXIT_OK;
}

static int print_json(json_object *o, int flags) {
        if (!o) {
                fprintf(stderr, "iommuctl: out of memory\n");
                return EXIT_ERROR;
        }
        puts(json_object_to_json_string_ext(o, flags | JSON_C_TO_STRING_NOSLASHESCAPE));
        return EXIT_OK;
}

static int finish_output(int code) {
        if (fflush(stdout) != 0 || ferror(stdout)) {
                if (errno != EPIPE)
                        fprintf(stderr, "iommuctl: cannot write the output: %m\n");
                return EXIT_ERROR;
        }
        return code;
}

/* ---- text output -------------------------------------------------------------------------------- */

static const char *or_dash(const char *s) {
        return s && *s ? s : "-";
}

static const char *class_label(const Iommud__V1__Device *d, char buf[static 16]) {
        if (d->class_name && *d->class_name)
                return d->class_name;
        if (d->class_ < 0)
                return "-";
        snprintf(buf, 16, "class %06" PRIx32, (uint32_t)d->class_);
        return buf;
}

static const char *vendor_label(const Iommud__V1__Device *d, char buf[static 16]) {
        if (d->vendor_name && *d->vendor_name)
                return d->vendor_name;
        if (d->vendor_id < 0)
                return "-";
        snprintf(buf, 16, "%04" PRIx32, (uint32_t)d->vendor_id);
        return buf;
}

static const char *device_label(const Iommud__V1__Device *d, char buf[static 16]) {
        if (d->device_name && *d->device_name)
                return d->device_name;
        if (d->device_id < 0)
                return "-";
        snprintf(buf, 16, "%04" PRIx32, (uint32_t)d->device_id);
        return buf;
}

static const char *driver_color(const char *driver) {
        if (!driver || !*driver)
                return COLOR_DIM;
        return strncmp(driver, "vfio", 4) == 0 ? COLOR_GREEN : NULL;
}

static void add_device_cells(Table *t, const Iommud__V1__Device *d) {
        char b1[16], b2[16], b3[16];

        table_add(t, NULL, d->address);
        table_add(t, NULL, class_label(d, b1));
        table_add(t, NULL, vendor_label(d, b2));
        table_add(t, NULL, device_label(d, b3));
        table_add(t, driver_color(d->driver), or_dash(d->driver));
}

static const Iommud__V1__Device *find_member(const Iommud__V1__Group *g, const char *address) {
        for (size_t i = 0; i < g->n_devices; i++)
                if (strcmp(g->devices[i]->address, address) == 0)
                        return g->devices[i];
        return NULL;
}

static const char *const GROUP_HEADERS[] = {"GROUP",  "TYPE",   "VIABLE", "ADDRESS", "CLASS",
                                            "VENDOR", "DEVICE", "DRIVER", NULL};

static void add_group_rows(Table *t, const Iommud__V1__Group *g) {
        for (size_t i = 0; i < (g->n_device_addresses ?: 1); i++) {
                const char *address = i < g->n_device_addresses ? g->device_addresses[i] : NULL;
                const Iommud__V1__Device *d = address ? find_member(g, address) : NULL;

                if (i == 0) {
                        table_addf(t, COLOR_BOLD, "%" PRIu32, g->id);
                        table_add(t, NULL, or_dash(g->domain_type_raw));
                        table_add(t, g->viable ? COLOR_GREEN : COLOR_RED, g->viable ? "yes" : "no");
                } else {
                        table_add(t, NULL, "");
                        table_add(t, NULL, "");
                        table_add(t, NULL, "");
                }
                if (d)
                        add_device_cells(t, d);
                else
                        for (size_t k = 0; k < 5; k++)
                                table_add(t, NULL, k == 0 ? address : NULL);
        }
}

static int print_groups(const Iommud__V1__ListGroupsResponse *resp) {
        _cleanup_(table_freep) Table *t = table_new(GROUP_HEADERS);

        if (!t)
                return EXIT_ERROR;
        table_set_width(t, term_width);
        table_set_shrinkable(t, 4);
        table_set_shrinkable(t, 5);
        table_set_shrinkable(t, 6);
        for (size_t i = 0; i < resp->n_groups; i++)
                add_group_rows(t, resp->groups[i]);
        table_print(t, stdout, use_color);
        return EXIT_OK;
}

static int print_group(const Iommud__V1__Group *g) {
        static const char *const headers[] = {"ADDRESS", "CLASS", "VENDOR", "DEVICE", "DRIVER", NULL};
        _cleanup_(table_freep) Table *t = table_new(headers);

        if (!t)
                return EXIT_ERROR;
        printf("%sGroup %" PRIu32 "%s   type %s   %s%s%s\n", c(COLOR_BOLD), g->id, c(COLOR_RESET),
               or_dash(g->domain_type_raw), c(g->viable ? COLOR_GREEN : COLOR_RED),
               g->viable ? "viable for VFIO" : "not viable for VFIO", c(COLOR_RESET));

        printf("\nDevices:\n");
        table_set_indent(t, 2);
        table_set_width(t, term_width);
        table_set_shrinkable(t, 1);
        table_set_shrinkable(t, 2);
        table_set_shrinkable(t, 3);
        for (size_t i = 0; i < g->n_device_addresses; i++) {
                const Iommud__V1__Device *d = find_member(g, g->device_addresses[i]);

                if (d)
                        add_device_cells(t, d);
                else
                        for (size_t k = 0; k < 5; k++)
                                table_add(t, NULL, k == 0 ? g->device_addresses[i] : NULL);
        }
        table_print(t, stdout, use_color);

        if (g->n_blockers > 0) {
                printf("\nNot viable because:\n");
                for (size_t i = 0; i < g->n_blockers; i++)
                        printf("  %s%s%s\n", c(COLOR_RED), or_dash(g->blockers[i]->reason), c(COLOR_RESET));
        }

        if (g->n_findings > 0) {
                printf("\nFindings:\n");
                for (size_t i = 0; i < g->n_findings; i++)
                        printf("  %s%s%s\n", c(COLOR_YELLOW), g->findings[i], c(COLOR_RESET));
        }

        printf("\nReserved regions:\n");
        if (g->n_reserved_regions == 0)
                printf("  none\n");
        for (size_t i = 0; i < g->n_reserved_regions; i++)
                printf("  %s-%s  %s\n", g->reserved_regions[i]->start, g->reserved_regions[i]->end,
                       g->reserved_regions[i]->type);

        if (g->type_change) {
                const Iommud__V1__TypeChange *tc = g->type_change;

                printf("\nDomain type change: ");
                if (tc->n_allowed > 0) {
                        printf("possible to");
                        for (size_t i = 0; i < tc->n_allowed; i++)
                                printf("%s %s", i ? "," : "", tc->allowed[i]);
                        printf("\n");
                } else
                        printf("%snot possible now%s\n", c(COLOR_YELLOW), c(COLOR_RESET));
                if (tc->reason && *tc->reason)
                        printf("  %s\n", tc->reason);
        }

        if (g->n_errors > 0) {
                printf("\n%sErrors reading this group:%s\n", c(COLOR_YELLOW), c(COLOR_RESET));
                for (size_t i = 0; i < g->n_errors; i++)
                        printf("  %s: %s\n", g->errors[i]->file, g->errors[i]->message);
        }
        return EXIT_OK;
}

static int print_devices(const Iommud__V1__ListDevicesResponse *resp) {
        static const char *const headers[] = {"ADDRESS", "CLASS", "VENDOR", "DEVICE",
                                              "DRIVER",  "GROUP", NULL};
        _cleanup_(table_freep) Table *t = table_new(headers);

        if (!t)
                return EXIT_ERROR;
        table_set_width(t, term_width);
        table_set_shrinkable(t, 1);
        table_set_shrinkable(t, 2);
        table_set_shrinkable(t, 3);
        for (size_t i = 0; i < resp->n_devices; i++) {
                add_device_cells(t, resp->devices[i]);
                if (resp->devices[i]->group >= 0)
                        table_addf(t, NULL, "%" PRIi32, resp->devices[i]->group);
                else
                        table_add(t, COLOR_DIM, "-");
        }
        table_print(t, stdout, use_color);
        return EXIT_OK;
}

static void print_field(const char *name, const char *color, const char *format, ...) _printf_(3, 4);
static void print_field(const char *name, const char *color, const char *format, ...) {
        va_list ap;

        printf("  %-18s %s", name, color ? c(color) : "");
        va_start(ap, format);
        vprintf(format, ap);
        va_end(ap);
        printf("%s\n", color ? c(COLOR_RESET) : "");
}

static void print_list_field(const char *name, char **l, size_t n) {
        if (n == 0)
                return;
        printf("  %-18s ", name);
        for (size_t i = 0; i < n; i++)
                printf("%s%s", i ? ", " : "", l[i]);
        printf("\n");
}

static int print_device(const Iommud__V1__Device *d) {
        char b1[16], b2[16], b3[16];
        static const char *const header_types[] = {"endpoint", "bridge", "cardbus"};

        printf("%s%s%s  %s %s\n", c(COLOR_BOLD), d->address, c(COLOR_RESET), vendor_label(d, b2),
               device_label(d, b3));
        print_field("Class:", NULL, "%s", class_label(d, b1));
        if (d->vendor_id >= 0 && d->device_id >= 0)
                print_field("IDs:", NULL, "%04" PRIx32 ":%04" PRIx32, (uint32_t)d->vendor_id,
                            (uint32_t)d->device_id);
        if (d->revision >= 0)
                print_field("Revision:", NULL, "%02" PRIx32, (uint32_t)d->revision);
        if (d->subsystem_vendor_id >= 0 && d->subsystem_device_id >= 0)
                print_field("Subsystem:", NULL, "%04" PRIx32 ":%04" PRIx32 "%s%s%s%s",
                            (uint32_t)d->subsystem_vendor_id, (uint32_t)d->subsystem_device_id,
                            *d->subsystem_vendor_name ? "  " : "", d->subsystem_vendor_name,
                            *d->subsystem_name ? " " : "", d->subsystem_name);
        print_field("Driver:", driver_color(d->driver), "%s", d->driver && *d->driver ? d->driver : "none");
        if (d->driver_override && *d->driver_override)
                print_field("Driver override:", NULL, "%s", d->driver_override);
        if (d->group >= 0)
                print_field("IOMMU group:", COLOR_BOLD, "%" PRIi32, d->group);
        else
                print_field("IOMMU group:", COLOR_YELLOW, "none");
        if (d->iommu_unit && *d->iommu_unit)
                print_field("IOMMU unit:", NULL, "%s", d->iommu_unit);
        if (d->header_type >= 0 && d->header_type <= 2)
                print_field("Kind:", NULL, "%s%s%s", header_types[d->header_type],
                            d->is_pcie ? ", PCI Express" : "", d->multifunction ? ", multifunction" : "");
        if (d->parent && *d->parent)
                print_field("Upstream bridge:", NULL, "%s", d->parent);
        if (d->numa_node >= 0)
                print_field("NUMA node:", NULL, "%" PRIi32, d->numa_node);
        if (d->sriov && d->sriov->role && strcmp(d->sriov->role, "pf") == 0)
                print_field("SR-IOV:", NULL, "physical function, %" PRIi32 " of %" PRIi32 " VFs enabled",
                            d->sriov->numvfs, d->sriov->totalvfs);
        else if (d->sriov && d->sriov->role && strcmp(d->sriov->role, "vf") == 0)
                print_field("SR-IOV:", NULL, "virtual function of %s", or_dash(d->sriov->pf));
        if (d->acs)
                print_field("ACS:", NULL, "%s",
                            !d->acs->present ? "not present"
                            : d->acs->ctrl   ? "present, enabled"
                                             : "present, not enabled");
        if (d->reset_methods_known)
                print_list_field("Reset methods:", d->reset_methods, d->n_reset_methods);
        if (d->boot_vga >= 0)
                print_field("Boot VGA:", NULL, "%s", d->boot_vga ? "yes (the firmware's console)" : "no");
        print_list_field("Network:", d->net_interfaces, d->n_net_interfaces);
        print_list_field("Block devices:", d->block_devices, d->n_block_devices);
        print_list_field("DRM cards:", d->drm_cards, d->n_drm_cards);
        if (d->modalias && *d->modalias)
                print_field("Modalias:", COLOR_DIM, "%s", d->modalias);
        for (size_t i = 0; i < d->n_errors; i++)
                print_field("Error:", COLOR_YELLOW, "%s: %s", d->errors[i]->file, d->errors[i]->message);
        return EXIT_OK;
}

static int print_units(Iommud__V1__Unit *const *units, size_t n) {
        static const char *const headers[] = {"NAME", "KIND", "PCI DEVICE", "DEVICES", "FEATURES", NULL};
        _cleanup_(table_freep) Table *t = table_new(headers);

        if (!t)
                return EXIT_ERROR;
        for (size_t i = 0; i < n; i++) {
                const Iommud__V1__Unit *u = units[i];

                table_add(t, COLOR_BOLD, u->name);
                table_add(t, NULL, u->kind);
                table_add(t, NULL, or_dash(u->pci_device));
                table_addf(t, NULL, "%zu", u->n_devices);
                table_addf(t, NULL, "%zu of %zu", u->n_features, u->n_features + u->n_features_absent);
        }
        table_print(t, stdout, use_color);
        return EXIT_OK;
}

static int print_status(const Iommud__V1__GetHostResponse *r) {
        const Iommud__V1__HostInfo *h = r->host;

        if (!h)
                return EXIT_ERROR;
        print_field("Kernel:", NULL, "%s", or_dash(h->kernel_release));
        if (h->iommu_enabled)
                print_field("IOMMU:", COLOR_GREEN, "enabled%s%s",
                            h->acpi && h->acpi->dmar ? " (Intel VT-d, DMAR)" : "",
                            h->acpi && h->acpi->ivrs ? " (AMD-Vi, IVRS)" : "");
        else
                print_field("IOMMU:", COLOR_RED, "off: %s", or_dash(h->iommu_off_reason));
        if (h->cmdline_default_domain_type && *h->cmdline_default_domain_type->type)
                print_field("Default domain:", NULL, "%s (from %s)", h->cmdline_default_domain_type->type,
                            or_dash(h->cmdline_default_domain_type->source));
        else
                print_field("Default domain:", NULL, "not set on the command line (kernel build default)");
        if (h->vfio)
                print_field("VFIO:", h->vfio->pci_loaded ? COLOR_GREEN : COLOR_YELLOW, "%s%s%s",
                            h->vfio->pci_loaded ? "vfio-pci loaded" : "vfio-pci not loaded",
                            h->vfio->dev_vfio_vfio ? ", /dev/vfio/vfio" : "",
                            h->vfio->dev_iommu ? ", /dev/iommu (iommufd)" : "");
        print_field("Units:", NULL, "%zu", r->n_units);
        print_field("Groups:", NULL, "%" PRIu32, r->group_count);
        print_field("Devices:", NULL, "%" PRIu32, r->device_count);
        print_field("Read errors:", r->error_count ? COLOR_YELLOW : NULL, "%" PRIu32, r->error_count);
        if (r->daemon && r->daemon->read_only)
                print_field("Operations:", COLOR_RED, "refused: %s", or_dash(r->daemon->read_only_reason));
        else if (r->daemon)
                print_field("Operations:", COLOR_GREEN, "allowed");
        return EXIT_OK;
}

/* ---- verbs -------------------------------------------------------------------------------------- */

static int verb_status(char **args) {
        Iommud__V1__GetHostRequest req = IOMMUD__V1__GET_HOST_REQUEST__INIT;
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *m = NULL;
        int r = call("status", SERVICE "GetHost", &req.base, &iommud__v1__get_host_response__descriptor, &m);

        if (r != EXIT_OK)
                return r;
        if (arg_json) {
                _cleanup_(json_object_putp) json_object *o =
                        proto_host_response_to_json((Iommud__V1__GetHostResponse *)m);
                return print_json(o, JSON_C_TO_STRING_PRETTY);
        }
        return print_status((Iommud__V1__GetHostResponse *)m);
}

static int verb_units(char **args) {
        Iommud__V1__ListUnitsRequest req = IOMMUD__V1__LIST_UNITS_REQUEST__INIT;
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *m = NULL;
        const Iommud__V1__ListUnitsResponse *resp;
        int r = call("units", SERVICE "ListUnits", &req.base, &iommud__v1__list_units_response__descriptor,
                     &m);

        if (r != EXIT_OK)
                return r;
        resp = (const Iommud__V1__ListUnitsResponse *)m;
        if (arg_json) {
                _cleanup_(json_object_putp) json_object *a = json_object_new_array();

                for (size_t i = 0; a && i < resp->n_units; i++)
                        json_object_array_add(a, proto_unit_to_json(resp->units[i]));
                return print_json(a, JSON_C_TO_STRING_PRETTY);
        }
        return print_units(resp->units, resp->n_units);
}

static int verb_groups(char **args) {
        Iommud__V1__ListGroupsRequest req = IOMMUD__V1__LIST_GROUPS_REQUEST__INIT;
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *m = NULL;
        const Iommud__V1__ListGroupsResponse *resp;
        int r = call_pages("groups", SERVICE "ListGroups", &req.base,
                           &iommud__v1__list_groups_response__descriptor, &m);

        if (r != EXIT_OK)
                return r;
        resp = (const Iommud__V1__ListGroupsResponse *)m;
        if (arg_json) {
                _cleanup_(json_object_putp) json_object *a = json_object_new_array();

                for (size_t i = 0; a && i < resp->n_groups; i++)
                        json_object_array_add(a, proto_group_to_json(resp->groups[i]));
                return print_json(a, JSON_C_TO_STRING_PRETTY);
        }
        return print_groups(resp);
}

static int verb_group(char **args) {
        Iommud__V1__GetGroupRequest req = IOMMUD__V1__GET_GROUP_REQUEST__INIT;
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *m = NULL;
        const char *arg = args[0];
        char what[64];
        int r;

        if (parse_group_id(arg, &req.id) < 0) {
                fprintf(stderr,
                        "iommuctl: '%s' is not a group number (groups are numbered 0, 1, 2, ...; "
                        "see 'iommuctl groups').\n",
                        arg);
                return EXIT_USAGE;
        }
        snprintf(what, sizeof(what), "group %" PRIu32, req.id);
        r = call(what, SERVICE "GetGroup", &req.base, &iommud__v1__group__descriptor, &m);
        if (r != EXIT_OK)
                return r;
        if (arg_json) {
                _cleanup_(json_object_putp) json_object *o = proto_group_to_json((Iommud__V1__Group *)m);
                return print_json(o, JSON_C_TO_STRING_PRETTY);
        }
        return print_group((Iommud__V1__Group *)m);
}

static int verb_devices(char **args) {
        Iommud__V1__ListDevicesRequest req = IOMMUD__V1__LIST_DEVICES_REQUEST__INIT;
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *m = NULL;
        const Iommud__V1__ListDevicesResponse *resp;
        int r = call_pages("devices", SERVICE "ListDevices", &req.base,
                           &iommud__v1__list_devices_response__descriptor, &m);

        if (r != EXIT_OK)
                return r;
        resp = (const Iommud__V1__ListDevicesResponse *)m;
        if (arg_json) {
                _cleanup_(json_object_putp) json_object *a = json_object_new_array();

                for (size_t i = 0; a && i < resp->n_devices; i++)
                        json_object_array_add(a, proto_device_to_json(resp->devices[i]));
                return print_json(a, JSON_C_TO_STRING_PRETTY);
        }
        return print_devices(resp);
}

static int verb_device(char **args) {
        Iommud__V1__GetDeviceRequest req = IOMMUD__V1__GET_DEVICE_REQUEST__INIT;
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *m = NULL;
        const char *arg = args[0];
        char address[13], what[64];
        int r;

        if (parse_pci_address(arg, address) < 0) {
                fprintf(stderr,
                        "iommuctl: '%s' is not a PCI address (expected DDDD:BB:SS.F such as 0000:01:00.0, "
                        "or BB:SS.F such as 01:00.0).\n",
                        arg);
                return EXIT_USAGE;
        }
        req.address = address;
        snprintf(what, sizeof(what), "device %s", address);
        r = call(what, SERVICE "GetDevice", &req.base, &iommud__v1__device__descriptor, &m);
        if (r != EXIT_OK)
                return r;
        if (arg_json) {
                _cleanup_(json_object_putp) json_object *o = proto_device_to_json((Iommud__V1__Device *)m);
                return print_json(o, JSON_C_TO_STRING_PRETTY);
        }
        return print_device((Iommud__V1__Device *)m);
}

static int verb_rescan(char **args) {
        Iommud__V1__RescanRequest req = IOMMUD__V1__RESCAN_REQUEST__INIT;
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *m = NULL;
        const Iommud__V1__RescanResponse *resp;
        int r = call("rescan", SERVICE "Rescan", &req.base, &iommud__v1__rescan_response__descriptor, &m);

        if (r != EXIT_OK)
                return r;
        resp = (const Iommud__V1__RescanResponse *)m;
        if (arg_json) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();

                json_object_object_add(o, "changes", json_object_new_int64(resp->changes));
                json_object_object_add(o, "sequence", json_object_new_uint64(resp->sequence));
                return print_json(o, JSON_C_TO_STRING_PRETTY);
        }
        printf("Rescanned the host: %" PRIu32 " change%s published (event sequence %" PRIu64 ").\n",
               resp->changes, resp->changes == 1 ? "" : "s", resp->sequence);
        return EXIT_OK;
}

/* ---- watch -------------------------------------------------------------------------------------- */

static void print_event_line(const Iommud__V1__WatchEvent *e) {
        const char *kind = proto_watch_event_kind(e);
        char stamp[16] = "";
        time_t now = time(NULL);
        struct tm tm;

        if (localtime_r(&now, &tm))
                strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
        printf("%s  %s#%-5" PRIu64 "%s %s%-19s%s ", stamp, c(COLOR_DIM), e->sequence, c(COLOR_RESET),
               c(COLOR_BOLD), kind, c(COLOR_RESET));

        switch (e->event_case) {
        case IOMMUD__V1__WATCH_EVENT__EVENT_SNAPSHOT:
        case IOMMUD__V1__WATCH_EVENT__EVENT_HOST_UPDATED: {
                const Iommud__V1__GetHostResponse *h = e->snapshot ?: e->host_updated;

                printf("host: %zu units, %" PRIu32 " groups, %" PRIu32 " devices", h ? h->n_units : 0,
                       h ? h->group_count : 0, h ? h->device_count : 0);
                break;
        }
        case IOMMUD__V1__WATCH_EVENT__EVENT_DEVICE_ADDED:
        case IOMMUD__V1__WATCH_EVENT__EVENT_DEVICE_REMOVED:
        case IOMMUD__V1__WATCH_EVENT__EVENT_DEVICE_UPDATED: {
                const Iommud__V1__Device *d = e->device_added ?: e->device_removed ?: e->device_updated;
                char b1[16], b2[16];

                if (d)
                        printf("%s  %s %s", d->address, vendor_label(d, b1), device_label(d, b2));
                break;
        }
        case IOMMUD__V1__WATCH_EVENT__EVENT_DRIVER_CHANGED:
                if (e->driver_changed)
                        printf("%s  %s -> %s", e->driver_changed->address,
                               or_dash(e->driver_changed->old_driver),
                               or_dash(e->driver_changed->new_driver));
                break;
        case IOMMUD__V1__WATCH_EVENT__EVENT_TYPE_CHANGED:
                if (e->type_changed)
                        printf("group %" PRIu32 "  %s -> %s", e->type_changed->group,
                               or_dash(e->type_changed->old_type), or_dash(e->type_changed->new_type));
                break;
        case IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_STATE_CHANGED:
                if (e->group_state_changed)
                        printf("group %" PRIu32 "  %s -> %s", e->group_state_changed->group,
                               proto_group_state_to_string(e->group_state_changed->old_state),
                               proto_group_state_to_string(e->group_state_changed->new_state));
                break;
        case IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_ADDED:
        case IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_REMOVED:
        case IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_UPDATED: {
                const Iommud__V1__Group *g = e->group_added ?: e->group_removed ?: e->group_updated;

                if (g)
                        printf("group %" PRIu32 "  %s, %s, %zu device%s", g->id, or_dash(g->domain_type_raw),
                               g->viable ? "viable" : "not viable", g->n_device_addresses,
                               g->n_device_addresses == 1 ? "" : "s");
                break;
        }
        default:
                break;
        }
        printf("\n");
}

static int on_watch_event(ProtobufCMessage *m, void *userdata) {
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *msg = m;
        const Iommud__V1__WatchEvent *e = (const Iommud__V1__WatchEvent *)msg;

        if (arg_json) {
                _cleanup_(json_object_putp) json_object *o = proto_watch_event_to_json(e);

                if (!o)
                        return -ENOMEM;
                puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
        } else
                print_event_line(e);
        /* Each event as it comes, also into a pipe; a reader that went away ends the watch. */
        if (fflush(stdout) != 0)
                return -errno;
        return 0;
}

static void on_signal(evutil_socket_t fd, short what, void *userdata) {
        grpc_client_cancel(userdata);
}

static int verb_watch(char **args) {
        _cleanup_(event_base_freep) struct event_base *base = event_base_new();
        _cleanup_(grpc_client_freep) GrpcClient *client = NULL;
        _cleanup_(event_freep) struct event *sigint = NULL, *sigterm = NULL;
        _cleanup_(grpc_client_status_done) GrpcClientStatus st = {};
        Iommud__V1__WatchRequest req = IOMMUD__V1__WATCH_REQUEST__INIT;
        int r;

        /* A watch lasts until Ctrl-C; --timeout bounds it only when given. */
        if (!arg_timeout_set)
                arg_timeout_usec = 0;
        if (!base || client_new(base, &client) < 0)
                return EXIT_ERROR;
        sigint = evsignal_new(base, SIGINT, on_signal, client);
        sigterm = evsignal_new(base, SIGTERM, on_signal, client);
        if (!sigint || !sigterm || evsignal_add(sigint, NULL) < 0 || evsignal_add(sigterm, NULL) < 0)
                return EXIT_ERROR;

        req.send_snapshot = arg_snapshot;
        r = grpc_client_call_stream(client, SERVICE "Watch", &req.base, &iommud__v1__watch_event__descriptor,
                                    on_watch_event, NULL, &st);
        if (r == -ECANCELED)
                return EXIT_OK; /* Ctrl-C or SIGTERM: the normal end */
        if (r == -EPIPE)
                return EXIT_OK; /* the reader of our output went away, e.g. "| head" */
        if (r < 0 || st.code != GRPC_STATUS_OK)
                return report_failure("watch", r, &st);
        fprintf(stderr, "iommuctl: the daemon ended the watch.\n");
        return EXIT_ERROR;
}

/* ---- main --------------------------------------------------------------------------------------- */

static int parse_argv(int argc, char **argv) {
        enum {
                ARG_VERSION = 0x100,
                ARG_JSON,
                ARG_SOCKET,
                ARG_HOST,
                ARG_CA,
                ARG_CERT,
                ARG_KEY,
                ARG_TIMEOUT,
                ARG_SNAPSHOT,
                ARG_DRY_RUN,
                ARG_FORCE,
                ARG_OWNER,
                ARG_GROUP,
        };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {"json", no_argument, NULL, ARG_JSON},
                {"socket", required_argument, NULL, ARG_SOCKET},
                {"host", required_argument, NULL, ARG_HOST},
                {"ca", required_argument, NULL, ARG_CA},
                {"cert", required_argument, NULL, ARG_CERT},
                {"key", required_argument, NULL, ARG_KEY},
                {"timeout", required_argument, NULL, ARG_TIMEOUT},
                {"snapshot", no_argument, NULL, ARG_SNAPSHOT},
                {"dry-run", no_argument, NULL, ARG_DRY_RUN},
                {"force", no_argument, NULL, ARG_FORCE},
                {"owner", required_argument, NULL, ARG_OWNER},
                {"group", required_argument, NULL, ARG_GROUP},
                {},
        };
        int opt;

        while ((opt = getopt_long(argc, argv, "hn:", options, NULL)) >= 0)
                switch (opt) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("iommuctl %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_SOCKET:
                        arg_socket = optarg;
                        break;
                case ARG_HOST:
                        arg_host = optarg;
                        break;
                case ARG_CA:
                        arg_ca = optarg;
                        break;
                case ARG_CERT:
                        arg_cert = optarg;
                        break;
                case ARG_KEY:
                        arg_key = optarg;
                        break;
                case ARG_TIMEOUT:
                        if (parse_timeout(optarg, &arg_timeout_usec) < 0) {
                                fprintf(stderr,
                                        "iommuctl: --timeout wants seconds, such as 5 or 0.5 (or 500ms), "
                                        "not '%s'.\n",
                                        optarg);
                                return -EINVAL;
                        }
                        arg_timeout_set = true;
                        break;
                case ARG_SNAPSHOT:
                        arg_snapshot = true;
                        break;
                case ARG_DRY_RUN:
                        arg_dry_run = true;
                        break;
                case ARG_FORCE:
                        arg_force = true;
                        break;
                case ARG_OWNER:
                        arg_owner = optarg;
                        break;
                case 'n':
                        if (parse_group_id(optarg, &arg_limit) < 0 || arg_limit == 0) {
                                fprintf(stderr, "iommuctl: -n wants a number of entries, such as 20, not '%s'.\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_GROUP:
                        if (arg_n_groups >= ELEMENTSOF(arg_groups) ||
                            parse_group_id(optarg, &arg_groups[arg_n_groups]) < 0) {
                                fprintf(stderr, "iommuctl: --group wants a group number (at most %zu of them), "
                                                "not '%s'.\n",
                                        ELEMENTSOF(arg_groups), optarg);
                                return -EINVAL;
                        }
                        arg_n_groups++;
                        break;
                default:
                        fprintf(stderr, "Try 'iommuctl --help'.\n");
                        return -EINVAL;
                }

        if (arg_host && arg_socket) {
                fprintf(stderr, "iommuctl: --host and --socket exclude each other.\n");
                return -EINVAL;
        }
        if (!arg_host && (arg_ca || arg_cert || arg_key)) {
                fprintf(stderr, "iommuctl: --ca, --cert and --key go with --host.\n");
                return -EINVAL;
        }
        if (!!arg_cert != !!arg_key) {
                fprintf(stderr, "iommuctl: --cert and --key go together.\n");
                return -EINVAL;
        }
        if (arg_host) {
                const char *colon = strrchr(arg_host, ':');

                if (!colon || colon == arg_host || !colon[1] || (arg_host[0] == '[' && colon[-1] != ']')) {
                        fprintf(stderr, "iommuctl: --host wants HOST:PORT or [IPV6]:PORT, not '%s'.\n",
                                arg_host);
                        return -EINVAL;
                }
        } else if (!arg_socket)
                arg_socket = DEFAULT_SOCKET;
        if (!arg_timeout_set)
                arg_timeout_usec = DEFAULT_TIMEOUT_USEC;
        return 1;
}

/* ---- operations and policy ---------------------------------------------------------------------- */

/* "12" is a group; anything else must be a PCI address. */
static int parse_group_or_address(const char *arg, uint32_t *ret_group, char address[static 13]) {
        if (parse_group_id(arg, ret_group) >= 0) {
                address[0] = 0;
                return 0;
        }
        if (parse_pci_address(arg, address) >= 0)
                return 0;
        fprintf(stderr, "iommuctl: '%s' is neither a group number nor a PCI address (such as 12, or 0000:01:00.0).\n",
                arg);
        return -EINVAL;
}

static int parse_group_arg(const char *arg, uint32_t *ret) {
        if (parse_group_id(arg, ret) >= 0)
                return 0;
        fprintf(stderr, "iommuctl: '%s' is not a group number (see 'iommuctl groups').\n", arg);
        return -EINVAL;
}

static int print_operation(const char *verb, const Iommud__V1__OperationResult *r) {
        if (arg_json) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                json_object *steps = json_object_new_array(); /* owned by o once added */

                json_object_object_add(o, "operation_id", json_object_new_uint64(r->operation_id));
                json_object_object_add(o, "dry_run", json_object_new_boolean(r->dry_run));
                for (size_t i = 0; i < r->n_steps; i++)
                        json_object_array_add(steps, json_object_new_string(r->steps[i]));
                json_object_object_add(o, "steps", steps);
                json_object_object_add(o, "group", r->group ? proto_group_to_json(r->group) : NULL);
                return print_json(o, JSON_C_TO_STRING_PRETTY);
        }
        if (r->n_steps == 0)
                printf("%s: nothing to do%s.\n", verb, r->group ? ", the group is already so" : "");
        else
                printf("%s%s, %zu step%s:\n", verb, r->dry_run ? " (dry run: nothing was changed)" : "", r->n_steps,
                       r->n_steps == 1 ? "" : "s");
        for (size_t i = 0; i < r->n_steps; i++)
                printf("  %2zu. %s\n", i + 1, r->steps[i]);
        return EXIT_OK;
}

static int run_operation(const char *what, const char *method, const ProtobufCMessage *request) {
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *m = NULL;
        int r;

        if (!arg_timeout_set)
                arg_timeout_usec = OPERATION_TIMEOUT_USEC;
        r = call(what, method, request, &iommud__v1__operation_result__descriptor, &m);
        if (r != EXIT_OK)
                return r;
        return print_operation(what, (const Iommud__V1__OperationResult *)m);
}

static int verb_set_type(char **args) {
        Iommud__V1__SetDomainTypeRequest req = IOMMUD__V1__SET_DOMAIN_TYPE_REQUEST__INIT;
        static const char *const types[] = {"identity", "DMA", "DMA-FQ", "auto"};
        char what[96];
        bool known = false;

        if (parse_group_arg(args[0], &req.group) < 0)
                return EXIT_USAGE;
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                known = known || strcmp(args[1], types[i]) == 0;
        if (!known) {
                fprintf(stderr, "iommuctl: '%s' is not a domain type to set (identity, DMA, DMA-FQ, auto; the "
                                "kernel's spelling, case matters).\n",
                        args[1]);
                return EXIT_USAGE;
        }
        req.type = args[1];
        req.force = arg_force;
        req.dry_run = arg_dry_run;
        snprintf(what, sizeof(what), "set the type of group %" PRIu32 " to %s", req.group, req.type);
        return run_operation(what, SERVICE "SetDomainType", &req.base);
}

static int verb_prepare(char **args) {
        Iommud__V1__PrepareGroupRequest req = IOMMUD__V1__PREPARE_GROUP_REQUEST__INIT;
        char address[13], what[96];

        if (parse_group_or_address(args[0], &req.group, address) < 0)
                return EXIT_USAGE;
        req.device = address;
        req.owner = (char *)(arg_owner ?: "");
        req.force = arg_force;
        req.dry_run = arg_dry_run;
        snprintf(what, sizeof(what), "prepare %s%s for VFIO", *address ? "the group of " : "group ", args[0]);
        return run_operation(what, SERVICE "PrepareGroup", &req.base);
}

static int verb_release(char **args) {
        Iommud__V1__ReleaseGroupRequest req = IOMMUD__V1__RELEASE_GROUP_REQUEST__INIT;
        char address[13], what[96];

        if (parse_group_or_address(args[0], &req.group, address) < 0)
                return EXIT_USAGE;
        req.device = address;
        req.dry_run = arg_dry_run;
        snprintf(what, sizeof(what), "release %s%s", *address ? "the group of " : "group ", args[0]);
        return run_operation(what, SERVICE "ReleaseGroup", &req.base);
}

static int verb_block(char **args) {
        Iommud__V1__BlockGroupRequest req = IOMMUD__V1__BLOCK_GROUP_REQUEST__INIT;
        char what[64];

        if (parse_group_arg(args[0], &req.group) < 0)
                return EXIT_USAGE;
        req.force = arg_force;
        req.dry_run = arg_dry_run;
        snprintf(what, sizeof(what), "block group %" PRIu32, req.group);
        return run_operation(what, SERVICE "BlockGroup", &req.base);
}

static int verb_unblock(char **args) {
        Iommud__V1__UnblockGroupRequest req = IOMMUD__V1__UNBLOCK_GROUP_REQUEST__INIT;
        char what[64];

        if (parse_group_arg(args[0], &req.group) < 0)
                return EXIT_USAGE;
        req.dry_run = arg_dry_run;
        snprintf(what, sizeof(what), "unblock group %" PRIu32, req.group);
        return run_operation(what, SERVICE "UnblockGroup", &req.base);
}

static json_object *plan_to_json(const Iommud__V1__PlanResponse *p) {
        json_object *o = json_object_new_object(), *steps = json_object_new_array(), *conflicts = json_object_new_array();

        for (size_t i = 0; i < p->n_steps; i++) {
                const Iommud__V1__PlanStep *s = p->steps[i];
                json_object *step = json_object_new_object();

                json_object_object_add(step, "group", json_object_new_int64(s->group));
                json_object_object_add(step, "action", json_object_new_string(s->action));
                json_object_object_add(step, "argument", *s->argument ? json_object_new_string(s->argument) : NULL);
                json_object_object_add(step, "reason", json_object_new_string(s->reason));
                json_object_object_add(step, "blocked", json_object_new_boolean(s->blocked));
                json_object_object_add(step, "blocked_reason",
                                       *s->blocked_reason ? json_object_new_string(s->blocked_reason) : NULL);
                json_object_array_add(steps, step);
        }
        for (size_t i = 0; i < p->n_conflicts; i++)
                json_object_array_add(conflicts, json_object_new_string(p->conflicts[i]));
        json_object_object_add(o, "steps", steps);
        json_object_object_add(o, "conflicts", conflicts);
        return o;
}

static void print_plan(const Iommud__V1__PlanResponse *p) {
        size_t shown = 0;

        for (size_t i = 0; i < p->n_steps; i++) {
                const Iommud__V1__PlanStep *s = p->steps[i];

                if (strcmp(s->action, "none") == 0)
                        continue;
                printf("%sgroup %" PRIu32 "%s: %s%s%s%s\n    %s\n", c(COLOR_BOLD), s->group, c(COLOR_RESET), s->action,
                       *s->argument ? " " : "", s->argument, s->blocked ? " (the kernel refuses it now)" : "", s->reason);
                if (s->blocked)
                        printf("    %sblocked: %s%s\n", c(COLOR_YELLOW), s->blocked_reason, c(COLOR_RESET));
                shown++;
        }
        for (size_t i = 0; i < p->n_conflicts; i++)
                printf("%sconflict:%s %s\n", c(COLOR_RED), c(COLOR_RESET), p->conflicts[i]);
        if (shown == 0 && p->n_conflicts == 0)
                printf("The policy asks for nothing: every group is as it should be.\n");
}

static int verb_plan(char **args) {
        Iommud__V1__PlanRequest req = IOMMUD__V1__PLAN_REQUEST__INIT;
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *m = NULL;
        int r = call("plan", SERVICE "Plan", &req.base, &iommud__v1__plan_response__descriptor, &m);

        if (r != EXIT_OK)
                return r;
        if (arg_json) {
                _cleanup_(json_object_putp) json_object *o = plan_to_json((Iommud__V1__PlanResponse *)m);
                return print_json(o, JSON_C_TO_STRING_PRETTY);
        }
        print_plan((Iommud__V1__PlanResponse *)m);
        return EXIT_OK;
}

static int verb_apply(char **args) {
        Iommud__V1__ApplyPolicyRequest req = IOMMUD__V1__APPLY_POLICY_REQUEST__INIT;
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *m = NULL;
        const Iommud__V1__ApplyPolicyResponse *resp;
        size_t failed = 0;
        int r;

        req.dry_run = arg_dry_run;
        if (!arg_timeout_set)
                arg_timeout_usec = OPERATION_TIMEOUT_USEC;
        r = call("apply the policy", SERVICE "ApplyPolicy", &req.base, &iommud__v1__apply_policy_response__descriptor, &m);
        if (r != EXIT_OK)
                return r;
        resp = (const Iommud__V1__ApplyPolicyResponse *)m;
        for (size_t i = 0; i < resp->n_results; i++)
                failed += *resp->results[i]->error != 0;
        if (arg_json) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                json_object *results = json_object_new_array(); /* owned by o once added */

                json_object_object_add(o, "plan", resp->plan ? plan_to_json(resp->plan) : NULL);
                for (size_t i = 0; i < resp->n_results; i++) {
                        const Iommud__V1__OperationResult *res = resp->results[i];
                        json_object *one = json_object_new_object(), *steps = json_object_new_array();

                        json_object_object_add(one, "group", json_object_new_int64(res->group_id));
                        for (size_t k = 0; k < res->n_steps; k++)
                                json_object_array_add(steps, json_object_new_string(res->steps[k]));
                        json_object_object_add(one, "steps", steps);
                        json_object_object_add(one, "error", *res->error ? json_object_new_string(res->error) : NULL);
                        json_object_array_add(results, one);
                }
                json_object_object_add(o, "results", results);
                r = print_json(o, JSON_C_TO_STRING_PRETTY);
                return r != EXIT_OK ? r : failed ? EXIT_ERROR : EXIT_OK;
        }
        if (resp->plan)
                print_plan(resp->plan);
        for (size_t i = 0; i < resp->n_results; i++) {
                const Iommud__V1__OperationResult *res = resp->results[i];

                if (*res->error)
                        printf("%sgroup %" PRIu32 " failed:%s %s\n", c(COLOR_RED), res->group_id, c(COLOR_RESET),
                               res->error);
                else
                        printf("group %" PRIu32 ": done, %zu steps\n", res->group_id, res->n_steps);
        }
        if (arg_dry_run)
                printf("(dry run: nothing was changed)\n");
        return failed ? EXIT_ERROR : EXIT_OK;
}

/* Offline: no daemon, only the files. */
static int verb_policy(char **args) {
        int n;

        if (strcmp(args[0], "check") != 0) {
                fprintf(stderr, "iommuctl: 'policy' knows one sub-verb: check FILE...\n");
                return EXIT_USAGE;
        }
        if (!args[1]) {
                fprintf(stderr, "iommuctl: 'policy check' wants the files (or policy.d directories) to check.\n");
                return EXIT_USAGE;
        }
        n = policy_check_files(args + 1, stdout);
        if (n < 0) {
                fprintf(stderr, "iommuctl: out of memory\n");
                return EXIT_ERROR;
        }
        if (n == 0 && !arg_json)
                printf("No problem found.\n");
        return n == 0 ? EXIT_OK : EXIT_ERROR;
}

/* ---- history ------------------------------------------------------------------------------------- */

static json_object *history_entry_to_json(const Iommud__V1__HistoryEntry *e) {
        json_object *o = json_object_new_object(), *steps = json_object_new_array();

        json_object_object_add(o, "operation_id", json_object_new_uint64(e->operation_id));
        json_object_object_add(o, "operation", json_object_new_string(e->operation));
        json_object_object_add(o, "group", json_object_new_int64(e->group));
        json_object_object_add(o, "argument", *e->argument ? json_object_new_string(e->argument) : NULL);
        json_object_object_add(o, "peer", json_object_new_string(e->peer));
        json_object_object_add(o, "dry_run", json_object_new_boolean(e->dry_run));
        json_object_object_add(o, "force", json_object_new_boolean(e->force));
        json_object_object_add(o, "started_unix_usec", json_object_new_int64(e->started_unix_usec));
        json_object_object_add(o, "duration_usec", json_object_new_uint64(e->duration_usec));
        for (size_t i = 0; i < e->n_steps; i++)
                json_object_array_add(steps, json_object_new_string(e->steps[i]));
        json_object_object_add(o, "steps", steps);
        json_object_object_add(o, "result", json_object_new_string(e->result));
        json_object_object_add(o, "message", *e->message ? json_object_new_string(e->message) : NULL);
        return o;
}

static const char *result_color(const char *result) {
        if (strcmp(result, "done") == 0 || strcmp(result, "dry-run") == 0)
                return COLOR_GREEN;
        if (strcmp(result, "refused") == 0 || strcmp(result, "running") == 0 || strcmp(result, "cancelled") == 0)
                return COLOR_YELLOW;
        return COLOR_RED;
}

static int verb_history(char **args) {
        static const char *const headers[] = {"ID", "STARTED", "OPERATION", "GROUP", "RESULT", "TIME", "WHO", NULL};
        Iommud__V1__HistoryRequest req = IOMMUD__V1__HISTORY_REQUEST__INIT;
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *m = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        const Iommud__V1__HistoryResponse *resp;
        int r;

        req.limit = arg_limit;
        req.group = arg_groups;
        req.n_group = arg_n_groups;
        r = call("history", SERVICE "History", &req.base, &iommud__v1__history_response__descriptor, &m);
        if (r != EXIT_OK)
                return r;
        resp = (const Iommud__V1__HistoryResponse *)m;
        if (arg_json) {
                _cleanup_(json_object_putp) json_object *a = json_object_new_array();

                for (size_t i = 0; a && i < resp->n_entries; i++)
                        json_object_array_add(a, history_entry_to_json(resp->entries[i]));
                return print_json(a, JSON_C_TO_STRING_PRETTY);
        }

        t = table_new(headers);
        if (!t)
                return EXIT_ERROR;
        table_set_width(t, term_width);
        table_set_shrinkable(t, 6);
        for (size_t i = 0; i < resp->n_entries; i++) {
                const Iommud__V1__HistoryEntry *e = resp->entries[i];
                time_t when = (time_t)(e->started_unix_usec / 1000000);
                char started[32];
                struct tm tm;

                if (localtime_r(&when, &tm))
                        strftime(started, sizeof(started), "%Y-%m-%d %H:%M:%S", &tm);
                else
                        snprintf(started, sizeof(started), "%" PRId64, e->started_unix_usec);
                table_addf(t, NULL, "%" PRIu64, e->operation_id);
                table_add(t, NULL, started);
                table_addf(t, NULL, "%s%s%s%s%s", e->operation, *e->argument ? " " : "", e->argument,
                           e->dry_run ? " (dry run)" : "", e->force ? " (forced)" : "");
                table_addf(t, NULL, "%" PRIu32, e->group);
                table_add(t, result_color(e->result), e->result);
                table_addf(t, NULL, "%.3fs", (double)e->duration_usec / 1e6);
                table_add(t, NULL, e->peer);
        }
        table_print(t, stdout, use_color);
        /* Why the last ones failed: one line each, after the table. */
        for (size_t i = 0; i < resp->n_entries; i++)
                if (*resp->entries[i]->message)
                        printf("  %" PRIu64 ": %s\n", resp->entries[i]->operation_id, resp->entries[i]->message);
        return EXIT_OK;
}

/* ---- main ---------------------------------------------------------------------------------------- */


static const struct {
        const char *name;
        int min_args, max_args; /* max -1: any number */
        int (*run)(char **args);
        const char *arguments; /* for the message when the count is wrong */
} verbs[] = {
        {"status", 0, 0, verb_status, NULL},
        {"units", 0, 0, verb_units, NULL},
        {"groups", 0, 0, verb_groups, NULL},
        {"group", 1, 1, verb_group, "a group number"},
        {"devices", 0, 0, verb_devices, NULL},
        {"device", 1, 1, verb_device, "a PCI address"},
        {"watch", 0, 0, verb_watch, NULL},
        {"rescan", 0, 0, verb_rescan, NULL},
        {"set-type", 2, 2, verb_set_type, "a group number and a type"},
        {"prepare", 1, 1, verb_prepare, "a group number or a PCI address"},
        {"release", 1, 1, verb_release, "a group number or a PCI address"},
        {"block", 1, 1, verb_block, "a group number"},
        {"unblock", 1, 1, verb_unblock, "a group number"},
        {"plan", 0, 0, verb_plan, NULL},
        {"apply", 0, 0, verb_apply, NULL},
        {"policy", 1, -1, verb_policy, "'check' and files"},
        {"history", 0, 0, verb_history, NULL},
};

int main(int argc, char **argv) {
        const char *verb;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_OK;

        if (optind >= argc) {
                fprintf(stderr,
                        "iommuctl: which verb? (status, units, groups, group N, devices, device ADDRESS, "
                        "watch, rescan, set-type, prepare, release, block, unblock, plan, apply, policy check, history; "
                        "see 'iommuctl --help')\n");
                return EXIT_USAGE;
        }
        verb = argv[optind];

        /* Writing into a closed pipe must end with an error from write(), not a silent death. */
        signal(SIGPIPE, SIG_IGN);
        use_color = isatty(STDOUT_FILENO) && !(getenv("NO_COLOR") && *getenv("NO_COLOR")) &&
                    !(getenv("TERM") && strcmp(getenv("TERM"), "dumb") == 0);
        if (isatty(STDOUT_FILENO)) {
                struct winsize ws;

                if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                        term_width = ws.ws_col;
        }

        FOREACH_ARRAY (v, verbs, ELEMENTSOF(verbs)) {
                int n_args = argc - optind - 1;

                if (strcmp(v->name, verb) != 0)
                        continue;
                if (n_args < v->min_args || (v->max_args >= 0 && n_args > v->max_args)) {
                        if (v->arguments)
                                fprintf(stderr, "iommuctl: '%s' wants %s.\n", verb, v->arguments);
                        else
                                fprintf(stderr, "iommuctl: '%s' takes no argument.\n", verb);
                        return EXIT_USAGE;
                }
                return finish_output(v->run(argv + optind + 1));
        }
        fprintf(stderr, "iommuctl: unknown verb '%s'. Try 'iommuctl --help'.\n", verb);
        return EXIT_USAGE;
}
