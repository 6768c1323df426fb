/* Policy rules as read from the .conf files in /etc/iommud/policy.d: one rule per file, a [Match]
 * section and a [Policy] section, every key remembered with the line it came from (docs/POLICY.md). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct json_object json_object;

/* One problem in a policy file. */
typedef struct PolicyError {
        char *file;
        unsigned line; /* 0: the file as a whole (cannot be read, holds no rule) */
        char *message;
} PolicyError;

typedef struct PolicyErrors {
        PolicyError *items;
        size_t n;
} PolicyErrors;

void policy_errors_done(PolicyErrors *errors);
/* "file:line: message", or "file: message" for line 0, one per line. */
void policy_errors_print(const PolicyErrors *errors, FILE *out);

typedef enum MatchKey {
        MATCH_VENDOR,
        MATCH_DEVICE,
        MATCH_SUBSYSTEM,
        MATCH_CLASS,
        MATCH_ADDRESS,
        MATCH_DRIVER,
        MATCH_SERIAL,
        MATCH_GROUP,
        MATCH_NUMA_NODE,
        _MATCH_KEY_MAX,
} MatchKey;

typedef enum PolicyAction {
        POLICY_DOMAIN_TYPE,
        POLICY_PASSTHROUGH,
        POLICY_BIND_AT_BOOT,
        POLICY_CRITICAL,
        _POLICY_ACTION_MAX,
} PolicyAction;

/* The key as spelled in the files: "Vendor", "NumaNode", "DomainType", "BindAtBoot", … */
const char *match_key_to_string(MatchKey k);
const char *policy_action_to_string(PolicyAction a);

typedef enum Passthrough {
        PASSTHROUGH_UNSET = 0,
        PASSTHROUGH_ALLOW,
        PASSTHROUGH_DENY,
} Passthrough;

/* One key of a rule: the line it is on (0: the rule does not set it) and its value. Match values are
 * kept as written; action values in canonical spelling ("Critical=yes", never "true"), so that two
 * rules agree exactly when their strings are equal. */
typedef struct RuleKey {
        unsigned line;
        char *value;
} RuleKey;

typedef struct Rule {
        char *file;    /* the path it was read from */
        unsigned line; /* of its [Match] header */
        RuleKey match[_MATCH_KEY_MAX];
        RuleKey action[_POLICY_ACTION_MAX];

        /* Parsed [Match] values, meaningful where match[key].line != 0. The address glob is
         * match[MATCH_ADDRESS].value. */
        uint16_t vendor, device, subsystem_vendor, subsystem_device;
        uint32_t class_value, class_mask; /* 24-bit class code and the bits that must equal it */
        char **drivers;                   /* alternatives; "none" stands for "no driver bound" */
        uint64_t serial;                  /* PCIe Device Serial Number, as lspci prints it */
        unsigned group;
        int numa_node;

        /* Parsed [Policy] values. */
        const char *domain_type; /* "identity", "DMA", "DMA-FQ" or "auto"; NULL when not set */
        Passthrough passthrough;
        char *bind_at_boot; /* vfio-pci or a VFIO variant driver; NULL when not set */
        bool critical;
} Rule;

typedef struct Policy {
        Rule *rules; /* in the order the files were read */
        size_t n_rules;
} Policy;

/* Reads every file named *.conf in dir, in byte order of their names (as "ls" in the C locale sorts
 * them). A missing directory is an empty policy. Every problem in every file, an unreadable directory
 * included, is appended to errors; if there is any, the whole policy is refused (-EINVAL): a partly
 * read policy could lack the rule that marks the boot disk critical. -ENOMEM. */
int policy_load_dir(const char *dir, Policy **ret, PolicyErrors *errors);
/* The same for a list of paths, in the given order; a path that is a directory stands for its *.conf
 * files. */
int policy_load_files(char *const *paths, Policy **ret, PolicyErrors *errors);
Policy *policy_free(Policy *p);
static inline void policy_freep(Policy **p) {
        policy_free(*p);
}

/* The offline checker behind "iommuctl policy check FILE...": prints every problem as
 * "file:line: message" to out and returns how many there were, or -ENOMEM. */
int policy_check_files(char *const *paths, FILE *out);

/* "Vendor=10de Class=0300/ff00": the rule's [Match] keys as written, for reasons and messages. */
char *rule_match_to_string(const Rule *r);

json_object *policy_to_json(const Policy *p);
