/* org.iommud1.Manager on /org/iommud1: host settings, lookups that return object paths, and the
 * policy and reload methods. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "build-config.h"
#include "bus-error.h"
#include "bus-objects.h"
#include "macro.h"
#include "manager.h"
#include "operations.h"
#include "plan.h"
#include "query.h"
#include "string-util.h"
#include "strv.h"

static const Inventory *inventory_of(void *userdata) {
        const BusServer *s = userdata;

        return manager_get_inventory(s->manager);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        return sd_bus_message_append_basic(reply, 's', PACKAGE_VERSION);
}

static int property_get_kernel_release(sd_bus *bus, const char *path, const char *interface,
                                       const char *property, sd_bus_message *reply, void *userdata,
                                       sd_bus_error *ret_error) {
        return sd_bus_message_append_basic(reply, 's', inventory_of(userdata)->host.kernel_release ?: "");
}

static int property_get_iommu_enabled(sd_bus *bus, const char *path, const char *interface,
                                      const char *property, sd_bus_message *reply, void *userdata,
                                      sd_bus_error *ret_error) {
        int b = inventory_of(userdata)->host.iommu_enabled;

        return sd_bus_message_append_basic(reply, 'b', &b);
}

static int property_get_iommu_off_reason(sd_bus *bus, const char *path, const char *interface,
                                         const char *property, sd_bus_message *reply, void *userdata,
                                         sd_bus_error *ret_error) {
        return sd_bus_message_append_basic(reply, 's', inventory_of(userdata)->host.iommu_off_reason ?: "");
}

/* What the kernel command line asks for; "" when it leaves the choice to Kconfig and the driver. */
static int property_get_default_domain_type(sd_bus *bus, const char *path, const char *interface,
                                            const char *property, sd_bus_message *reply, void *userdata,
                                            sd_bus_error *ret_error) {
        const HostInfo *h = &inventory_of(userdata)->host;

        return sd_bus_message_append_basic(reply, 's', domain_type_to_string(h->cmdline_default_type) ?: "");
}

static int property_get_default_domain_type_source(sd_bus *bus, const char *path, const char *interface,
                                                   const char *property, sd_bus_message *reply,
                                                   void *userdata, sd_bus_error *ret_error) {
        const HostInfo *h = &inventory_of(userdata)->host;

        return sd_bus_message_append_basic(reply, 's', h->cmdline_default_type_source ?: "");
}

static int property_get_vfio_loaded(sd_bus *bus, const char *path, const char *interface,
                                    const char *property, sd_bus_message *reply, void *userdata,
                                    sd_bus_error *ret_error) {
        int b = inventory_of(userdata)->host.vfio_pci_loaded;

        return sd_bus_message_append_basic(reply, 'b', &b);
}

/* Whether iommud refuses every change (its state cannot be written), and why; decided at start. */
static int property_get_read_only(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const BusServer *s = userdata;
        int b = operations_read_only_reason(s->operations) != NULL;

        return sd_bus_message_append_basic(reply, 'b', &b);
}

static int property_get_read_only_reason(sd_bus *bus, const char *path, const char *interface,
                                         const char *property, sd_bus_message *reply, void *userdata,
                                         sd_bus_error *ret_error) {
        const BusServer *s = userdata;

        return sd_bus_message_append_basic(reply, 's', operations_read_only_reason(s->operations) ?: "");
}

