/* The introspection XML of our three interfaces, written from the vtables themselves, so that
 * `iommud --bus-introspect` and docs/dbus-api.xml cannot drift from what the daemon serves. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bus-objects.h"

/* Length of the single complete type at the start of a valid signature. */
static size_t complete_type_length(const char *s) {
        size_t n;
        int depth = 0;

        if (*s == 'a')
                return 1 + complete_type_length(s + 1);
        if (*s != '(' && *s != '{')
                return 1;
        for (n = 0;; n++) {
                if (s[n] == '(' || s[n] == '{')
                        depth++;
                else if (s[n] == ')' || s[n] == '}')
                        depth--;
                if (depth == 0)
                        return n + 1;
        }
}

/* Prints one <arg> per complete type of signature; names is sd-bus's NUL-separated list, advanced. */
static void print_args(FILE *f, const char *signature, const char **names, const char *direction) {
        for (const char *t = signature; t && *t;) {
                size_t n = complete_type_length(t);

                fprintf(f, "   <arg type=\"%.*s\" name=\"%s\"", (int)n, t, *names);
                if (direction)
                        fprintf(f, " direction=\"%s\"", direction);
                fputs("/>\n", f);
                *names += strlen(*names) + 1;
                t += n;
        }
}

static void print_interface(FILE *f, const char *name, const sd_bus_vtable *vtable) {
        fprintf(f, " <interface name=\"%s\">\n", name);
        for (const sd_bus_vtable *v = vtable + 1; v->type != _SD_BUS_VTABLE_END; v++) {
                const char *names, *emits;

                switch (v->type) {
                case _SD_BUS_VTABLE_METHOD:
                        names = v->x.method.names;
                        fprintf(f, "  <method name=\"%s\">\n", v->x.method.member);
                        print_args(f, v->x.method.signature, &names, "in");
                        print_args(f, v->x.method.result, &names, "out");
                        fputs("  </method>\n", f);
                        break;
                case _SD_BUS_VTABLE_SIGNAL:
                        names = v->x.signal.names;
                        fprintf(f, "  <signal name=\"%s\">\n", v->x.signal.member);
                        print_args(f, v->x.signal.signature, &names, NULL);
                        fputs("  </signal>\n", f);
                        break;
                case _SD_BUS_VTABLE_PROPERTY:
                case _SD_BUS_VTABLE_WRITABLE_PROPERTY:
                        fprintf(f, "  <property name=\"%s\" type=\"%s\" access=\"%s\"", v->x.property.member,
                                v->x.property.signature,
                                v->type == _SD_BUS_VTABLE_PROPERTY ? "read" : "readwrite");
                        /* The same annotation sd-bus puts into its own introspection. */
                        if (v->flags & SD_BUS_VTABLE_PROPERTY_CONST)
                                emits = "const";
                        else if (!(v->flags & SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE))
                                emits = "false";
                        else
                                emits = NULL;
                        if (emits)
                                fprintf(f,
                                        ">\n   <annotation "
                                        "name=\"org.freedesktop.DBus.Property.EmitsChangedSignal\" "
                                        "value=\"%s\"/>\n  </property>\n",
                                        emits);
                        else
                                fputs("/>\n", f);
                        break;
                default:
                        break;
                }
        }
        fputs(" </interface>\n", f);
}

int bus_server_print_introspection(FILE *f) {
        fputs("<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n"
              "\"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n"
              "<!-- org.iommud1: " BUS_PATH " has " BUS_MANAGER_INTERFACE
              " and org.freedesktop.DBus.ObjectManager;\n"
              "     " BUS_GROUP_PREFIX "/<id> has " BUS_GROUP_INTERFACE ";\n"
              "     " BUS_DEVICE_PREFIX
              "/<PCI address, escaped as by sd_bus_path_encode()> has " BUS_DEVICE_INTERFACE ".\n"
              "     Group status (core's, the same gRPC's Group carries): State (host, vfio-ready, in-use,\n"
              "     blocked, transitioning, failed); Owner (the client it was prepared for); OwnerKind (\"\",\n"
              "     libvirt, client); OwnerDomainName and OwnerDomainUuid (the libvirt domain using it);\n"
              "     Users (domains and processes holding it); HostUses (kind, device, text, forcible);\n"
              "     TypeChangeVerdicts (type, allowed, what SetDomainType would do or why not); Empty and\n"
              "     EmptyReason (the kernel shows it without members). Every change is announced by\n"
              "     PropertiesChanged right after the event that caused it.\n"
              "     Property reads and method calls need the role iommud's [Roles] (or polkit) gives the\n"
              "     caller. The signals (PropertiesChanged, InterfacesAdded, InterfacesRemoved) are\n"
              "     broadcast: the shipped bus policy (org.iommud1.conf) delivers them only to root and\n"
              "     to the group iommud, the default readers; see docs/SECURITY.md.\n"
              "     Written by iommud's bus-introspect option; docs/dbus-api.xml keeps a copy. -->\n"
              "<node>\n",
              f);
        print_interface(f, BUS_MANAGER_INTERFACE, manager_vtable);
        print_interface(f, BUS_GROUP_INTERFACE, group_vtable);
        print_interface(f, BUS_DEVICE_INTERFACE, device_vtable);
        fputs("</node>\n", f);
        return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}
