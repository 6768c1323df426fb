/* iommuctl: the command-line client of iommud, over its gRPC API (tables for people, --json for programs).
 */
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "build-config.h"
#include "escape.h"
#include "grpc-client.h"
#include "iommud.pb-c.h"
#include "labels.h"
#include "macro.h"
#include "pager.h"
#include "parse.h"
#include "policy.h"
#include "proto-json.h"
#include "string-util.h"
#include "table.h"
#include "topology.h"

#define DEFAULT_SOCKET IOMMUD_SOCKET
/* Reads answer in milliseconds; a daemon that does not answer in this time is stuck. */
#define DEFAULT_TIMEOUT_USEC (30 * UINT64_C(1000000))
/* Operations wait for drivers to unbind and bind; the daemon's own deadline is 120 s by default. */
#define OPERATION_TIMEOUT_USEC (150 * UINT64_C(1000000))

#define SERVICE "/iommud.v1.IommuManager/"

/* Documented in iommuctl(1), EXIT STATUS; a script tells the cases apart by them. */
enum {
        EXIT_OK = 0,
        EXIT_ERROR = 1,       /* anything else: the daemon failed, a timeout, out of memory */
        EXIT_USAGE = 2,       /* the command line, or an argument the daemon found invalid */
        EXIT_DENIED = 3,      /* the caller lacks the role, or may not open the socket */
        EXIT_NOT_FOUND = 4,   /* no such group or device */
        EXIT_REFUSED = 5,     /* a check in the daemon refused the operation (in use, critical, ...) */
        EXIT_UNREACHABLE = 6, /* no daemon answers: no socket, connection refused, TLS failed */
};

#define MAX_FILTER_VALUES 16

typedef struct Filter {
        char *values[MAX_FILTER_VALUES];
        size_t n;
} Filter;

static const char *arg_socket = NULL;
static const char *arg_host = NULL;
static const char *arg_ca = NULL;
static const char *arg_cert = NULL;
static const char *arg_key = NULL;
static uint64_t arg_timeout_usec = 0;
static bool arg_timeout_set = false;
static bool arg_json = false;
static bool arg_legend = true;
static bool arg_pager = true;
static enum { COLOR_AUTO, COLOR_ALWAYS, COLOR_NEVER } arg_color = COLOR_AUTO;
static bool arg_snapshot = false;
static bool arg_dry_run = false;
static bool arg_force = false;
static const char *arg_owner = NULL;
static uint32_t arg_limit = 0;
static uint32_t arg_groups[16];
static size_t arg_n_groups = 0;
static Filter arg_type, arg_driver, arg_vendor, arg_class;
static Iommud__V1__GroupState arg_states[MAX_FILTER_VALUES];
static size_t arg_n_states = 0;
static Iommud__V1__ListGroupsRequest__Viability arg_viable =
        IOMMUD__V1__LIST_GROUPS_REQUEST__VIABILITY__VIABILITY_ANY;
static bool arg_help = false;
static bool use_color = false;
static bool use_utf8 = false;
static bool use_pager = false;
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

/* ---- verbs and options, each described once ------------------------------------------------------- */

/* Options every verb takes: how to reach the daemon and how to print. */
#define COMMON_OPTIONS "--socket --host --ca --cert --key --timeout --color --no-pager --help"
#define FILTER_OPTIONS "--type --viable --driver --vendor --class --state"

static const struct {
        const char *name, *argument, *help;
} option_help[] = {
        {"--json", NULL, "JSON for programs, in the shape of `iommud --dump`\n(watch: one JSON object per line)"},
        {"--no-legend", NULL, "Tables without their header line and closing count"},
        {"--type", "TYPE", "Groups of this domain type (identity, DMA, DMA-FQ, blocked, ...)"},
        {"--viable", "[=yes|no]", "Groups that are (=no: are not) viable for VFIO"},
        {"--driver", "NAME", "Groups with a member bound to NAME (none: an unbound member)"},
        {"--vendor", "ID|NAME", "Groups with a member from this vendor (hex ID, or part of the name)"},
        {"--class", "CLASS|NAME", "Groups with a member of this class (hex prefix such as 03 or\n0300, or part of the name)"},
        {"--state", "STATE", "Groups in this state: host, vfio_ready, in_use, blocked,\ntransitioning, failed"},
        {"--snapshot", NULL, "watch: print the current state first"},
        {"--dry-run", NULL, "Operations: only list the steps they would take"},
        {"--force", NULL, "Operations: take a group the host uses or the policy marks\ncritical (admin)"},
        {"--owner", "NAME", "prepare: who holds the group afterwards"},
        {"-n", "N", "history: the newest N entries only"},
        {"--group", "N", "history: only group N's entries (repeatable)"},
        {"--socket", "PATH", "Daemon's Unix socket (default: $IOMMUD_SOCKET, else\n" DEFAULT_SOCKET ")"},
        {"--host", "HOST:PORT", "Talk to a remote daemon over mutual TLS instead"},
        {"--ca", "FILE", "CA certificates that signed the server's certificate\n(default: the system's)"},
        {"--cert", "FILE", "Client certificate chain (PEM) to present with --host"},
        {"--key", "FILE", "Its private key (PEM)"},
        {"--timeout", "SECONDS", "Give up on a call after this long (default 30; watch: none);\nalso sent to the daemon as the call's deadline"},
        {"--color", "=WHEN", "Colour: auto (on a terminal without $NO_COLOR), always, never"},
        {"--no-pager", NULL, "Do not pipe long output on a terminal into a pager"},
        {"--help", NULL, "Show this help; after a verb, that verb's (also -h)"},
        {"--version", NULL, "Show the version"},
};

typedef struct Verb {
        const char *name;
        int min_args, max_args; /* max -1: any number */
        int (*run)(char **args);
        const char *arguments; /* for the message when the count is wrong */
        const char *synopsis, *summary;
        const char *options; /* beyond COMMON_OPTIONS */
        bool pager;          /* output that can be long goes through the pager on a terminal */
} Verb;

