/* Matching rules against devices: each [Match] key is one test on the inventory's Device. */
#include "match.h"

#include <fnmatch.h>
#include <string.h>

static bool driver_matches(char *const *drivers, const char *driver) {
        for (char *const *i = drivers; *i; i++)
                if (driver ? strcmp(*i, driver) == 0 : strcmp(*i, "none") == 0)
                        return true;
        return false;
}

static bool key_matches(const Rule *r, MatchKey k, const Device *d) {
        switch (k) {
        case MATCH_VENDOR:
                return d->vendor_id == r->vendor;
        case MATCH_DEVICE:
                return d->device_id == r->device;
        case MATCH_SUBSYSTEM:
                return d->subsystem_vendor_id == r->subsystem_vendor &&
                       d->subsystem_device_id == r->subsystem_device;
        case MATCH_CLASS:
                return d->class_code >= 0 && ((uint32_t)d->class_code & r->class_mask) == r->class_value;
        case MATCH_ADDRESS:
                return d->address && fnmatch(r->match[MATCH_ADDRESS].value, d->address, 0) == 0;
        case MATCH_DRIVER:
                return driver_matches(r->drivers, d->driver);
        case MATCH_SERIAL:
                return d->serial_present && d->serial == r->serial;
        case MATCH_GROUP:
                return d->group >= 0 && (unsigned)d->group == r->group;
        case MATCH_NUMA_NODE:
                return d->numa_node >= 0 && d->numa_node == r->numa_node;
        case _MATCH_KEY_MAX:
                break;
        }
        return false;
}

bool rule_matches_device(const Rule *r, const Device *d) {
        for (MatchKey k = 0; k < _MATCH_KEY_MAX; k++)
                if (r->match[k].line > 0 && !key_matches(r, k, d))
                        return false;
        return true;
}
