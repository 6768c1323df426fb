/* libFuzzer target: a policy rule file (/etc/iommud/policy.d/NAME.conf) through the rule reader, the
 * offline checker, and, when it loads, the matcher and planner on a fixture host captured from a
 * real kernel. Input: the file. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>

#include <json-c/json.h>

#include "fuzz-util.h"
#include "inventory.h"
#include "log.h"
#include "match.h"
#include "plan.h"
#include "policy.h"
#include "roots.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static HostRoots *roots; /* kept: the inventory was read from it */
static Inventory *inventory;
static char path[PATH_MAX];

static void setup(void) {
        const char *host = getenv("FUZZ_HOST_ROOT") ?: FUZZ_SOURCE_ROOT "/tests/fixtures/captured/hypervisor-6.12";

        log_set_max_level(getenv("FUZZ_VERBOSE") ? LOG_DEBUG : LOG_CRIT);
        snprintf(path, sizeof(path), "%s/50-fuzz.conf", fuzz_scratch_dir());
        if (host_roots_open(host, host, host, &roots) < 0 || inventory_load(roots, NULL, &inventory) < 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *const paths[] = { path, NULL };
        PolicyErrors errors = {};
        Policy *p = NULL;
        FILE *devnull;

        if (!inventory)
                setup();
        fuzz_write_file(path, data, size);

        devnull = fopen("/dev/null", "we");
        if (!devnull || policy_check_files(paths, devnull) < 0)
                abort();
        fclose(devnull);

        if (policy_load_files(paths, &p, &errors) >= 0) {
                Plan *plan = NULL;

                json_object_put(policy_to_json(p));
                for (size_t i = 0; i < p->n_rules; i++) {
                        free(rule_match_to_string(&p->rules[i]));
                        for (size_t d = 0; d < inventory->n_devices; d++)
                                (void)rule_matches_device(&p->rules[i], &inventory->devices[d]);
                }
                if (plan_compute(p, inventory, &plan) >= 0) {
                        json_object_put(plan_to_json(plan));
                        plan_free(plan);
                }
                policy_free(p);
        }
        policy_errors_done(&errors);
        return 0;
}