static int verb_status(char **args);
static int verb_units(char **args);
static int verb_groups(char **args);
static int verb_group(char **args);
static int verb_devices(char **args);
static int verb_device(char **args);
static int verb_tree(char **args);
static int verb_graph(char **args);
static int verb_watch(char **args);
static int verb_rescan(char **args);
static int verb_set_type(char **args);
static int verb_prepare(char **args);
static int verb_release(char **args);
static int verb_block(char **args);
static int verb_unblock(char **args);
static int verb_plan(char **args);
static int verb_apply(char **args);
static int verb_policy(char **args);
static int verb_history(char **args);

static const Verb verbs[] = {
        {"status", 0, 0, verb_status, NULL, NULL,
         "Kernel, IOMMU and VFIO state, then the groups with state and owner (the default)",
         "--json --no-legend " FILTER_OPTIONS, true},
        {"units", 0, 0, verb_units, NULL, NULL, "IOMMU hardware units", "--json --no-legend", true},
        {"groups", 0, 0, verb_groups, NULL, NULL,
         "IOMMU groups with their state, owner, devices, drivers and VFIO viability",
         "--json --no-legend " FILTER_OPTIONS, true},
        {"group", 1, 1, verb_group, "a group number", "N",
         "One group: state, owner, members, reserved regions, why it is (not) viable", "--json --no-legend", true},
        {"devices", 0, 0, verb_devices, NULL, NULL, "All PCI devices", "--json --no-legend", true},
        {"device", 1, 1, verb_device, "a PCI address", "ADDRESS",
         "One PCI device (DDDD:BB:SS.F, or BB:SS.F in domain 0000)", "--json", true},
        {"tree", 0, 0, verb_tree, NULL, NULL,
         "PCI topology with groups, domain types, drivers and viability (like lspci -tv)", NULL,
         true},
        {"graph", 0, 0, verb_graph, NULL, NULL,
         "The same as Graphviz DOT, groups as clusters (for dot -Tsvg)", NULL, true},
        {"watch", 0, 0, verb_watch, NULL, NULL, "Print changes as they happen, one line each, until Ctrl-C",
         "--json --snapshot", false},
        {"rescan", 0, 0, verb_rescan, NULL, NULL, "Make the daemon re-read the host now (role: operator)", "--json",
         false},
        {"set-type", 2, 2, verb_set_type, "a group number and a type", "N TYPE",
         "Set group N's domain type: identity, DMA, DMA-FQ or auto (admin)", "--json --dry-run --force", false},
        {"prepare", 1, 1, verb_prepare, "a group number or a PCI address", "N|ADDRESS",
         "Bind the whole group to vfio-pci for a VM (operator)", "--json --dry-run --force --owner", false},
        {"release", 1, 1, verb_release, "a group number or a PCI address", "N|ADDRESS",
         "Give the group back to the drivers it had (operator)", "--json --dry-run", false},
        {"block", 1, 1, verb_block, "a group number", "N",
         "Keep every member of group N off any driver, across re-plug (admin)", "--json --dry-run --force", false},
        {"unblock", 1, 1, verb_unblock, "a group number", "N", "Give the blocked members their drivers back (admin)",
         "--json --dry-run", false},
        {"plan", 0, 0, verb_plan, NULL, NULL, "What the policy wants for each group, and why (file:line)", "--json",
         true},
        {"apply", 0, 0, verb_apply, NULL, NULL, "Apply the policy now (admin)", "--json --dry-run", false},
        {"policy", 1, -1, verb_policy, "'check' and files", "check FILE...",
         "Check policy files offline (no daemon); problems as file:line", "--json", true},
        {"history", 0, 0, verb_history, NULL, NULL,
         "The operations iommud ran, newest first: who, when, what, result", "--json --no-legend -n --group", true},
};

static bool word_in(const char *word, const char *list) {
        size_t n = strlen(word);

        for (const char *p = list; (p = strstr(p, word)); p += n)
                if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
                        return true;
        return false;
}

static void print_option_help(const char *list) {
        FOREACH_ARRAY (o, option_help, ELEMENTSOF(option_help)) {
                char head[32];

                if (list && !word_in(o->name, list))
                        continue;
                snprintf(head, sizeof(head), "%s%s%s", o->name, o->argument && *o->argument != '=' && *o->argument != '[' ? " " : "", o->argument ?: "");
                printf("  %-20s", head);
                if (strlen(head) > 20)
                        printf("\n  %-20s", "");
                for (const char *p = o->help; *p; p++) {
                        putchar(*p);
                        if (*p == '\n')
                                printf("  %-20s", "");
                }
                putchar('\n');
        }
}

static void help(void) {
        printf("Usage: iommuctl [OPTIONS] [VERB [ARGUMENT...]]\n"
               "\n"
               "Shows the IOMMU groups, devices and units that iommud sees, follows their changes and\n"
               "runs its operations. Without a verb: status.\n"
               "\n"
               "Verbs:\n");
        FOREACH_ARRAY (v, verbs, ELEMENTSOF(verbs)) {
                char head[40];

                snprintf(head, sizeof(head), "%s%s%s", v->name, v->synopsis ? " " : "", v->synopsis ?: "");
                printf("  %-20s%s%s\n", head, strlen(head) >= 20 ? "\n                      " : "", v->summary);
        }
        printf("\nOptions:\n");
        print_option_help(NULL);
        printf("\n"
               "Filters (groups, status) repeat: the values of one are alternatives, different ones\n"
               "must all match.\n"
               "\n"
               "Exit status: 0 success, 1 other error, 2 usage error (including an invalid group\n"
               "number or PCI address), 3 permission denied, 4 no such group or device, 5 refused by\n"
               "a check of the daemon (the host or a VM uses the group, the policy marks it critical,\n"
               "...), 6 no daemon answers.\n"
               "\n"
               "Examples:\n"
               "  iommuctl                              host status and its groups\n"
               "  iommuctl groups --viable              which groups could be passed through\n"
               "  iommuctl group 14                     why group 14 is not viable\n"
               "  iommuctl tree                         PCI topology with groups and drivers\n"
               "  iommuctl graph | dot -Tsvg > host.svg\n"
               "                                        a picture of the host\n"
               "  iommuctl device 01:00.0 --json        one device, for a script\n"
               "  iommuctl --json groups | jq '.[] | select(.viable) | .id'\n"
               "  iommuctl watch                        follow binds, unbinds, hotplug\n"
               "  iommuctl --host node7:7443 --ca ca.pem --cert me.pem --key me.key status\n"
               "\n"
               "See iommuctl(1).\n");
}