static int property_get_units(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const Inventory *inv = inventory_of(userdata);
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(ss)");
        FOREACH_ARRAY (u, inv->units, inv->n_units)
                if (r >= 0)
                        r = sd_bus_message_append(reply, "(ss)", u->name,
                                                  unit_kind_to_string(u->kind) ?: "");
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int property_get_n_groups(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        uint32_t n = inventory_of(userdata)->n_groups;

        return sd_bus_message_append_basic(reply, 'u', &n);
}

static int property_get_n_devices(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        uint32_t n = inventory_of(userdata)->n_devices;

        return sd_bus_message_append_basic(reply, 'u', &n);
}

int manager_bus_emit_changes(sd_bus *bus, bool host) {
        static const char *const counts[] = {"NGroups", "NDevices", NULL};

        /* A host change carries no old state to compare with: every host property is sent (NULL: all
         * that are marked EMITS_CHANGE). */
        return sd_bus_emit_properties_changed_strv(bus, BUS_PATH, BUS_MANAGER_INTERFACE,
                                                   host ? NULL : (char **)counts);
}

typedef struct FilterStrings {
        char **type, **viable, **vendor, **class, **driver;
} FilterStrings;

static void filter_strings_done(FilterStrings *f) {
        strv_free(f->type);
        strv_free(f->viable);
        strv_free(f->vendor);
        strv_free(f->class);
        strv_free(f->driver);
}

/* a{sas}: the gRPC ListGroupsRequest's filters by name; "viable" takes "yes" or "no". */
static int read_group_filter(sd_bus_message *m, FilterStrings *f, char **ret_message) {
        const char *key;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sas}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sas")) > 0) {
                char ***slot;

                r = sd_bus_message_read_basic(m, 's', &key);
                if (r < 0)
                        return r;
                slot = strcmp(key, "type") == 0     ? &f->type
                       : strcmp(key, "viable") == 0 ? &f->viable
                       : strcmp(key, "vendor") == 0 ? &f->vendor
                       : strcmp(key, "class") == 0  ? &f->class
                       : strcmp(key, "driver") == 0 ? &f->driver
                                                    : NULL;
                if (!slot) {
                        *ret_message = strprintf(
                                "unknown filter '%s'; expected type, viable, vendor, class or driver", key);
                        return -EINVAL;
                }
                *slot = strv_free(*slot);
                r = sd_bus_message_read_strv(m, slot);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int method_list_groups(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const Inventory *inv = inventory_of(userdata);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(filter_strings_done) FilterStrings f = {};
        _cleanup_(freep) char *message = NULL;
        GroupFilter filter = {.viable = VIABILITY_ANY};
        int r;

        r = read_group_filter(m, &f, &message);
        if (r == -EINVAL && message)
                return bus_reply_errno(m, r, message);
        if (r < 0)
                return r;
        if (f.viable) {
                if (strv_length(f.viable) != 1 ||
                    (strcmp(f.viable[0], "yes") != 0 && strcmp(f.viable[0], "no") != 0))
                        return bus_reply_errno(m, -EINVAL,
                                               "the viable filter takes one value, 'yes' or 'no'");
                filter.viable = f.viable[0][0] == 'y' ? VIABILITY_VIABLE : VIABILITY_NOT_VIABLE;
        }
        filter.types = f.type;
        filter.n_types = strv_length(f.type);
        filter.vendors = f.vendor;
        filter.n_vendors = strv_length(f.vendor);
        filter.classes = f.class;
        filter.n_classes = strv_length(f.class);
        filter.drivers = f.driver;
        filter.n_drivers = strv_length(f.driver);

        r = group_filter_verify(&filter, &message);
        if (r < 0)
                return bus_reply_errno(m, r, message);

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(uo)");
        FOREACH_ARRAY (g, inv->groups, inv->n_groups) {
                _cleanup_(freep) char *path = NULL;

                if (r < 0 || !group_filter_match(&filter, inv, g))
                        continue;
                r = group_bus_path(g->id, &path);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "(uo)", g->id, path);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_group(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const Inventory *inv = inventory_of(userdata);
        _cleanup_(freep) char *path = NULL, *message = NULL;
        uint32_t id;
        int r;

        r = sd_bus_message_read(m, "u", &id);
        if (r < 0)
                return r;
        if (!inventory_find_group(inv, id)) {
                message = describe_missing_group(inv, id);
                return bus_reply_errno(m, -ENOENT, message);
        }
        r = group_bus_path(id, &path);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "o", path);
}

static int method_get_device_by_address(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const Inventory *inv = inventory_of(userdata);
        _cleanup_(freep) char *path = NULL, *message = NULL;
        const char *given;
        char address[16];
        int r;

        r = sd_bus_message_read(m, "s", &given);
        if (r < 0)
                return r;
        if (pci_address_normalize(given, address) < 0) {
                message = strprintf("'%s' is not a PCI address (expected DDDD:BB:SS.F, e.g. 0000:01:00.0)",
                                    given);
                return bus_reply_errno(m, -EINVAL, message);
        }
        if (!inventory_find_device(inv, address)) {
                message = describe_missing_device(inv, address);
                return bus_reply_errno(m, -ENOENT, message);
        }
        r = device_bus_path(address, &path);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "o", path);
}

static int method_rescan(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        BusServer *s = userdata;
        unsigned n;
        int r;

        r = manager_rescan(s->manager, &n);
        if (r < 0)
                return bus_reply_errno(m, r, "rescanning the host failed; see the daemon's log");
        return sd_bus_reply_method_return(m, "u", n);
}

static int method_reload(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        BusServer *s = userdata;
        int r;

        r = s->reload(s->reload_userdata);
        if (r < 0)
                return bus_reply_errno(m, r,
                                       "reloading the settings failed; the current ones are kept, "
                                       "see the daemon's log");
        return sd_bus_reply_method_return(m, NULL);
}

/* Plan and ApplyPolicy answer a(uss): group, the step ("set-type identity", "prepare vfio-pci",
 * "none"), and the reason with its rule's file:line (or, after ApplyPolicy, what became of it). */
