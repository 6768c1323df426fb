/* libvirt's qemu hook for iommud: before a domain starts, iommud prepares the IOMMU groups of its PCI
 * host devices for it; after it stopped, iommud releases them. Talks to iommud's gRPC socket only:
 * a hook that calls back into libvirt deadlocks libvirtd. Reads iommud.conf for the socket and for
 * what to do when iommud is not running ([LibvirtHook] OnUnreachable=). */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build-config.h"
#include "config.h"
#include "domain-xml.h"
#include "grpc-client.h"
#include "iommud.pb-c.h"
#include "macro.h"
#include "string-util.h"
#include "strv.h"

/* libvirtd waits for the hook with its locks held: every call is bounded ([LibvirtHook]
 * CallTimeoutSec=, at least the daemon's OperationTimeoutSec=), and so is the reading of the XML. */
#define MAX_XML_SIZE (16 * 1024 * 1024)
/* How often the undo of a prepare whose answer did not come looks at the group again. */
#define SETTLE_POLL_USEC (500 * 1000)

#define METHOD(name) "/iommud.v1.IommuManager/" name

DEFINE_TRIVIAL_CLEANUP_FUNC(struct event_base *, event_base_free)

typedef struct Hook {
        const char *domain; /* escaped for the terminal and the log */
        char *owner; /* "libvirt:<domain>": what iommud records as the group's owner */
        const char *socket;
        bool dry_run;
        GrpcClient *client;
        bool answered;       /* iommud answered a call: a later failure is an error, not "not running" */
        int not_running;     /* -ENOENT or -ECONNREFUSED when the first call found no iommud, else 0 */
        unsigned timeout_sec; /* per call */
} Hook;

typedef struct GroupSeen {
        unsigned id;
        const char *address; /* the first hostdev of the group, named in the requests */
        bool unanswered;     /* its PrepareGroup got no answer: iommud may still complete it */
} GroupSeen;

static void on_alarm(int signo) {
        static const char message[] = "iommud-libvirt-hook: the domain XML did not arrive in time; giving up.\n";

        (void)!write(STDERR_FILENO, message, sizeof(message) - 1);
        _exit(1);
}

/* One unary call. Returns the gRPC status (>= 0), with the server's message in *ret_error when it is
 * not OK, or -errno when iommud could not be reached. */
static int hook_call(Hook *h, const char *method, const ProtobufCMessage *request,
                     const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **ret,
                     char **ret_error) {
        _cleanup_(grpc_client_status_done) GrpcClientStatus st = {};
        int r;

        *ret_error = NULL;
        r = grpc_client_call(h->client, method, request, response_type, ret, &st);
        h->answered = h->answered || r >= 0;
        if (r < 0 || st.code != GRPC_STATUS_OK)
                *ret_error = TAKE_PTR(st.message);
        if (r < 0)
                return r;
        if (st.code != GRPC_STATUS_OK && !*ret_error)
                *ret_error = strdup(grpc_status_to_string(st.code) ?: "unknown status");
        return (int)st.code;
}

static int report_unreachable(Hook *h, int r, const char *error) {
        /* No socket, or nobody listening on it: iommud is not running. Decided in main(). */
        if (!h->answered && (r == -ENOENT || r == -ECONNREFUSED)) {
                h->not_running = r;
                return -1;
        }
        _cleanup_(freep) char *e = str_escape_terminal(error ?: strerror(-r));
        fprintf(stderr, "iommud-libvirt-hook: domain '%s': cannot reach iommud at %s: %s\n", h->domain,
                h->socket, e ?: "?");
        return -1;
}

/* The group of a PCI device; 0 with *ret_group -1 when iommud does not know the device. */
static int device_group(Hook *h, const char *address, int *ret_group, char **ret_error) {
        Iommud__V1__GetDeviceRequest req = IOMMUD__V1__GET_DEVICE_REQUEST__INIT;
        Iommud__V1__Device *dev = NULL;
        int r;

        req.address = (char *)address;
        r = hook_call(h, METHOD("GetDevice"), &req.base, &iommud__v1__device__descriptor,
                      (ProtobufCMessage **)&dev, ret_error);
        if (r < 0)
                return r;
        *ret_group = r == GRPC_STATUS_OK ? dev->group : -1;
        if (dev)
                protobuf_c_message_free_unpacked(&dev->base, NULL);
        return r;
}