static void verb_help(const Verb *v) {
        printf("Usage: iommuctl [OPTIONS] %s%s%s\n\n%s.\n", v->name, v->synopsis ? " " : "", v->synopsis ?: "",
               v->summary);
        if (v->options && *v->options) {
                printf("\nOptions:\n");
                print_option_help(v->options);
        }
        printf("\nCommon options:\n");
        print_option_help(COMMON_OPTIONS);
        printf("\nSee 'iommuctl --help' for every verb, and iommuctl(1).\n");
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
        fprintf(stderr,
                "iommuctl: '%s' is not a group number (groups are numbered 0, 1, 2, ...; see 'iommuctl groups').\n",
                arg);
        return -EINVAL;
}

/* ---- calls and how they fail ------------------------------------------------------------------ */

/* The daemon's answer, by its status alone: the message is for people. */
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
        case GRPC_STATUS_OUT_OF_RANGE:
                return EXIT_USAGE;
        case GRPC_STATUS_FAILED_PRECONDITION:
        case GRPC_STATUS_ABORTED:
        case GRPC_STATUS_ALREADY_EXISTS:
                return EXIT_REFUSED;
        case GRPC_STATUS_UNAVAILABLE:
                return EXIT_UNREACHABLE;
        default:
                return EXIT_ERROR;
        }
}

/* No answer came: the client's own status says why (UNAVAILABLE: no connection). */
static int exit_code_for_error(int r, GrpcStatus code) {
        if (r == -EACCES)
                return EXIT_DENIED; /* the socket's permissions */
        if (r == -EINVAL)
                return EXIT_USAGE; /* --ca, --cert or --key cannot be loaded */
        return code == GRPC_STATUS_UNAVAILABLE ? EXIT_UNREACHABLE : EXIT_ERROR;
}

