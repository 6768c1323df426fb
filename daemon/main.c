/* iommud's entry point: settings from file and flags, then --dump or the daemon on one event loop. */
#include <dlfcn.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <json-c/json.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "authorize.h"
#include "build-config.h"
#include "bus-server.h"
#include "config.h"
#include "group-cache.h"
#include "grpc-metrics.h"
#include "grpc-server.h"
#include "inventory.h"
#include "log-ids.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "metrics-server.h"
#include "operations.h"
#include "string-util.h"
#include "roots.h"
#include "svc-config.h"
#include "svc-manager.h"
#include "svc-dump.h"
#include "virt-module.h"

#define DEFAULT_CONFIG_FILE IOMMUD_CONFIG_FILE
#define SHUTDOWN_DRAIN_MS 5000

typedef struct Arguments {
        bool dump;
        bool compact;
        const char *config_file; /* NULL: the default, which may be missing */
        int argc;
        char **argv; /* kept to re-apply the flags on top of a reloaded file */
} Arguments;

typedef struct Daemon {
        Arguments *args;
        Config config;
        struct event_base *base;
        Manager *manager;
        Operations *operations;
        GrpcServer *grpc;
        SvcManager *svc;
        BusServer *dbus;
        struct event *dbus_retry; /* the system bus refused us: try again (start_dbus) */
        unsigned dbus_retry_sec;
        void *virt_handle; /* the loaded virt module (dlopen) */
        const VirtModule *virt_module;
        VirtTracker *virt;
        MetricsServer *metrics;
        GroupCache *groups;
        struct event *sigterm, *sigint, *sighup, *sigusr1;
        struct event *watchdog;
        bool stopping;
} Daemon;

enum {
        ARG_DUMP = 0x100,
        ARG_ROOT,
        ARG_CONFIG,
        ARG_COMPACT,
        ARG_DEBUG,
        ARG_VERSION,
        ARG_BUS_INTROSPECT,
        ARG_CONFIG_OPTION, /* + index into config_options() */
};

static void help(void) {
        const ConfigOption *options;
        size_t n;

        printf("Usage: iommud [OPTIONS]          run the daemon\n"
               "       iommud --dump [OPTIONS]   print the host's IOMMU inventory as JSON and exit\n"
               "\n"
               "IOMMU management daemon: discovers IOMMU units, groups and devices, keeps them current\n"
               "from udev events, and serves them over gRPC (Unix socket, TLS with client certificates).\n"
               "\n"
               "  --dump                 Print the inventory as JSON and exit\n"
               "  --compact              With --dump: one line of JSON\n"
               "  --root DIR             Read DIR/sys, DIR/proc and DIR/dev (a captured snapshot or\n"
               "                         fixture tree): the three --*-root options at once\n"
               "  --config FILE          Settings file (default %s)\n"
               "  --debug                Log debug messages\n"
               "  --bus-introspect       Print the D-Bus interfaces as introspection XML and exit\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "\n"
               "Every setting of the file is also a flag, and flags win:\n",
               DEFAULT_CONFIG_FILE);

        options = config_options(&n);
        for (size_t i = 0; i < n; i++) {
                char left[64];

                snprintf(left, sizeof(left), "--%s=%s", options[i].flag, options[i].value_name);
                printf("  %-30s [%s] %s=: %s\n", left, options[i].section, options[i].key, options[i].help);
        }
        printf("\nExit status: 0 success, 1 failure (the message says why), 2 usage error.\n"
               "Signals: SIGTERM drains and exits, SIGHUP reloads the settings, SIGUSR1 rescans the host.\n");
}

/* getopt's table: the fixed options, then one per config option. */
static struct option *build_long_options(void) {
        static const struct option fixed[] = {
                { "dump", no_argument, NULL, ARG_DUMP },
                { "root", required_argument, NULL, ARG_ROOT },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "compact", no_argument, NULL, ARG_COMPACT },
                { "debug", no_argument, NULL, ARG_DEBUG },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "bus-introspect", no_argument, NULL, ARG_BUS_INTROSPECT },
        };
        const ConfigOption *options;
        struct option *all;
        size_t n;

        options = config_options(&n);
        all = calloc(ELEMENTSOF(fixed) + n + 1, sizeof(struct option));
        if (!all)
                return NULL;
        memcpy(all, fixed, sizeof(fixed));
        for (size_t i = 0; i < n; i++)
                all[ELEMENTSOF(fixed) + i] = (struct option){ options[i].flag, required_argument, NULL,
                                                              ARG_CONFIG_OPTION + (int)i };
        return all;
}

