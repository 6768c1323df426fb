/* A stand-in for polkitd on a test bus: CheckAuthorization allows the actions named on the command
 * line and denies all others, and prints each question as "ACTION SUBJECT-NAME" on stdout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

static char **allowed;

static int method_check_authorization(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *kind, *key, *name = "", *action;
        int r, yes = 0;

        r = sd_bus_message_enter_container(m, 'r', "sa{sv}");
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &kind);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r >= 0 && strcmp(key, "name") == 0)
                        r = sd_bus_message_read(m, "v", "s", &name);
                else if (r >= 0)
                        r = sd_bus_message_skip(m, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &action);
        if (r < 0)
                return r;

        for (char **a = allowed; *a; a++)
                if (strcmp(*a, action) == 0)
                        yes = 1;
        printf("%s %s %s\n", action, name, yes ? "yes" : "no");
        fflush(stdout);
        return sd_bus_reply_method_return(m, "(bba{ss})", yes, 0, 0);
}

static const sd_bus_vtable authority_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("CheckAuthorization",
                                SD_BUS_ARGS("(sa{sv})", subject, "s", action_id, "a{ss}", details, "u",
                                            flags, "s", cancellation_id),
                                SD_BUS_RESULT("(bba{ss})", result), method_check_authorization,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int main(int argc, char *argv[]) {
        sd_bus *bus = NULL;
        int r;

        if (argc < 2) {
                fprintf(stderr, "usage: fake-polkit ADDRESS [ALLOWED-ACTION...]\n");
                return 2;
        }
        allowed = argv + 2;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, argv[1]);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/PolicyKit1/Authority",
                                             "org.freedesktop.PolicyKit1.Authority", authority_vtable, NULL);
        if (r >= 0)
                r = sd_bus_request_name(bus, "org.freedesktop.PolicyKit1", 0);
        if (r < 0) {
                fprintf(stderr, "fake-polkit: %s\n", strerror(-r));
                return 1;
        }
        printf("ready\n");
        fflush(stdout);

        for (;;) {
                r = sd_bus_process(bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0) {
                        fprintf(stderr, "fake-polkit: %s\n", strerror(-r));
                        sd_bus_flush_close_unref(bus);
                        return 1;
                }
        }
}