static int append_plan(sd_bus_message *reply, const Plan *plan) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(uss)");
        if (r < 0)
                return r;
        FOREACH_ARRAY(g, plan->groups, plan->n_groups)
                FOREACH_ARRAY(step, g->steps, g->n_steps) {
                        _cleanup_(freep) char *action = strprintf("%s%s%s", plan_step_kind_to_string(step->kind),
                                                                  step->argument ? " " : "", step->argument ?: "");
                        _cleanup_(freep) char *reason = step->blocked
                                                                ? strprintf("%s; the kernel refuses it now: %s",
                                                                            step->reason, step->blocked_reason ?: "?")
                                                                : strdup(step->reason ?: "");

                        if (!action || !reason)
                                return -ENOMEM;
                        r = sd_bus_message_append(reply, "(uss)", g->id, action, reason);
                        if (r < 0)
                                return r;
                }
        return sd_bus_message_close_container(reply);
}

static int method_plan(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(plan_freep) Plan *plan = NULL;
        BusServer *s = userdata;
        int r;

        r = operations_plan(s->operations, &plan);
        if (r < 0)
                return bus_reply_errno(m, r, NULL);
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = append_plan(reply, plan);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static void on_policy_applied(const ApplyOutcome *outcome, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = userdata, *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(call, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(uss)");
        FOREACH_ARRAY(o, outcome->outcomes, outcome->n_outcomes) {
                _cleanup_(freep) char *what = strprintf("%zu steps", strv_length(o->steps));

                if (r < 0 || !what)
                        break;
                r = sd_bus_message_append(reply, "(uss)", o->group, o->error < 0 ? "failed" : "done",
                                          o->error < 0 ? o->message ?: strerror(-o->error) : what);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                (void)bus_reply_errno(call, r, NULL);
}

static int method_apply_policy(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(freep) char *message = NULL;
        BusServer *s = userdata;
        int dry_run, r;

        r = sd_bus_message_read(m, "b", &dry_run);
        if (r < 0)
                return r;
        /* The reply goes out when the last operation has finished. */
        sd_bus_message_ref(m);
        r = operations_apply_policy(s->operations, -1, dry_run, on_policy_applied, m, &message);
        if (r < 0) {
                sd_bus_message_unref(m);
                return bus_reply_errno(m, r, message);
        }
        return 1;
}

#define CHANGES SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE
/* Without it sd-bus demands CAP_SYS_ADMIN on the system bus; bus-authorize.c decides instead. */
#define UNPRIVILEGED SD_BUS_VTABLE_UNPRIVILEGED

const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("KernelRelease", "s", property_get_kernel_release, 0, CHANGES),
        SD_BUS_PROPERTY("IommuEnabled", "b", property_get_iommu_enabled, 0, CHANGES),
        SD_BUS_PROPERTY("IommuOffReason", "s", property_get_iommu_off_reason, 0, CHANGES),
        SD_BUS_PROPERTY("DefaultDomainType", "s", property_get_default_domain_type, 0, CHANGES),
        SD_BUS_PROPERTY("DefaultDomainTypeSource", "s", property_get_default_domain_type_source, 0, CHANGES),
        SD_BUS_PROPERTY("VfioLoaded", "b", property_get_vfio_loaded, 0, CHANGES),
        SD_BUS_PROPERTY("Units", "a(ss)", property_get_units, 0, CHANGES),
        SD_BUS_PROPERTY("NGroups", "u", property_get_n_groups, 0, CHANGES),
        SD_BUS_PROPERTY("NDevices", "u", property_get_n_devices, 0, CHANGES),
        SD_BUS_PROPERTY("ReadOnly", "b", property_get_read_only, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ReadOnlyReason", "s", property_get_read_only_reason, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("ListGroups", SD_BUS_ARGS("a{sas}", filter), SD_BUS_RESULT("a(uo)", groups),
                                method_list_groups, UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetGroup", SD_BUS_ARGS("u", id), SD_BUS_RESULT("o", group),
                                method_get_group, UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetDeviceByAddress", SD_BUS_ARGS("s", address), SD_BUS_RESULT("o", device),
                                method_get_device_by_address, UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Rescan", SD_BUS_NO_ARGS, SD_BUS_RESULT("u", changes), method_rescan,
                                UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Plan", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(uss)", steps), method_plan,
                                UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ApplyPolicy", SD_BUS_ARGS("b", dry_run), SD_BUS_RESULT("a(uss)", steps),
                                method_apply_policy, UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reload, UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int manager_bus_register(BusServer *s) {
        int r;

        r = sd_bus_add_object_vtable(s->bus, NULL, BUS_PATH, BUS_MANAGER_INTERFACE, manager_vtable, s);
        if (r < 0)
                return r;
        return sd_bus_add_object_manager(s->bus, NULL, BUS_PATH);
}
