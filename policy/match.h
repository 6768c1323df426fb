/* Whether a rule's [Match] section describes a device of the inventory. */
#pragma once

#include <stdbool.h>

#include "inventory.h"
#include "policy.h"

/* Every key the rule sets must match (they AND together); a key the device has no value for (an
 * unreadable ID, no serial number, no group, no NUMA node) does not match. */
bool rule_matches_device(const Rule *r, const Device *d);