static int group_get(Hook *h, unsigned id, Iommud__V1__Group **ret, char **ret_error) {
        Iommud__V1__GetGroupRequest req = IOMMUD__V1__GET_GROUP_REQUEST__INIT;

        req.id = id;
        return hook_call(h, METHOD("GetGroup"), &req.base, &iommud__v1__group__descriptor,
                         (ProtobufCMessage **)ret, ret_error);
}

static const char *group_owner(const Iommud__V1__Group *g) {
        return g->owner && g->owner->client ? g->owner->client : "";
}

/* The groups of the hostdevs, each once. A device iommud does not know stops a start (the domain
 * would fail later, with a worse message); on release it is skipped: the device may be gone. */
static int collect_groups(Hook *h, char **addresses, bool unknown_is_error, GroupSeen **ret, size_t *ret_n) {
        _cleanup_(freep) GroupSeen *groups = calloc(strv_length(addresses) + 1, sizeof(GroupSeen));
        size_t n = 0;

        if (!groups)
                return -ENOMEM;
        for (char **a = addresses; *a; a++) {
                _cleanup_(freep) char *error = NULL;
                bool seen = false;
                int group, r;

                r = device_group(h, *a, &group, &error);
                if (r < 0)
                        return report_unreachable(h, r, error);
                if (r != GRPC_STATUS_OK || group < 0) {
                        _cleanup_(freep) char *e = str_escape_terminal(error ?: "the device is in no IOMMU group");
                        fprintf(stderr, "iommud-libvirt-hook: domain '%s': hostdev %s: %s\n", h->domain, *a,
                                e ?: "?");
                        if (unknown_is_error)
                                return -1;
                        continue;
                }
                for (size_t i = 0; i < n; i++)
                        seen = seen || groups[i].id == (unsigned)group;
                if (!seen)
                        groups[n++] = (GroupSeen){.id = (unsigned)group, .address = *a};
        }
        *ret = TAKE_PTR(groups);
        *ret_n = n;
        return 0;
}

static void print_steps(const Iommud__V1__OperationResult *res, const char *what, unsigned group) {
        printf("%s group %u%s\n", what, group, res->dry_run ? " (dry run)" : "");
        for (size_t i = 0; i < res->n_steps; i++) {
                _cleanup_(freep) char *step = str_escape_terminal(res->steps[i]);
                printf("  %s\n", step ?: "?");
        }
}

static int release_group(Hook *h, const GroupSeen *g) {
        Iommud__V1__ReleaseGroupRequest req = IOMMUD__V1__RELEASE_GROUP_REQUEST__INIT;
        Iommud__V1__OperationResult *res = NULL;
        _cleanup_(freep) char *error = NULL;
        int r;

        /* libvirt announces the stop only after this hook: iommud still sees the domain running, and
         * lets the release through because the group was prepared for it and QEMU let go of it. */
        req.device = (char *)g->address;
        req.dry_run = h->dry_run;
        r = hook_call(h, METHOD("ReleaseGroup"), &req.base, &iommud__v1__operation_result__descriptor,
                      (ProtobufCMessage **)&res, &error);
        if (r < 0)
                return report_unreachable(h, r, error);
        if (r != GRPC_STATUS_OK) {
                _cleanup_(freep) char *e = str_escape_terminal(error);
                fprintf(stderr, "iommud-libvirt-hook: domain '%s': cannot release group %u: %s\n", h->domain,
                        g->id, e ?: "?");
                return -1;
        }
        print_steps(res, "released", g->id);
        protobuf_c_message_free_unpacked(&res->base, NULL);
        return 0;
}

/* A prepare whose answer did not come: waits (at most one call timeout) until iommud is done with
 * the group, and says whether it ended prepared for this domain (then the caller releases it). */