/* Says why a call failed, once, on stderr, and returns the exit code. */
static int report_failure(const char *what, int r, const GrpcClientStatus *st) {
        _cleanup_(freep) char *escaped = st->message && *st->message ? escape_control(st->message) : NULL;
        const char *message = escaped;

        if (r < 0) {
                fprintf(stderr, "iommuctl: %s\n", message ?: strerror(-r));
                if (arg_socket && (r == -ENOENT || r == -ECONNREFUSED))
                        fprintf(stderr,
                                "iommuctl: iommud is not running on %s (start it with 'systemctl start "
                                "iommud', or name its socket with --socket or $IOMMUD_SOCKET).\n",
                                arg_socket);
                else if (arg_socket && r == -EACCES)
                        fprintf(stderr, "iommuctl: you may not open %s; ask for access to the socket.\n",
                                arg_socket);
                else if (arg_host && r == -ECONNREFUSED)
                        fprintf(stderr,
                                "iommuctl: nothing listens on %s; is iommud's TLS listener enabled?\n",
                                arg_host);
                return exit_code_for_error(r, st->code);
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

/* Text output shows server strings with their control characters escaped; JSON escapes its own. */
static int escape_for_output(ProtobufCMessage *m) {
        if (arg_json || escape_message_strings(m) >= 0)
                return EXIT_OK;
        fprintf(stderr, "iommuctl: out of memory\n");
        return EXIT_ERROR;
}

/* One unary call, or with 'every_page' a paged List call fetched to its last page into one response;
 * returns an exit code and, on success, the response. */
static int call_with(bool every_page, const char *what, const char *method, ProtobufCMessage *request,
                     const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **ret) {
        _cleanup_(event_base_freep) struct event_base *base = event_base_new();
        _cleanup_(grpc_client_freep) GrpcClient *client = NULL;
        _cleanup_(grpc_client_status_done) GrpcClientStatus st = {};
        int r;

        if (!base || client_new(base, &client) < 0)
                return EXIT_ERROR;
        r = every_page ? grpc_client_list_all(client, method, request, response_type, ret, &st)
                       : grpc_client_call(client, method, request, response_type, ret, &st);
        if (r < 0 || st.code != GRPC_STATUS_OK)
                return report_failure(what, r, &st);
        return escape_for_output(*ret);
}

static int call(const char *what, const char *method, const ProtobufCMessage *request,
                const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **ret) {
        return call_with(false, what, method, (ProtobufCMessage *)request, response_type, ret);
}

/* Everything to print is at hand: long output on a terminal goes through the pager from here on. */
static void output_begin(void) {
        if (use_pager)
                (void)pager_open();
}

static int print_json(json_object *o, int flags) {
        if (!o) {
                fprintf(stderr, "iommuctl: out of memory\n");
                return EXIT_ERROR;
        }
        output_begin();
        puts(json_object_to_json_string_ext(o, flags | JSON_C_TO_STRING_NOSLASHESCAPE));
        return EXIT_OK;
}

static int finish_output(int code) {
        bool failed = fflush(stdout) != 0 || ferror(stdout);
        int error = errno;

        pager_close();
        /* Quitting the pager before the end is how one reads only the start. */
        if (failed && error == EPIPE && use_pager)
                return code;
        if (failed) {
                if (error != EPIPE)
                        fprintf(stderr, "iommuctl: cannot write the output: %s\n", strerror(error));
                return EXIT_ERROR;
        }
        return code;
}

static void add_legend(size_t n, const char *one, const char *many) {
        if (arg_legend)
                printf("\n%zu %s listed.\n", n, n == 1 ? one : many);
}
/* ---- text output -------------------------------------------------------------------------------- */

static void add_device_cells(Table *t, const Iommud__V1__Device *d) {
        char b1[16], b2[16], b3[16];

        table_add(t, NULL, d->address);
        table_add(t, NULL, device_class_label(d, b1));
        table_add(t, NULL, device_vendor_label(d, b2));
        table_add(t, NULL, device_name_label(d, b3));
        table_add(t, driver_color(d->driver), or_dash(d->driver));
}

static const Iommud__V1__Device *find_member(const Iommud__V1__Group *g, const char *address) {
        for (size_t i = 0; i < g->n_devices; i++)
                if (strcmp(g->devices[i]->address, address) == 0)
                        return g->devices[i];
        return NULL;
}

/* A new table for people: its header unless --no-legend, as wide as the terminal. */
static Table *new_table(const char *const *headers) {
        Table *t = table_new(headers);

        if (!t) {
                fprintf(stderr, "iommuctl: out of memory\n");
                return NULL;
        }
        table_set_header(t, arg_legend);
        table_set_width(t, term_width);
        return t;
}

static const char *const GROUP_HEADERS[] = {"GROUP",   "TYPE",  "STATE",  "VIABLE", "OWNER",
                                            "ADDRESS", "CLASS", "VENDOR", "DEVICE", "DRIVER", NULL};

/* GROUP TYPE STATE VIABLE OWNER: the cells that say what a group is, before its members. */
static int add_group_cells(Table *t, const Iommud__V1__Group *g) {
        _cleanup_(freep) char *owner = group_owner_label(g);

        if (!owner)
                return -ENOMEM;
        table_addf(t, COLOR_BOLD, "%" PRIu32, g->id);
        table_add(t, NULL, or_dash(g->domain_type_raw));
        table_add(t, group_state_color(g), group_state_label(g));
        table_add(t, g->viable ? COLOR_GREEN : COLOR_RED, g->viable ? "yes" : "no");
        return table_add(t, NULL, owner);
}

static void add_group_rows(Table *t, const Iommud__V1__Group *g) {
        for (size_t i = 0; i < (g->n_device_addresses ?: 1); i++) {
                const char *address = i < g->n_device_addresses ? g->device_addresses[i] : NULL;
                const Iommud__V1__Device *d = address ? find_member(g, address) : NULL;

                if (i == 0)
                        add_group_cells(t, g);
                else
                        for (size_t k = 0; k < 5; k++)
                                table_add(t, NULL, "");
                if (d)
                        add_device_cells(t, d);
                else
                        for (size_t k = 0; k < 5; k++)
                                table_add(t, k == 0 && !address ? COLOR_YELLOW : NULL,
                                          k == 0 ? address ?: (g->empty ? "(empty)" : NULL) : NULL);
        }
}

static int print_groups(Iommud__V1__Group *const *groups, size_t n_groups) {
        _cleanup_(table_freep) Table *t = new_table(GROUP_HEADERS);
        size_t n_devices = 0;

        if (!t)
                return EXIT_ERROR;
        table_set_shrinkable(t, 4);
        table_set_shrinkable(t, 6);
        table_set_shrinkable(t, 7);
        table_set_shrinkable(t, 8);
        for (size_t i = 0; i < n_groups; i++) {
                add_group_rows(t, groups[i]);
                n_devices += groups[i]->n_device_addresses;
        }
        output_begin();
        table_print(t, stdout, use_color);
        if (arg_legend)
                printf("\n%zu group%s with %zu device%s listed.\n", n_groups, n_groups == 1 ? "" : "s", n_devices,
                       n_devices == 1 ? "" : "s");
        return EXIT_OK;
}

static int print_group(const Iommud__V1__Group *g) {
        static const char *const headers[] = {"ADDRESS", "CLASS", "VENDOR", "DEVICE", "DRIVER", NULL};
        _cleanup_(table_freep) Table *t = new_table(headers);
        const Iommud__V1__Owner *o = g->owner;

        if (!t)
                return EXIT_ERROR;
        output_begin();
        printf("%sGroup %" PRIu32 "%s   type %s   %s%s%s\n", c(COLOR_BOLD), g->id, c(COLOR_RESET),
               or_dash(g->domain_type_raw), c(g->viable ? COLOR_GREEN : COLOR_RED),
               g->viable ? "viable for VFIO" : "not viable for VFIO", c(COLOR_RESET));
        printf("  State: %s%s%s\n", c(group_state_color(g) ?: ""), group_state_label(g), c(COLOR_RESET));
        if (o && o->kind && streq(o->kind, "libvirt"))
                printf("  Owner: libvirt domain %s (UUID %s)\n", or_dash(o->domain_name), or_dash(o->domain_uuid));
        else if (o && o->kind && *o->kind)
                printf("  Owner: %s %s\n", o->kind, or_dash(o->client));
        else
                printf("  Owner: -\n");
        for (size_t i = 0; i < g->n_users; i++)
                printf("  %s %s\n", i == 0 ? "Used by:" : "        ", or_dash(g->users[i]->text));
        for (size_t i = 0; i < g->n_host_uses; i++)
                printf("  %s %s%s%s%s\n", i == 0 ? "Host uses:" : "          ", c(COLOR_YELLOW),
                       or_dash(g->host_uses[i]->text), c(COLOR_RESET),
                       g->host_uses[i]->forcible ? " (an admin may force)" : "");
        if (g->empty)
                printf("  %sEmpty:%s the kernel shows the group without a PCI member%s%s\n", c(COLOR_YELLOW),
                       c(COLOR_RESET), *g->empty_reason ? ": " : "", g->empty_reason);

        printf("\nDevices:\n");
        table_set_indent(t, 2);
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
                /* One verdict per type, judged the way SetDomainType would carry it out. */
                if (tc->n_verdicts > 0) {
                        printf("\n");
                        for (size_t i = 0; i < tc->n_verdicts; i++) {
                                const Iommud__V1__TypeVerdict *v = tc->verdicts[i];

                                /* The text names the type: "DMA: iommud unbinds ..." */
                                printf("  %s%s%s\n", c(v->current ? "" : v->allowed ? COLOR_GREEN : COLOR_YELLOW),
                                       or_dash(v->text), c(v->current ? "" : COLOR_RESET));
                        }
                } else {
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
        _cleanup_(table_freep) Table *t = new_table(headers);

        if (!t)
                return EXIT_ERROR;
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
        output_begin();
        table_print(t, stdout, use_color);
        add_legend(resp->n_devices, "device", "devices");
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

        output_begin();
        printf("%s%s%s  %s %s\n", c(COLOR_BOLD), d->address, c(COLOR_RESET), device_vendor_label(d, b2),
               device_name_label(d, b3));
        print_field("Class:", NULL, "%s", device_class_label(d, b1));
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
        _cleanup_(table_freep) Table *t = new_table(headers);

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
        output_begin();
        table_print(t, stdout, use_color);
        add_legend(n, "unit", "units");
        return EXIT_OK;
}

/* "01:00.0 GA102 [GeForce RTX 3090], 01:00.1 ...": a group's members on one line. */
static char *group_members_line(const Iommud__V1__Group *g) {
        char *line = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&line, &len);

        if (!f)
                return NULL;
        for (size_t i = 0; i < g->n_device_addresses; i++) {
                const Iommud__V1__Device *d = find_member(g, g->device_addresses[i]);
                char b[16];

                fprintf(f, "%s%s %s", i ? ", " : "", g->device_addresses[i],
                        d ? device_name_label(d, b) : "?");
        }
        if (g->n_device_addresses == 0)
                fputs(g->empty ? "(empty)" : "-", f);
        if (fclose(f) != 0) {
                free(line);
                return NULL;
        }
        return line;
}

/* The host in a few lines, then one line per group: what `iommuctl` alone shows. */
static int print_status(const Iommud__V1__GetHostResponse *r, Iommud__V1__Group *const *groups, size_t n_groups) {
        static const char *const headers[] = {"GROUP", "TYPE", "STATE", "VIABLE", "OWNER", "DEVICES", NULL};
        const Iommud__V1__HostInfo *h = r->host;
        _cleanup_(table_freep) Table *t = new_table(headers);

        if (!h || !t)
                return EXIT_ERROR;
        table_set_shrinkable(t, 4);
        table_set_shrinkable(t, 5);
        for (size_t i = 0; i < n_groups; i++) {
                _cleanup_(freep) char *members = group_members_line(groups[i]);

                if (!members || add_group_cells(t, groups[i]) < 0 || table_add(t, NULL, members) < 0) {
                        fprintf(stderr, "iommuctl: out of memory\n");
                        return EXIT_ERROR;
                }
        }

        output_begin();
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
        printf("\n");
        table_print(t, stdout, use_color);
        add_legend(n_groups, "group", "groups");
        return EXIT_OK;
}

/* ---- verbs -------------------------------------------------------------------------------------- */

/* ListGroups with the command line's filters, which the daemon applies, every page of it. */
static int fetch_groups(ProtobufCMessage **ret) {
        Iommud__V1__ListGroupsRequest req = IOMMUD__V1__LIST_GROUPS_REQUEST__INIT;

        req.type = arg_type.values;
        req.n_type = arg_type.n;
        req.viable = arg_viable;
        req.vendor = arg_vendor.values;
        req.n_vendor = arg_vendor.n;
        req.class_ = arg_class.values;
        req.n_class_ = arg_class.n;
        req.driver = arg_driver.values;
        req.n_driver = arg_driver.n;
        req.state = arg_states;
        req.n_state = arg_n_states;
        return call_with(true, "groups", SERVICE "ListGroups", &req.base, &iommud__v1__list_groups_response__descriptor,
                         ret);
}

static int fetch_devices(ProtobufCMessage **ret) {
        Iommud__V1__ListDevicesRequest req = IOMMUD__V1__LIST_DEVICES_REQUEST__INIT;

        return call_with(true, "devices", SERVICE "ListDevices", &req.base,
                         &iommud__v1__list_devices_response__descriptor, ret);
}

static int fetch_host(ProtobufCMessage **ret) {
        Iommud__V1__GetHostRequest req = IOMMUD__V1__GET_HOST_REQUEST__INIT;

        return call("status", SERVICE "GetHost", &req.base, &iommud__v1__get_host_response__descriptor, ret);
}

static int verb_status(char **args) {
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *m = NULL, *groups = NULL;
        const Iommud__V1__ListGroupsResponse *g;
        int r = fetch_host(&m);

        if (r != EXIT_OK)
                return r;
        if (arg_json) {
                _cleanup_(json_object_putp) json_object *o =
                        proto_host_response_to_json((Iommud__V1__GetHostResponse *)m);
                return print_json(o, JSON_C_TO_STRING_PRETTY);
        }
        r = fetch_groups(&groups);
        if (r != EXIT_OK)
                return r;
        g = (const Iommud__V1__ListGroupsResponse *)groups;
        return print_status((Iommud__V1__GetHostResponse *)m, g->groups, g->n_groups);
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
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *m = NULL;
        const Iommud__V1__ListGroupsResponse *resp;
        int r = fetch_groups(&m);

        if (r != EXIT_OK)
                return r;
        resp = (const Iommud__V1__ListGroupsResponse *)m;
        if (arg_json) {
                _cleanup_(json_object_putp) json_object *a = json_object_new_array();

                for (size_t i = 0; a && i < resp->n_groups; i++)
                        json_object_array_add(a, proto_group_to_json(resp->groups[i]));
                return print_json(a, JSON_C_TO_STRING_PRETTY);
        }
        return print_groups(resp->groups, resp->n_groups);
}

static int verb_group(char **args) {
        Iommud__V1__GetGroupRequest req = IOMMUD__V1__GET_GROUP_REQUEST__INIT;
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *m = NULL;
        char what[64];
        int r;

        if (parse_group_arg(args[0], &req.id) < 0)
                return EXIT_USAGE;
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
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *m = NULL;
        const Iommud__V1__ListDevicesResponse *resp;
        int r = fetch_devices(&m);

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

/* tree and graph: every device and every group, joined by the topology module. */
static int fetch_topology(ProtobufCMessage **ret_devices, ProtobufCMessage **ret_groups, Topology **ret) {
        const Iommud__V1__ListDevicesResponse *d;
        const Iommud__V1__ListGroupsResponse *g;
        int r;

        r = fetch_devices(ret_devices);
        if (r != EXIT_OK)
                return r;
        r = fetch_groups(ret_groups);
        if (r != EXIT_OK)
                return r;
        d = (const Iommud__V1__ListDevicesResponse *)*ret_devices;
        g = (const Iommud__V1__ListGroupsResponse *)*ret_groups;
        if (topology_new(d->devices, d->n_devices, g->groups, g->n_groups, ret) < 0) {
                fprintf(stderr, "iommuctl: out of memory\n");
                return EXIT_ERROR;
        }
        return EXIT_OK;
}

static int verb_tree(char **args) {
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *devices = NULL, *groups = NULL;
        _cleanup_(topology_freep) Topology *t = NULL;
        int r = fetch_topology(&devices, &groups, &t);

        if (r != EXIT_OK)
                return r;
        output_begin();
        topology_print_tree(t, stdout, use_color, use_utf8);
        return EXIT_OK;
}

static int verb_graph(char **args) {
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *host = NULL, *devices = NULL, *groups = NULL;
        _cleanup_(topology_freep) Topology *t = NULL;
        _cleanup_(freep) char *title = NULL;
        const Iommud__V1__GetHostResponse *h;
        int r = fetch_host(&host);

        if (r != EXIT_OK)
                return r;
        r = fetch_topology(&devices, &groups, &t);
        if (r != EXIT_OK)
                return r;
        h = (const Iommud__V1__GetHostResponse *)host;
        title = strprintf("IOMMU groups of a Linux %s host: %" PRIu32 " groups, %" PRIu32 " devices%s",
                          h->host ? or_dash(h->host->kernel_release) : "-", h->group_count, h->device_count,
                          h->host && !h->host->iommu_enabled ? " (IOMMU off)" : "");
        if (!title) {
                fprintf(stderr, "iommuctl: out of memory\n");
                return EXIT_ERROR;
        }
        output_begin();
        topology_print_dot(t, stdout, title);
        return EXIT_OK;
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
                        printf("%s  %s %s", d->address, device_vendor_label(d, b1), device_name_label(d, b2));
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
        case IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_STATUS_CHANGED:
                if (e->group_status_changed) {
                        const Iommud__V1__WatchEvent__GroupStatusChanged *sc = e->group_status_changed;

                        printf("group %" PRIu32 "  %s -> %s", sc->group, proto_group_state_to_string(sc->old_state),
                               proto_group_state_to_string(sc->new_state));
                        for (size_t i = 0; i < sc->n_changed; i++)
                                printf("%s%s", i ? ", " : "  changed: ", sc->changed[i]);
                        if (sc->group_now && sc->group_now->owner && *sc->group_now->owner->kind) {
                                _cleanup_(freep) char *owner = group_owner_label(sc->group_now);

                                printf("  owner %s", owner ?: "?");
                        }
                }
                break;
        case IOMMUD__V1__WATCH_EVENT__EVENT_SNAPSHOT_PAGE:
                if (e->snapshot_page)
                        printf("%zu groups, %zu devices%s", e->snapshot_page->n_groups, e->snapshot_page->n_devices,
                               e->snapshot_page->last ? " (last page)" : "");
                break;
        case IOMMUD__V1__WATCH_EVENT__EVENT_RELIST_REQUIRED:
                if (e->relist_required)
                        printf("%s%s%s", c(COLOR_YELLOW), or_dash(e->relist_required->reason), c(COLOR_RESET));
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
        if (e->cause && e->cause->text && *e->cause->text)
                printf("  %s(%s)%s", c(COLOR_DIM), e->cause->text, c(COLOR_RESET));
        printf("\n");
}

static int on_watch_event(ProtobufCMessage *m, void *userdata) {
        _cleanup_(protobuf_c_message_freep) ProtobufCMessage *msg = m;
        const Iommud__V1__WatchEvent *e = (const Iommud__V1__WatchEvent *)msg;

        if (!arg_json && escape_message_strings(msg) < 0)
                return -ENOMEM;
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

/* ---- operations and policy ---------------------------------------------------------------------- */

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
        output_begin();
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
        output_begin();
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

        t = new_table(headers);
        if (!t)
                return EXIT_ERROR;
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
        output_begin();
        table_print(t, stdout, use_color);
        /* Why the last ones failed: one line each, after the table. */
        for (size_t i = 0; i < resp->n_entries; i++)
                if (*resp->entries[i]->message)
                        printf("  %" PRIu64 ": %s\n", resp->entries[i]->operation_id, resp->entries[i]->message);
        add_legend(resp->n_entries, "operation", "operations");
        return EXIT_OK;
}

/* ---- command line -------------------------------------------------------------------------------- */

enum {
        ARG_VERSION = 0x100,
        ARG_JSON,
        ARG_NO_LEGEND,
        ARG_NO_PAGER,
        ARG_COLOR,
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
        ARG_TYPE,
        ARG_VIABLE,
        ARG_DRIVER,
        ARG_VENDOR,
        ARG_CLASS,
        ARG_STATE,
};

#define SHORT_OPTIONS "hn:"

static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, ARG_VERSION},
        {"json", no_argument, NULL, ARG_JSON},
        {"no-legend", no_argument, NULL, ARG_NO_LEGEND},
        {"no-pager", no_argument, NULL, ARG_NO_PAGER},
        {"color", optional_argument, NULL, ARG_COLOR},
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
        {"type", required_argument, NULL, ARG_TYPE},
        {"viable", optional_argument, NULL, ARG_VIABLE},
        {"driver", required_argument, NULL, ARG_DRIVER},
        {"vendor", required_argument, NULL, ARG_VENDOR},
        {"class", required_argument, NULL, ARG_CLASS},
        {"state", required_argument, NULL, ARG_STATE},
        {},
};

/* The options given (by index in options[]; -n apart), to refuse those the verb would ignore. */
static bool given[ELEMENTSOF(options)];
static bool given_n = false;

/* "--viable" when it was given and 'verb' does not take it, else NULL. */
static const char *option_not_for(const Verb *verb) {
        static char name[32];

        if (given_n && !word_in("-n", verb->options ?: ""))
                return "-n";
        for (size_t i = 0; options[i].name; i++) {
                if (!given[i])
                        continue;
                snprintf(name, sizeof(name), "--%s", options[i].name);
                if (!word_in(name, COMMON_OPTIONS) && !word_in(name, verb->options ?: ""))
                        return name;
        }
        return NULL;
}

/* Does the word at argv[i] name an option whose value is the next word ("--socket PATH", "-n 5")? */
static bool takes_next_word(const char *word) {
        if (word[1] == '-') {
                size_t len = strcspn(word + 2, "=");
                const struct option *match = NULL;

                if (word[2 + len] == '=')
                        return false;
                /* getopt_long accepts unambiguous prefixes; an exact name wins. */
                for (const struct option *o = options; o->name; o++)
                        if (strncmp(o->name, word + 2, len) == 0) {
                                if (strlen(o->name) == len) {
                                        match = o;
                                        break;
                                }
                                match = match ? NULL : o;
                        }
                return match && match->has_arg == required_argument;
        }
        for (const char *p = word + 1; *p; p++) {
                const char *s = strchr(SHORT_OPTIONS, *p);

                if (s && s[1] == ':')
                        return p[1] == 0; /* "-n5" carries its value */
        }
        return false;
}

static bool is_negative_number(const char *word) {
        return word[0] == '-' && isdigit((unsigned char)word[1]);
}

/* getopt would read "-1" as an option, and "--json" after "--" too: only words that are options go to
 * it ('opts', with argv[0] first), the others, in order, are the verb and its arguments ('positional').
 * Both arrays have argc + 1 slots and end with NULL. */
static void split_argv(int argc, char **argv, char **opts, int *ret_n_opts, char **positional,
                       int *ret_n_positional) {
        int n_opts = 0, n_positional = 0;
        bool only_positional = false;

        opts[n_opts++] = argv[0];
        for (int i = 1; i < argc; i++) {
                const char *word = argv[i];

                if (only_positional || word[0] != '-' || word[1] == 0 || is_negative_number(word))
                        positional[n_positional++] = argv[i];
                else if (streq(word, "--"))
                        only_positional = true;
                else {
                        opts[n_opts++] = argv[i];
                        if (takes_next_word(word) && i + 1 < argc)
                                opts[n_opts++] = argv[++i];
                }
        }
        opts[n_opts] = positional[n_positional] = NULL;
        *ret_n_opts = n_opts;
        *ret_n_positional = n_positional;
}

static int add_filter(Filter *f, const char *option, const char *value) {
        if (!*value || f->n >= MAX_FILTER_VALUES) {
                fprintf(stderr, "iommuctl: --%s wants a value (at most %d of them), not '%s'.\n", option,
                        MAX_FILTER_VALUES, value);
                return -EINVAL;
        }
        f->values[f->n++] = (char *)value;
        return 0;
}

static int parse_state(const char *s, Iommud__V1__GroupState *ret) {
        for (int v = IOMMUD__V1__GROUP_STATE__GROUP_STATE_HOST; v <= IOMMUD__V1__GROUP_STATE__GROUP_STATE_FAILED; v++) {
                const char *name = proto_group_state_to_string(v);
                size_t i = 0;

                /* "in_use" as in --json, or "in-use" as people write it. */
                while (name[i] && (s[i] == name[i] || (s[i] == '-' && name[i] == '_')))
                        i++;
                if (name[i] == 0 && s[i] == 0) {
                        *ret = v;
                        return 0;
                }
        }
        return -EINVAL;
}

static int parse_option(int opt, const char *value) {
        bool b;

        switch (opt) {
        case ARG_JSON:
                arg_json = true;
                break;
        case ARG_NO_LEGEND:
                arg_legend = false;
                break;
        case ARG_NO_PAGER:
                arg_pager = false;
                break;
        case ARG_COLOR:
                if (!value || streq(value, "always"))
                        arg_color = COLOR_ALWAYS;
                else if (streq(value, "never"))
                        arg_color = COLOR_NEVER;
                else if (streq(value, "auto"))
                        arg_color = COLOR_AUTO;
                else {
                        fprintf(stderr, "iommuctl: --color wants auto, always or never, not '%s'.\n", value);
                        return -EINVAL;
                }
                break;
        case ARG_SOCKET:
                arg_socket = value;
                break;
        case ARG_HOST:
                arg_host = value;
                break;
        case ARG_CA:
                arg_ca = value;
                break;
        case ARG_CERT:
                arg_cert = value;
                break;
        case ARG_KEY:
                arg_key = value;
                break;
        case ARG_TIMEOUT:
                if (parse_timeout(value, &arg_timeout_usec) < 0) {
                        fprintf(stderr, "iommuctl: --timeout wants seconds, such as 5 or 0.5 (or 500ms), not '%s'.\n",
                                value);
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
                arg_owner = value;
                break;
        case 'n':
                if (parse_group_id(value, &arg_limit) < 0 || arg_limit == 0) {
                        fprintf(stderr, "iommuctl: -n wants a number of entries, such as 20, not '%s'.\n", value);
                        return -EINVAL;
                }
                break;
        case ARG_GROUP:
                if (arg_n_groups >= ELEMENTSOF(arg_groups) || parse_group_id(value, &arg_groups[arg_n_groups]) < 0) {
                        fprintf(stderr, "iommuctl: --group wants a group number (at most %zu of them), not '%s'.\n",
                                ELEMENTSOF(arg_groups), value);
                        return -EINVAL;
                }
                arg_n_groups++;
                break;
        case ARG_TYPE:
                return add_filter(&arg_type, "type", value);
        case ARG_DRIVER:
                return add_filter(&arg_driver, "driver", value);
        case ARG_VENDOR:
                return add_filter(&arg_vendor, "vendor", value);
        case ARG_CLASS:
                return add_filter(&arg_class, "class", value);
        case ARG_VIABLE:
                if (value && parse_bool(value, &b) < 0) {
                        fprintf(stderr, "iommuctl: --viable takes yes or no (--viable=no), not '%s'.\n", value);
                        return -EINVAL;
                }
                arg_viable = !value || b ? IOMMUD__V1__LIST_GROUPS_REQUEST__VIABILITY__VIABILITY_VIABLE
                                         : IOMMUD__V1__LIST_GROUPS_REQUEST__VIABILITY__VIABILITY_NOT_VIABLE;
                break;
        case ARG_STATE:
                if (arg_n_states >= ELEMENTSOF(arg_states) || parse_state(value, &arg_states[arg_n_states]) < 0) {
                        fprintf(stderr,
                                "iommuctl: --state wants host, vfio_ready, in_use, blocked, transitioning or failed, "
                                "not '%s'.\n",
                                value);
                        return -EINVAL;
                }
                arg_n_states++;
                break;
        default:
                fprintf(stderr, "Try 'iommuctl --help'.\n");
                return -EINVAL;
        }
        return 0;
}

/* Returns 0 when done (--version), 1 to go on, -EINVAL on a usage error. */
static int parse_argv(int argc, char **opts) {
        int opt, index;

        optind = 0;
        while ((index = -1, opt = getopt_long(argc, opts, SHORT_OPTIONS, options, &index)) >= 0) {
                if (opt == 'h') {
                        arg_help = true;
                        continue;
                }
                if (opt == ARG_VERSION) {
                        printf("iommuctl %s\n", PACKAGE_VERSION);
                        return 0;
                }
                if (parse_option(opt, optarg) < 0)
                        return -EINVAL;
                if (index >= 0)
                        given[index] = true;
                else if (opt == 'n')
                        given_n = true;
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
                        fprintf(stderr, "iommuctl: --host wants HOST:PORT or [IPV6]:PORT, not '%s'.\n", arg_host);
                        return -EINVAL;
                }
        } else if (!arg_socket) {
                const char *e = getenv("IOMMUD_SOCKET");

                arg_socket = e && *e ? e : DEFAULT_SOCKET;
        }
        if (!arg_timeout_set)
                arg_timeout_usec = DEFAULT_TIMEOUT_USEC;
        return 1;
}

/* How to print: colour, width, glyphs and the pager, decided once from the terminal and the environment. */
static void setup_output(const Verb *v) {
        bool tty = isatty(STDOUT_FILENO);
        const char *no_color = getenv("NO_COLOR"), *term = getenv("TERM");

        if (arg_color == COLOR_AUTO)
                use_color = tty && !(no_color && *no_color) && !(term && streq(term, "dumb"));
        else
                use_color = arg_color == COLOR_ALWAYS;
        if (tty) {
                struct winsize ws;

                if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                        term_width = ws.ws_col;
        }
        use_utf8 = streq(nl_langinfo(CODESET), "UTF-8");
        use_pager = arg_pager && v->pager && tty;
}

int main(int argc, char **argv) {
        _cleanup_(freep) char **opts = calloc(argc + 1, sizeof(char *)), **positional = calloc(argc + 1, sizeof(char *));
        int n_opts, n_positional, n_args, r;
        const Verb *verb = NULL;
        const char *not_for;

        if (!opts || !positional) {
                fprintf(stderr, "iommuctl: out of memory\n");
                return EXIT_ERROR;
        }
        /* Character classes only: numbers keep the C locale's decimal point. */
        setlocale(LC_CTYPE, "");
        split_argv(argc, argv, opts, &n_opts, positional, &n_positional);
        r = parse_argv(n_opts, opts);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_OK;

        if (n_positional == 0) {
                if (arg_help) {
                        help();
                        return EXIT_OK;
                }
                verb = &verbs[0]; /* status, as systemctl and networkctl show theirs */
        } else
                FOREACH_ARRAY (v, verbs, ELEMENTSOF(verbs))
                        if (streq(v->name, positional[0]))
                                verb = v;
        if (!verb) {
                fprintf(stderr, "iommuctl: unknown verb '%s'. Try 'iommuctl --help'.\n", positional[0]);
                return EXIT_USAGE;
        }
        if (arg_help) {
                verb_help(verb);
                return EXIT_OK;
        }
        if ((not_for = option_not_for(verb))) {
                fprintf(stderr, "iommuctl: %s does not apply to '%s' (see 'iommuctl %s --help').\n", not_for,
                        verb->name, verb->name);
                return EXIT_USAGE;
        }
        n_args = n_positional > 0 ? n_positional - 1 : 0;
        if (n_args < verb->min_args || (verb->max_args >= 0 && n_args > verb->max_args)) {
                if (verb->arguments)
                        fprintf(stderr, "iommuctl: '%s' wants %s.\n", verb->name, verb->arguments);
                else
                        fprintf(stderr, "iommuctl: '%s' takes no argument.\n", verb->name);
                return EXIT_USAGE;
        }

        /* Writing into a closed pipe must end with an error from write(), not a silent death. */
        signal(SIGPIPE, SIG_IGN);
        setup_output(verb);
        return finish_output(verb->run(positional + (n_positional > 0 ? 1 : 0)));
}