/* First pass: modes and --config; the settings flags are applied by apply_flags() after the file. */
static int parse_argv(int argc, char *argv[], Arguments *args) {
        _cleanup_(freep) struct option *long_options = build_long_options();
        int c;

        if (!long_options)
                return log_oom();
        args->argc = argc;
        args->argv = argv;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", long_options, NULL)) >= 0) {
                switch (c) {
                case ARG_DUMP:
                        args->dump = true;
                        break;
                case ARG_CONFIG:
                        args->config_file = optarg;
                        break;
                case ARG_COMPACT:
                        args->compact = true;
                        break;
                case ARG_DEBUG:
                        log_set_max_level(LOG_DEBUG);
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("iommud %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_BUS_INTROSPECT:
                        if (bus_server_print_introspection(stdout) < 0)
                                return log_error_errno(EIO, "Failed to write the introspection XML: %m");
                        return 0;
                case '?':
                        fprintf(stderr, "Try 'iommud --help'.\n");
                        return -EINVAL;
                default:
                        break;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "iommud: unexpected argument '%s'. Try 'iommud --help'.\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

/* Flags may name files relative to the working directory; the settings hold absolute paths. */
static char *absolute_path(const char *path) {
        _cleanup_(freep) char *cwd = NULL;
        char *p;

        if (path[0] == '/' || path[0] == 0)
                return strdup(path);
        cwd = getcwd(NULL, 0);
        if (!cwd || asprintf(&p, "%s/%s", cwd, path) < 0)
                return NULL;
        return p;
}

static bool is_path_value(const char *value_name) {
        return strcmp(value_name, "DIR") == 0 || strcmp(value_name, "FILE") == 0 || strcmp(value_name, "PATH") == 0;
}

static int apply_flags(const Arguments *args, Config *config) {
        _cleanup_(freep) struct option *long_options = build_long_options();
        const ConfigOption *options;
        size_t n;
        int c, r;

        if (!long_options)
                return log_oom();
        options = config_options(&n);

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(args->argc, args->argv, "h", long_options, NULL)) >= 0) {
                char origin[64];

                _cleanup_(freep) char *path = NULL;

                if (c == ARG_ROOT) {
                        static const char *const keys[] = { "SysfsRoot", "ProcRoot", "DevRoot" };

                        path = absolute_path(optarg);
                        if (!path)
                                return log_oom();
                        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                                r = config_set(config, "Daemon", keys[i], path, "--root");
                                if (r < 0)
                                        return r;
                        }
                        continue;
                }
                if (c < ARG_CONFIG_OPTION || (size_t)(c - ARG_CONFIG_OPTION) >= n)
                        continue;
                const ConfigOption *o = &options[c - ARG_CONFIG_OPTION];

                if (is_path_value(o->value_name)) {
                        path = absolute_path(optarg);
                        if (!path)
                                return log_oom();
                }
                snprintf(origin, sizeof(origin), "--%s", o->flag);
                r = config_set(config, o->section, o->key, path ?: optarg, origin);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Defaults, then the file, then the flags; checked as a whole. */
static int load_config(const Arguments *args, Config *ret) {
        Config c = {};
        int r;

        r = config_init_defaults(&c);
        if (r >= 0)
                r = config_load_file(&c, args->config_file ?: DEFAULT_CONFIG_FILE, args->config_file != NULL);
        if (r >= 0)
                r = apply_flags(args, &c);
        if (r >= 0)
                r = config_verify(&c);
        if (r < 0) {
                config_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}

static int run_dump(const Arguments *args, const Config *config) {
        _cleanup_(host_roots_freep) HostRoots *roots = NULL;
        _cleanup_(inventory_freep) Inventory *inv = NULL;
        int r;

        /* Tens of MB on a large host: written 64 KiB at a time rather than the file's block size. */
        static char out_buffer[64 * 1024];
        (void)setvbuf(stdout, out_buffer, _IOFBF, sizeof(out_buffer));

        r = host_roots_open(config->sysfs_root, config->proc_root, config->dev_root, &roots);
        if (r < 0)
                return r;

        r = inventory_load(roots, config->pci_ids, &inv);
        if (r < 0)
                return log_error_errno(r, "Failed to read the host inventory: %m");

        if (inv->n_errors > 0)
                log_warning("%zu problem%s while reading the host; see the \"errors\" lists in the output.",
                            inv->n_errors, inv->n_errors == 1 ? "" : "s");

        /* The API's messages through the one JSON mapping iommuctl uses too. */
        r = inventory_dump(inv, stdout, args->compact);
        if (r == -ENOMEM)
                return log_oom();

        if (fflush(stdout) != 0 || ferror(stdout))
                return log_error_errno(errno ?: EIO, "Failed to write the dump: %m");
        return 0;
}

/* ---- the daemon ---------------------------------------------------------------------------------- */

static Peer peer_from_grpc(const GrpcPeer *gp) {
        return (Peer){
                .kind = gp->kind == GRPC_PEER_UNIX  ? PEER_UNIX
                        : gp->kind == GRPC_PEER_TLS ? PEER_TLS
                                                    : PEER_LOCAL_INSECURE,
                .uid = gp->uid,
                .gid = gp->gid,
                .pid = gp->pid,
                .subject = gp->subject,
                .common_name = gp->common_name,
                .san_dns = gp->san_dns,
                .n_san_dns = gp->n_san_dns,
                .san_uri = gp->san_uri,
                .n_san_uri = gp->n_san_uri,
        };
}

static GrpcRole on_authorize(const GrpcPeer *gp, void *userdata) {
        Daemon *d = userdata;
        Peer peer = peer_from_grpc(gp);

        /* Groups not known yet (a lookup is under way) simply do not match: unknown never grants. */
        (void)group_cache_fill(d->groups, &peer);
        switch (authorize_peer(&d->config, &peer)) {
        case ROLE_ADMIN:
                return GRPC_ROLE_ADMIN;
        case ROLE_OPERATOR:
                return GRPC_ROLE_OPERATOR;
        case ROLE_READER:
                return GRPC_ROLE_READER;
        default:
                return GRPC_ROLE_NONE;
        }
}

/* A new Unix connection waits (reading nothing) while its uid's groups are looked up, when a
 * group principal could give it a role; otherwise the lookup only warms the cache. */
static int on_resolve(const GrpcPeer *gp, void *userdata) {
        Daemon *d = userdata;
        Peer peer = peer_from_grpc(gp);

        return group_cache_fill(d->groups, &peer) > 0 && authorize_needs_groups(&d->config) ? 1 : 0;
}

static void on_groups_changed(void *userdata) {
        Daemon *d = userdata;

        if (d->grpc)
                grpc_server_peers_resolved(d->grpc);
        if (d->dbus)
                bus_server_groups_changed(d->dbus);
}

/* A denied gRPC call gets core's message, which names who holds the role it needs. */
static char *on_denial(const GrpcPeer *gp, const char *path, GrpcRole needed, void *userdata) {
        static const Role roles[] = {
                [GRPC_ROLE_NONE] = ROLE_NONE,
                [GRPC_ROLE_READER] = ROLE_READER,
                [GRPC_ROLE_OPERATOR] = ROLE_OPERATOR,
                [GRPC_ROLE_ADMIN] = ROLE_ADMIN,
        };
        const char *method = strrchr(path, '/');
        Daemon *d = userdata;
        Peer peer = peer_from_grpc(gp);
        char *message = NULL;

        if ((unsigned)needed >= ELEMENTSOF(roles))
                return NULL;
        (void)authorize_action(&d->config, &peer, method ? method + 1 : path, roles[needed], &message);
        return message;
}

static void update_status(Daemon *d) {
        const Inventory *inv = manager_get_inventory(d->manager);

        (void)sd_notifyf(false, "STATUS=Serving %zu IOMMU groups, %zu PCI devices; %u connections.", inv->n_groups,
                         inv->n_devices, grpc_server_n_connections(d->grpc));
}

static void on_shutdown_done(GrpcServer *s, void *userdata) {
        Daemon *d = userdata;

        event_base_loopexit(d->base, NULL);
}

static void on_sigterm(evutil_socket_t fd, short what, void *userdata) {
        Daemon *d = userdata;

        if (d->stopping) {
                log_notice("Second termination signal: exiting now.");
                event_base_loopbreak(d->base);
                return;
        }
        d->stopping = true;
        log_event(LOG_INFO, ((LogFields){ .message_id = LOG_ID_STOPPING }), "Stopping: draining %u connections.",
                  grpc_server_n_connections(d->grpc));
        (void)sd_notify(false, "STOPPING=1\nSTATUS=Draining connections.");
        svc_manager_end_watches(d->svc);
        if (grpc_server_shutdown(d->grpc, SHUTDOWN_DRAIN_MS, on_shutdown_done, d) < 0)
                event_base_loopexit(d->base, NULL);
}

/* SIGHUP and the D-Bus Reload method. */
static int reload_settings(void *userdata) {
        Daemon *d = userdata;
        Config new;
        int r;

        (void)sd_notify(false, "RELOADING=1");
        r = load_config(d->args, &new);
        if (r < 0) {
                log_error("Reloading the settings failed; keeping the current ones.");
                (void)sd_notify(false, "READY=1");
                return r;
        }
        /* Certificates, keys, CAs and CRLs are read again for new connections; established ones keep
         * theirs. Files that do not load keep every old setting, like a bad settings file. */
        GrpcTlsConfig tls;
        svc_grpc_tls(&new, &tls);
        if (tls.cert_file && tls.key_file && tls.client_ca_file) {
                r = grpc_server_reload_tls(d->grpc, &tls);
                if (r < 0) {
                        log_error_errno(r, "Reloading the TLS files failed; keeping the current settings: %m");
                        config_done(&new);
                        (void)sd_notify(false, "READY=1");
                        return r;
                }
        }
        /* Roles and limits take effect per call; listeners and roots need a restart. */
        if (strcmp(new.sysfs_root, d->config.sysfs_root) != 0 ||
            strcmp(new.proc_root, d->config.proc_root) != 0 || strcmp(new.dev_root, d->config.dev_root) != 0)
                log_notice("Roots changed in the settings; they take effect at the next start.");
        config_done(&d->config);
        d->config = new;
        GrpcLimits limits;
        svc_grpc_limits(&d->config.limits, &limits);
        grpc_server_set_limits(d->grpc, &limits);
        grpc_server_peers_resolved(d->grpc);
        /* Memberships may have changed with the settings; the old answers serve until then. */
        group_cache_set_interval(d->groups, d->config.group_refresh_sec);
        group_cache_refresh(d->groups);
        svc_manager_recheck_watches(d->svc, on_authorize, d);
        log_event(LOG_INFO, ((LogFields){ .message_id = LOG_ID_RELOADED }), "Settings reloaded.");
        if (operations_reload_policy(d->operations) >= 0)
                (void)operations_apply_policy(d->operations, -1, false, NULL, NULL, NULL);
        (void)sd_notify(false, "READY=1");
        return 0;
}

static void on_sighup(evutil_socket_t fd, short what, void *userdata) {
        (void)reload_settings(userdata);
}

static void on_sigusr1(evutil_socket_t fd, short what, void *userdata) {
        Daemon *d = userdata;
        unsigned n;

        if (manager_rescan(d->manager, &n) >= 0)
                log_info("Rescan on SIGUSR1: %u changes.", n);
        update_status(d);
}

static void on_watchdog(evutil_socket_t fd, short what, void *userdata) {
        (void)sd_notify(false, "WATCHDOG=1");
}

static int add_signal(Daemon *d, int signo, event_callback_fn cb, struct event **ret) {
        *ret = evsignal_new(d->base, signo, cb, d);
        if (!*ret || event_add(*ret, NULL) < 0)
                return log_oom();
        return 0;
}

static int start_listeners(Daemon *d) {
        int n_fds, r;

        /* Socket activation: systemd hands us the listening sockets. */
        n_fds = sd_listen_fds(true);
        if (n_fds < 0)
                return log_error_errno(n_fds, "Failed to take the sockets systemd passed: %m");
        for (int i = 0; i < n_fds; i++) {
                r = grpc_server_listen_fd(d->grpc, SD_LISTEN_FDS_START + i);
                if (r < 0)
                        return log_error_errno(r, "Failed to serve on socket %d from systemd: %m", i);
        }

        if (n_fds == 0 && d->config.unix_socket) {
                _cleanup_(freep) char *dir = strdup(d->config.unix_socket);
                char *slash = dir ? strrchr(dir, '/') : NULL;

                if (slash && slash != dir) {
                        *slash = 0;
                        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                                return log_error_errno(errno, "Failed to create %s for the socket: %m", dir);
                }
                r = grpc_server_listen_unix(d->grpc, d->config.unix_socket, d->config.unix_mode);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on %s: %m", d->config.unix_socket);
                log_info("Listening on %s.", d->config.unix_socket);
        }

        for (char **a = d->config.tls_listen; a && *a; a++) {
                GrpcTlsConfig tls;
                uint16_t port;

                svc_grpc_tls(&d->config, &tls);

                r = grpc_server_listen_tls(d->grpc, *a, &tls, &port);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen with TLS on %s: %m", *a);
                log_info("Listening with TLS on %s (port %u).", *a, port);
        }

        if (d->config.insecure_tcp) {
                uint16_t port;

                r = grpc_server_listen_tcp_insecure(d->grpc, d->config.insecure_tcp, &port);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on %s: %m", d->config.insecure_tcp);
                log_warning("Listening WITHOUT TLS on %s (port %u): loopback only, for tests.", d->config.insecure_tcp,
                            port);
        }
        return 0;
}

/* Recovers what a crash left half done, before any client is served. */
static int start_operations(Daemon *d) {
        _cleanup_(freep) char *journal_dir = strprintf("%s/journal", d->config.runtime_directory);
        const char *fault = getenv("IOMMUD_FAULT_AFTER_STEP");
        OperationsOptions options = {
                .policy_dir = d->config.policy_directory,
                .journal_dir = journal_dir,
                .state_dir = d->config.state_directory,
                .timeout_sec = d->config.limits.operation_timeout_sec,
                .kernel_write_timeout_sec = d->config.limits.kernel_write_timeout_sec,
                .max_queued = d->config.limits.max_queued_operations,
                /* Test hook for crash recovery: the daemon kills itself after that step. */
                .fault_after_step = fault ? (unsigned)atoi(fault) : 0,
        };

        if (!journal_dir)
                return log_oom();
        return operations_new(d->base, d->manager, &options, &d->operations);
}

static void on_dbus_retry(evutil_socket_t fd, short what, void *userdata);

/* DBus= unset means "the system bus if it is there": a host without dbus-daemon still gets gRPC,
 * and iommud keeps trying, so that a bus that comes up later, or a bus policy that dbus-daemon
 * loads only after the package's postinst started iommud, still gets org.iommud1. A bus named
 * explicitly must work. */
static int start_dbus(Daemon *d) {
        const char *bus = d->config.dbus ?: "system";
        int r;

        if (strcmp(bus, "none") == 0)
                return 0;
        r = bus_server_new(d->base, d->manager, d->operations, &d->config, d->groups, bus, reload_settings, d,
                           &d->dbus);
        if (r < 0 && !d->config.dbus) {
                struct timeval tv = {.tv_sec = d->dbus_retry_sec ?: 1};

                if (!d->dbus_retry_sec)
                        log_warning_errno(r, "Cannot serve on the system D-Bus yet, serving gRPC and trying again: %m");
                /* Then after 1, 2, 4, ... and every 30 s. */
                d->dbus_retry_sec = d->dbus_retry_sec ? d->dbus_retry_sec * 2 : 2;
                if (d->dbus_retry_sec > 30)
                        d->dbus_retry_sec = 30;
                if (!d->dbus_retry) {
                        d->dbus_retry = evtimer_new(d->base, on_dbus_retry, d);
                        if (!d->dbus_retry)
                                return log_oom();
                }
                if (evtimer_add(d->dbus_retry, &tv) < 0)
                        return log_oom();
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to serve on D-Bus (%s): %m", bus);
        log_info("Serving org.iommud1 on the %s bus.", bus);
        return 0;
}

static void on_dbus_retry(evutil_socket_t fd, short what, void *userdata) {
        Daemon *d = userdata;

        if (start_dbus(d) < 0)
                log_warning("Giving up on the system D-Bus; gRPC goes on.");
}

/* Opt-in: without [Metrics] Listen= nothing listens. */
static int start_metrics(Daemon *d) {
        uint16_t port;
        int r;

        if (!d->config.metrics_listen)
                return 0;
        r = metrics_server_new(d->base, d->manager, d->operations, &d->metrics);
        if (r >= 0)
                r = metrics_server_add_collector(d->metrics, grpc_metrics_collect, d->grpc);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the metrics endpoint: %m");
        r = metrics_server_listen(d->metrics, d->config.metrics_listen, &port);
        if (r < 0)
                return log_error_errno(r, "Failed to serve metrics on %s: %m", d->config.metrics_listen);
        log_info("Serving Prometheus metrics on %s (port %u) at /metrics.", d->config.metrics_listen, port);
        return 0;
}

/* core asks which guest uses a group; the tracker knows the devices of every running domain. */
static bool on_group_user(const Group *g, GroupUser *ret, void *userdata) {
        Daemon *d = userdata;

        for (char **a = g->devices; *a; a++)
                if (d->virt_module->tracker_find_device(d->virt, *a, &ret->domain_name, &ret->domain_uuid))
                        return true;
        return false;
}

/* A domain started or stopped: core judges its groups again and announces what changed. */
static void on_virt_change(const char *name, const char *uuid, bool started, char *const *addresses,
                           void *userdata) {
        Daemon *d = userdata;

        operations_note_libvirt(d->operations, name, uuid, started, addresses);
}

/* The virt layer is a module: libvirt and what it links are loaded only by a daemon that follows
 * libvirt. A build tree has it next to the binary, in virt/; an installed daemon in VIRT_MODULE_DIR. */
static int load_virt_module(Daemon *d) {
        _cleanup_(freep) char *exe = NULL, *local = NULL;
        const char *path = VIRT_MODULE_DIR "/" VIRT_MODULE_FILE;
        char *slash;

        exe = realpath("/proc/self/exe", NULL);
        slash = exe ? strrchr(exe, '/') : NULL;
        if (slash) {
                *slash = 0;
                local = strprintf("%s/virt/%s", exe, VIRT_MODULE_FILE);
                if (local && access(local, F_OK) == 0)
                        path = local;
        }
        d->virt_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!d->virt_handle)
                return log_error_errno(ENOENT, "Failed to load the libvirt module %s: %s", path, dlerror());
        d->virt_module = dlsym(d->virt_handle, VIRT_MODULE_SYMBOL);
        if (!d->virt_module)
                return log_error_errno(ENOENT, "The libvirt module %s lacks %s.", path, VIRT_MODULE_SYMBOL);
        return 0;
}

/* The tracker connects from the loop and retries while libvirtd is down: it never delays the start. */
static int start_virt(Daemon *d) {
        int r;

        if (streq(d->config.libvirt_uri, "none"))
                return 0;
        r = load_virt_module(d);
        if (r < 0)
                return r;
        r = d->virt_module->tracker_new(d->base, d->config.libvirt_uri, &d->virt);
        if (r < 0)
                return log_error_errno(r, "Failed to set up following libvirt: %m");
        operations_set_user_lookup(d->operations, on_group_user, d);
        d->virt_module->tracker_set_change(d->virt, on_virt_change, d);
        return 0;
}

static int run_daemon(Daemon *d) {
        ManagerOptions options = {
                .sysfs_root = d->config.sysfs_root,
                .proc_root = d->config.proc_root,
                .dev_root = d->config.dev_root,
                .pci_ids = d->config.pci_ids,
                .rescan_interval_sec = d->config.rescan_interval_sec,
                .udev = d->config.udev,
                .max_subscribers = d->config.limits.max_watchers,
        };
        GrpcLimits limits;
        uint64_t watchdog_usec = 0;
        int r;

        d->base = event_base_new();
        if (!d->base)
                return log_oom();

        r = manager_new(d->base, &options, &d->manager);
        if (r < 0)
                return r;

        r = start_operations(d);
        if (r < 0)
                return r;
        r = start_virt(d);
        if (r < 0)
                return r;

        r = group_cache_new(d->base, d->config.group_refresh_sec, on_groups_changed, d, &d->groups);
        if (r < 0)
                return log_error_errno(r, "Failed to start the user database lookups: %m");

        svc_grpc_limits(&d->config.limits, &limits);
        r = grpc_server_new(d->base, &limits, on_authorize, d, &d->grpc);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the gRPC server: %m");
        grpc_server_set_resolver(d->grpc, on_resolve, d);
        grpc_server_set_denial(d->grpc, on_denial);
        r = grpc_server_add_standard_services(d->grpc);
        if (r >= 0)
                r = svc_manager_new(d->grpc, d->manager, d->operations, on_authorize, d, &d->svc);
        if (r < 0)
                return log_error_errno(r, "Failed to register the gRPC services: %m");

        r = start_listeners(d);
        if (r < 0)
                return r;
        r = start_dbus(d);
        if (r < 0)
                return r;
        r = start_metrics(d);
        if (r < 0)
                return r;

        if (add_signal(d, SIGTERM, on_sigterm, &d->sigterm) < 0 || add_signal(d, SIGINT, on_sigterm, &d->sigint) < 0 ||
            add_signal(d, SIGHUP, on_sighup, &d->sighup) < 0 || add_signal(d, SIGUSR1, on_sigusr1, &d->sigusr1) < 0)
                return -ENOMEM;

        if (sd_watchdog_enabled(false, &watchdog_usec) > 0) {
                struct timeval tv = { .tv_sec = watchdog_usec / 2 / 1000000, .tv_usec = watchdog_usec / 2 % 1000000 };

                d->watchdog = event_new(d->base, -1, EV_PERSIST, on_watchdog, d);
                if (!d->watchdog || event_add(d->watchdog, &tv) < 0)
                        return log_oom();
        }

        (void)grpc_server_set_health(d->grpc, "", GRPC_HEALTH_SERVING);
        (void)grpc_server_set_health(d->grpc, "iommud.v1.IommuManager", GRPC_HEALTH_SERVING);
        (void)sd_notify(false, "READY=1");
        update_status(d);
        log_event(LOG_INFO, ((LogFields){ .message_id = LOG_ID_READY }),
                  "iommud %s ready: %zu IOMMU groups, %zu PCI devices; logging to %s.", PACKAGE_VERSION,
                  manager_get_inventory(d->manager)->n_groups, manager_get_inventory(d->manager)->n_devices,
                  log_target());

        if (event_base_dispatch(d->base) < 0)
                return log_error_errno(EIO, "The event loop failed.");
        log_info("Stopped.");
        return 0;
}

static void daemon_done(Daemon *d) {
        struct event **events[] = { &d->sigterm, &d->sigint, &d->sighup, &d->sigusr1, &d->watchdog, &d->dbus_retry };

        for (size_t i = 0; i < ELEMENTSOF(events); i++)
                if (*events[i])
                        event_free(*events[i]);
        metrics_server_free(d->metrics);
        /* Queued operations are cancelled first: their replies go to calls the server still knows. */
        operations_free(d->operations);
        if (d->virt_module)
                d->virt_module->tracker_free(d->virt);
        /* Not unloaded: libvirt keeps threads and atexit handlers of its own. */
        grpc_server_free(d->grpc);
        bus_server_free(d->dbus);
        svc_manager_free(d->svc);
        group_cache_free(d->groups);
        manager_free(d->manager);
        if (d->base)
                event_base_free(d->base);
        config_done(&d->config);
}

/* A burst of replies frees many small buffers at the top of the heap at once; with glibc's default
 * trim threshold (128 KiB) the heap shrank after every burst only to grow again for the next: 12,510
 * brk calls in 50,000 GetGroup replies, and 40 % fewer replies per second (docs/PERFORMANCE.md).
 * Keeping up to 1 MiB free at the top costs at most that much RSS. Setting it also stops glibc from
 * raising its mmap threshold (128 KiB) as large blocks come and go, so large replies are mapped
 * afresh each time: ListGroups' 1,000-group page took 0.010 s per call before and after. */
#define HEAP_TRIM_THRESHOLD (1024 * 1024)

int main(int argc, char *argv[]) {
        Arguments args = {};
        Daemon d = { .args = &args };
        int r;

        r = parse_argv(argc, argv, &args);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        r = load_config(&args, &d.config);
        if (r < 0)
                return 1;

        if (args.dump)
                r = run_dump(&args, &d.config);
        else {
                /* A client that goes away mid-write must not kill the daemon. */
                signal(SIGPIPE, SIG_IGN);
                (void)mallopt(M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD);
                r = run_daemon(&d);
        }
        daemon_done(&d);
        return r < 0 ? 1 : 0;
}