static bool settled_ours(Hook *h, const GroupSeen *g) {
        uint64_t waited = 0;

        for (;;) {
                _cleanup_(freep) char *error = NULL;
                Iommud__V1__Group *group = NULL;
                int r = group_get(h, g->id, &group, &error);

                if (r == GRPC_STATUS_OK) {
                        bool busy = group->state == IOMMUD__V1__GROUP_STATE__GROUP_STATE_TRANSITIONING;
                        bool ours = streq(group_owner(group), h->owner);

                        protobuf_c_message_free_unpacked(&group->base, NULL);
                        if (!busy) {
                                if (ours)
                                        fprintf(stderr,
                                                "iommud-libvirt-hook: domain '%s': group %u was prepared after "
                                                "all; releasing it\n",
                                                h->domain, g->id);
                                return ours;
                        }
                } else if (r > 0)
                        return false; /* iommud answered, and knows no such group (any more) */
                if (waited >= (uint64_t)h->timeout_sec * 1000000) {
                        fprintf(stderr,
                                "iommud-libvirt-hook: domain '%s': group %u is still changing after %u s; "
                                "release it with 'iommuctl release %u' once it is prepared\n",
                                h->domain, g->id, h->timeout_sec, g->id);
                        return false;
                }
                usleep(SETTLE_POLL_USEC);
                waited += SETTLE_POLL_USEC;
        }
}

/* "prepare begin": every group not yet prepared for this domain. Groups prepared by hand stay as
 * they are. On a refusal the groups prepared so far are given back and the start fails. */
static int hook_prepare(Hook *h, char **addresses) {
        _cleanup_(freep) GroupSeen *groups = NULL, *prepared = NULL;
        size_t n_groups = 0, n_prepared = 0;
        int r;

        r = collect_groups(h, addresses, true, &groups, &n_groups);
        if (r < 0)
                return r;
        prepared = calloc(n_groups + 1, sizeof(GroupSeen));
        if (!prepared)
                return -ENOMEM;

        for (size_t i = 0; i < n_groups; i++) {
                Iommud__V1__PrepareGroupRequest req = IOMMUD__V1__PREPARE_GROUP_REQUEST__INIT;
                Iommud__V1__OperationResult *res = NULL;
                Iommud__V1__Group *g = NULL;
                _cleanup_(freep) char *error = NULL;

                r = group_get(h, groups[i].id, &g, &error);
                if (r < 0)
                        return report_unreachable(h, r, error);
                if (r == GRPC_STATUS_OK) {
                        Iommud__V1__GroupState state = g->state;
                        bool ours = streq(group_owner(g), h->owner);
                        _cleanup_(freep) char *owner = str_escape_terminal(group_owner(g)),
                                              *user = g->owner && g->owner->domain_name
                                                              ? str_escape_terminal(g->owner->domain_name)
                                                              : NULL;

                        protobuf_c_message_free_unpacked(&g->base, NULL);
                        if (!owner)
                                return -ENOMEM;
                        if (ours)
                                continue; /* ours already: a restart of this hook, or the same group twice */
                        if (state == IOMMUD__V1__GROUP_STATE__GROUP_STATE_IN_USE) {
                                fprintf(stderr,
                                        "iommud-libvirt-hook: domain '%s': group %u is in use by libvirt "
                                        "domain '%s'\n",
                                        h->domain, groups[i].id, user ?: "?");
                                r = -1;
                                break;
                        }
                        if (state == IOMMUD__V1__GROUP_STATE__GROUP_STATE_VFIO_READY) {
                                fprintf(stderr,
                                        "iommud-libvirt-hook: domain '%s': group %u was prepared by "
                                        "hand%s%s%s; "
                                        "leaving it as it is\n",
                                        h->domain, groups[i].id, *owner ? " (owner '" : "", owner,
                                        *owner ? "')" : "");
                                continue;
                        }
                }
                free(TAKE_PTR(error));

                req.device = (char *)groups[i].address;
                req.owner = h->owner;
                req.dry_run = h->dry_run;
                r = hook_call(h, METHOD("PrepareGroup"), &req.base,
                              &iommud__v1__operation_result__descriptor, (ProtobufCMessage **)&res, &error);
                if (r < 0 && h->answered) {
                        /* The request went out and no answer came back (our deadline, a lost
                         * connection): iommud may still complete the prepare. The undo below waits
                         * for the group to settle and releases it if it became ours. */
                        report_unreachable(h, r, error);
                        prepared[n_prepared] = groups[i];
                        prepared[n_prepared++].unanswered = true;
                        r = -1;
                        break;
                }
                if (r < 0)
                        return report_unreachable(h, r, error);
                if (r != GRPC_STATUS_OK) {
                        _cleanup_(freep) char *e = str_escape_terminal(error);
                        fprintf(stderr, "iommud-libvirt-hook: domain '%s': cannot prepare group %u: %s\n",
                                h->domain, groups[i].id, e ?: "?");
                        r = -1;
                        break;
                }
                print_steps(res, "prepared", groups[i].id);
                protobuf_c_message_free_unpacked(&res->base, NULL);
                prepared[n_prepared++] = groups[i];
        }
        if (r >= 0)
                return 0;
        /* libvirt does not always run "release end" after a failed start: undo here. */
        for (size_t i = 0; i < n_prepared; i++)
                if (!prepared[i].unanswered || settled_ours(h, &prepared[i]))
                        (void)release_group(h, &prepared[i]);
        return -1;
}

