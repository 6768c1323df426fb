/* Unit tests for client/escape.c: control characters in server text, and every string of a message. */
#undef NDEBUG
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "escape.h"
#include "iommud.pb-c.h"
#include "macro.h"

static void check_escape(const char *in, const char *want) {
        _cleanup_(freep) char *out = escape_control(in);

        assert_non_null(out);
        assert_string_equal(out, want);
        assert_int_equal(escape_needed(in), strcmp(in, want) != 0);
}

static void test_escape_control(void **state) {
        check_escape("", "");
        check_escape("snd_hda_intel", "snd_hda_intel");
        check_escape("a\033[31mb", "a\\x1b[31mb");
        check_escape("bell\a", "bell\\x07");
        check_escape("\t\n\r", "\\x09\\x0a\\x0d");
        check_escape("del\177", "del\\x7f");
        /* C1 CSI (U+009B) is a control, and so are the bidirectional overrides; é, … and box
         * drawing are text. A byte that is not UTF-8 and the escape's own backslash are escaped. */
        check_escape("c1\xc2\x9b" "2J", "c1\\x9b2J");
        check_escape("rtl\xe2\x80\xae" "gpj.exe", "rtl\\u202egpj.exe");
        check_escape("bad\xff", "bad\\xff");
        check_escape("a\\b", "a\\\\b");
        check_escape("caf\xc3\xa9 \xe2\x80\xa6 \xe2\x94\x9c", "caf\xc3\xa9 \xe2\x80\xa6 \xe2\x94\x9c");
        check_escape("\xc2\xa0nbsp", "\xc2\xa0nbsp");
}

/* A message as it comes off the wire: packed, then unpacked, so every string is the unpacker's. */
static ProtobufCMessage *round_trip(const ProtobufCMessage *m) {
        size_t n = protobuf_c_message_get_packed_size(m);
        _cleanup_(freep) uint8_t *buf = malloc(n ?: 1);

        assert_non_null(buf);
        protobuf_c_message_pack(m, buf);
        return protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
}

static void test_message_strings(void **state) {
        Iommud__V1__WatchEvent e = IOMMUD__V1__WATCH_EVENT__INIT;
        Iommud__V1__WatchEvent__GroupStatusChanged sc = IOMMUD__V1__WATCH_EVENT__GROUP_STATUS_CHANGED__INIT;
        Iommud__V1__Group g = IOMMUD__V1__GROUP__INIT;
        Iommud__V1__Owner o = IOMMUD__V1__OWNER__INIT;
        Iommud__V1__Cause cause = IOMMUD__V1__CAUSE__INIT;
        char *addresses[] = {"0000:01:00.0", "0000:01:00.1\033]0;owned\a"};
        char *changed[] = {"state", "owner"};
        Iommud__V1__WatchEvent *out;

        o.kind = "libvirt";
        o.domain_name = "vm\033[2J";
        g.id = 1;
        g.owner = &o;
        g.device_addresses = addresses;
        g.n_device_addresses = 2;
        g.domain_type_raw = "DMA";
        sc.group = 1;
        sc.group_now = &g;
        sc.changed = changed;
        sc.n_changed = 2;
        e.event_case = IOMMUD__V1__WATCH_EVENT__EVENT_GROUP_STATUS_CHANGED;
        e.group_status_changed = &sc;
        cause.text = "libvirt domain 'vm\033[2J' stopped";
        e.cause = &cause;

        out = (Iommud__V1__WatchEvent *)round_trip(&e.base);
        assert_non_null(out);
        assert_int_equal(escape_message_strings(&out->base), 0);
        assert_string_equal(out->cause->text, "libvirt domain 'vm\\x1b[2J' stopped");
        assert_string_equal(out->group_status_changed->group_now->owner->domain_name, "vm\\x1b[2J");
        assert_string_equal(out->group_status_changed->group_now->owner->kind, "libvirt");
        assert_string_equal(out->group_status_changed->group_now->device_addresses[0], "0000:01:00.0");
        assert_string_equal(out->group_status_changed->group_now->device_addresses[1],
                            "0000:01:00.1\\x1b]0;owned\\x07");
        assert_string_equal(out->group_status_changed->changed[1], "owner");
        /* Unset strings keep the shared default, which free_unpacked leaves alone. */
        assert_string_equal(out->incarnation, "");
        protobuf_c_message_free_unpacked(&out->base, NULL);
}

/* Another member of the oneof is set: its storage holds another type, which must not be walked as
 * the group_status_changed member (ASan sees it if it is). */
static void test_other_oneof_member(void **state) {
        Iommud__V1__WatchEvent e = IOMMUD__V1__WATCH_EVENT__INIT;
        Iommud__V1__WatchEvent__DriverChanged dc = IOMMUD__V1__WATCH_EVENT__DRIVER_CHANGED__INIT;
        Iommud__V1__WatchEvent *out;

        dc.address = "0000:01:00.1";
        dc.old_driver = "evil\033[31m";
        e.event_case = IOMMUD__V1__WATCH_EVENT__EVENT_DRIVER_CHANGED;
        e.driver_changed = &dc;
        out = (Iommud__V1__WatchEvent *)round_trip(&e.base);
        assert_non_null(out);
        assert_int_equal(escape_message_strings(&out->base), 0);
        assert_string_equal(out->driver_changed->old_driver, "evil\\x1b[31m");
        assert_string_equal(out->driver_changed->address, "0000:01:00.1");
        protobuf_c_message_free_unpacked(&out->base, NULL);
        assert_int_equal(escape_message_strings(NULL), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_escape_control),
                cmocka_unit_test(test_message_strings),
                cmocka_unit_test(test_other_oneof_member),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