/* "release end": only the groups iommud holds for this domain. */
static int hook_release(Hook *h, char **addresses) {
        _cleanup_(freep) GroupSeen *groups = NULL;
        size_t n_groups = 0;
        int r, ret = 0;

        r = collect_groups(h, addresses, false, &groups, &n_groups);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_groups; i++) {
                Iommud__V1__Group *g = NULL;
                _cleanup_(freep) char *error = NULL;
                bool ours;

                r = group_get(h, groups[i].id, &g, &error);
                if (r < 0)
                        return report_unreachable(h, r, error);
                if (r != GRPC_STATUS_OK)
                        continue;
                ours = streq(group_owner(g), h->owner);
                protobuf_c_message_free_unpacked(&g->base, NULL);
                if (ours && release_group(h, &groups[i]) < 0)
                        ret = -1;
        }
        return ret;
}

static int read_all(FILE *f, char **ret, size_t *ret_size) {
        _cleanup_(freep) char *buf = NULL;
        size_t size = 0, allocated = 0;

        for (;;) {
                size_t k;

                if (size == allocated) {
                        char *p;

                        if (allocated >= MAX_XML_SIZE)
                                return -EFBIG;
                        allocated = allocated ? allocated * 2 : 64 * 1024;
                        p = realloc(buf, allocated + 1);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                }
                k = fread(buf + size, 1, allocated - size, f);
                size += k;
                if (k == 0) {
                        if (ferror(f))
                                return -EIO;
                        break;
                }
        }
        buf[size] = 0;
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

/* iommud was not running when the hook started ([LibvirtHook] OnUnreachable=). Groups it never
 * prepared are left as they are: libvirt then binds managed='yes' devices itself, and a
 * managed='no' device must already be on vfio-pci. */
static int iommud_not_running(const Hook *h, bool prepare, HookUnreachable setting) {
        const char *why = strerror(-h->not_running);

        if (!prepare) {
                fprintf(stderr,
                        "iommud-libvirt-hook: domain '%s': iommud is not running (%s: %s); groups it prepared "
                        "for the domain stay with vfio-pci until they are released through iommud\n",
                        h->domain, h->socket, why);
                return 0;
        }
        if (setting == HOOK_UNREACHABLE_FAIL) {
                fprintf(stderr,
                        "iommud-libvirt-hook: domain '%s': iommud is not running (%s: %s); not starting the "
                        "domain ([LibvirtHook] OnUnreachable=fail)\n",
                        h->domain, h->socket, why);
                return 1;
        }
        fprintf(stderr,
                "iommud-libvirt-hook: domain '%s': iommud is not running (%s: %s); the domain starts with "
                "its host devices as they are ([LibvirtHook] OnUnreachable=start)\n",
                h->domain, h->socket, why);
        return 0;
}

static unsigned env_unsigned(const char *name, unsigned fallback) {
        const char *v = getenv(name);
        char *end;
        unsigned long u;

        if (!v || !*v)
                return fallback;
        u = strtoul(v, &end, 10);
        return *end == 0 && u > 0 && u < 24 * 3600 ? (unsigned)u : fallback;
}

int main(int argc, char *argv[]) {
        _cleanup_(event_base_freep) struct event_base *base = NULL;
        _cleanup_(grpc_client_freep) GrpcClient *client = NULL;
        _cleanup_(freep) char *xml = NULL, *owner = NULL, *message = NULL, *domain = NULL;
        _cleanup_(domain_xml_done) DomainXml parsed = {};
        _cleanup_(config_done) Config config = {};
        const char *config_file = getenv("IOMMUD_CONFIG_FILE") ?: IOMMUD_CONFIG_FILE;
        unsigned timeout_sec;
        bool prepare, release;
        size_t size;
        Hook h;
        int r;

        if (argc < 4) {
                fprintf(stderr,
                        "Usage: %s DOMAIN OPERATION SUB-OPERATION [EXTRA]\n"
                        "libvirt runs this from /etc/libvirt/hooks/qemu.d/ with the domain XML on stdin.\n",
                        argv[0]);
                return 2;
        }
        prepare = streq(argv[2], "prepare") && streq(argv[3], "begin");
        release = streq(argv[2], "release") && streq(argv[3], "end");
        if (!prepare && !release)
                return 0;
        /* The name is libvirt's, and may hold anything a terminal would act on. */
        domain = str_escape_terminal(argv[1]);
        if (!domain)
                return 1;

        r = config_init_defaults(&config);
        if (r < 0)
                return 1;

        /* Every call is bounded on its own; only the XML on stdin needs a guard of its own. */
        signal(SIGALRM, on_alarm);
        alarm(env_unsigned("IOMMUD_HOOK_TIMEOUT_SEC", config.hook_call_timeout_sec));
        r = read_all(stdin, &xml, &size);
        alarm(0);
        if (r < 0) {
                fprintf(stderr,
                        "iommud-libvirt-hook: domain '%s': cannot read the domain XML on stdin: %s\n",
                        domain, strerror(-r));
                return 1;
        }
        r = domain_xml_parse(xml, size, &parsed, &message);
        if (r < 0) {
                _cleanup_(freep) char *e = str_escape_terminal(message ?: strerror(-r));
                fprintf(stderr, "iommud-libvirt-hook: domain '%s': %s\n", domain, e ?: "?");
                return 1;
        }
        if (!parsed.addresses[0])
                return 0; /* no PCI host devices: nothing for iommud */

        /* The daemon's own settings file, read by the daemon's own parser (problems are on stderr). */
        r = config_load_file(&config, config_file, false);
        if (r < 0) {
                fprintf(stderr, "iommud-libvirt-hook: domain '%s': cannot use %s (see above)\n", domain,
                        config_file);
                return 1;
        }
        timeout_sec = env_unsigned("IOMMUD_HOOK_TIMEOUT_SEC", config.hook_call_timeout_sec);

        h = (Hook){
                .domain = domain,
                .timeout_sec = timeout_sec,
                .socket = getenv("IOMMUD_SOCKET") ?: config.unix_socket,
                .dry_run = getenv("IOMMUD_HOOK_DRY_RUN") && streq(getenv("IOMMUD_HOOK_DRY_RUN"), "1"),
        };
        if (!h.socket) {
                fprintf(stderr, "iommud-libvirt-hook: domain '%s': %s sets no Unix socket ([Listen] Unix=)\n",
                        domain, config_file);
                return 1;
        }

        owner = strprintf("libvirt:%s", argv[1]);
        base = event_base_new();
        if (!owner || !base)
                return 1;
        r = grpc_client_new(base,
                            &(GrpcClientOptions){
                                    .unix_path = h.socket,
                                    .timeout_usec = (uint64_t)timeout_sec * 1000000,
                            },
                            &client);
        if (r < 0) {
                fprintf(stderr, "iommud-libvirt-hook: cannot set up the gRPC client: %s\n", strerror(-r));
                return 1;
        }
        h.owner = owner;
        h.client = client;
        r = prepare ? hook_prepare(&h, parsed.addresses) : hook_release(&h, parsed.addresses);
        if (h.not_running)
                return iommud_not_running(&h, prepare, config.hook_on_unreachable);
        if (r == -ENOMEM)
                fprintf(stderr, "iommud-libvirt-hook: out of memory\n");
        return r < 0 ? 1 : 0;
}
