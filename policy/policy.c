/* Reading and validating policy files: one key table, strict value parsers, errors as file:line. */
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "fileio.h"
#include "ini-reader.h"
#include "macro.h"
#include "parse.h"
#include "string-util.h"
#include "strv.h"

#define HEX_DIGITS "0123456789abcdefABCDEF"

static const char *const match_key_names[_MATCH_KEY_MAX] = {
        [MATCH_VENDOR] = "Vendor",
        [MATCH_DEVICE] = "Device",
        [MATCH_SUBSYSTEM] = "Subsystem",
        [MATCH_CLASS] = "Class",
        [MATCH_ADDRESS] = "Address",
        [MATCH_DRIVER] = "Driver",
        [MATCH_SERIAL] = "Serial",
        [MATCH_GROUP] = "Group",
        [MATCH_NUMA_NODE] = "NumaNode",
};

static const char *const action_names[_POLICY_ACTION_MAX] = {
        [POLICY_DOMAIN_TYPE] = "DomainType",
        [POLICY_PASSTHROUGH] = "Passthrough",
        [POLICY_BIND_AT_BOOT] = "BindAtBoot",
        [POLICY_CRITICAL] = "Critical",
};

/* What the kernel's type attribute accepts (KERNEL.md §1.3), spelled as it wants them. */
static const char *const domain_types[] = { "identity", "DMA", "DMA-FQ", "auto" };

const char *match_key_to_string(MatchKey k) {
        return k >= 0 && k < _MATCH_KEY_MAX ? match_key_names[k] : NULL;
}

const char *policy_action_to_string(PolicyAction a) {
        return a >= 0 && a < _POLICY_ACTION_MAX ? action_names[a] : NULL;
}

void policy_errors_done(PolicyErrors *errors) {
        FOREACH_ARRAY(e, errors->items, errors->n) {
                free(e->file);
                free(e->message);
        }
        free(errors->items);
        *errors = (PolicyErrors){};
}

void policy_errors_print(const PolicyErrors *errors, FILE *out) {
        FOREACH_ARRAY(e, errors->items, errors->n)
                if (e->line > 0)
                        fprintf(out, "%s:%u: %s\n", e->file, e->line, e->message);
                else
                        fprintf(out, "%s: %s\n", e->file, e->message);
}

_printf_(4, 5) static int errors_add(PolicyErrors *errors, const char *file, unsigned line,
                                     const char *format, ...) {
        _cleanup_(freep) char *message = NULL, *copy = NULL;
        PolicyError *e;
        va_list ap;
        int k;

        va_start(ap, format);
        k = vasprintf(&message, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        copy = strdup(file);
        if (!copy)
                return -ENOMEM;
        e = array_append(&errors->items, &errors->n, sizeof(PolicyError));
        if (!e)
                return -ENOMEM;
        *e = (PolicyError){ .file = TAKE_PTR(copy), .line = line, .message = TAKE_PTR(message) };
        return -EINVAL;
}

static void rule_done(Rule *r) {
        free(r->file);
        for (size_t i = 0; i < _MATCH_KEY_MAX; i++)
                free(r->match[i].value);
        for (size_t i = 0; i < _POLICY_ACTION_MAX; i++)
                free(r->action[i].value);
        strv_free(r->drivers);
        free(r->bind_at_boot);
        *r = (Rule){};
}

Policy *policy_free(Policy *p) {
        if (!p)
                return NULL;
        FOREACH_ARRAY(r, p->rules, p->n_rules)
                rule_done(r);
        free(p->rules);
        free(p);
        return NULL;
}

/* ---- parsing one file ------------------------------------------------------------------------ */

typedef enum Section {
        SECTION_NONE,
        SECTION_MATCH,
        SECTION_POLICY,
} Section;

typedef struct ParseState {
        const char *path;
        PolicyErrors *errors;
        Rule rule;
        unsigned policy_line; /* of the [Policy] header, 0 before it */
        bool failed;
        bool oom;
} ParseState;

typedef struct KeyDef KeyDef;

/* Parses value into st->rule. Reports a bad value through invalid() and returns -EINVAL. */
typedef int (*KeyParseFunc)(ParseState *st, const KeyDef *k, const char *value, unsigned line);

struct KeyDef {
        Section section;
        int index; /* MatchKey or PolicyAction */
        KeyParseFunc parse;
};

static const char *section_name(Section s) {
        return s == SECTION_MATCH ? "Match" : "Policy";
}

static const char *key_name(const KeyDef *k) {
        return k->section == SECTION_MATCH ? match_key_names[k->index] : action_names[k->index];
}

static RuleKey *rule_key(Rule *r, const KeyDef *k) {
        return k->section == SECTION_MATCH ? &r->match[k->index] : &r->action[k->index];
}

static int parse_oom(ParseState *st) {
        st->oom = st->failed = true;
        return -ENOMEM;
}

/* Records a problem; returns -EINVAL (or -ENOMEM), for "return report(...)". */
_printf_(3, 4) static int report(ParseState *st, unsigned line, const char *format, ...) {
        _cleanup_(freep) char *message = NULL;
        va_list ap;
        int k;

        st->failed = true;
        va_start(ap, format);
        k = vasprintf(&message, format, ap);
        va_end(ap);
        if (k < 0 || errors_add(st->errors, st->path, line, "%s", message) == -ENOMEM)
                return parse_oom(st);
        return -EINVAL;
}

_printf_(5, 6) static int invalid(ParseState *st, const KeyDef *k, const char *value, unsigned line,
                                  const char *format, ...) {
        _cleanup_(freep) char *reason = NULL;
        va_list ap;
        int n;

        va_start(ap, format);
        n = vasprintf(&reason, format, ap);
        va_end(ap);
        if (n < 0)
                return parse_oom(st);
        return report(st, line, "[%s] %s=%s: %s", section_name(k->section), key_name(k), value, reason);
}

/* Exactly 'digits' hex digits, as lspci prints IDs: "10de". */
static int parse_hex_exact(const char *s, size_t digits, uint32_t *ret) {
        if (strlen(s) != digits || strspn(s, HEX_DIGITS) != digits)
                return -EINVAL;
        return parse_u32(s, 16, ret);
}

static int parse_id(ParseState *st, const KeyDef *k, const char *value, unsigned line) {
        uint32_t v;

        if (parse_hex_exact(value, 4, &v) < 0)
                return invalid(st, k, value, line,
                               "expected 4 hex digits as lspci -n prints them, e.g. 10de");
        if (k->index == MATCH_VENDOR)
                st->rule.vendor = v;
        else
                st->rule.device = v;
        return 0;
}

static int parse_subsystem(ParseState *st, const KeyDef *k, const char *value, unsigned line) {
        const char *colon = strchr(value, ':');
        char vendor[5] = {};
        uint32_t v, d;

        if (!colon || colon - value != 4 || parse_hex_exact(colon + 1, 4, &d) < 0)
                goto invalid;
        memcpy(vendor, value, 4);
        if (parse_hex_exact(vendor, 4, &v) < 0)
                goto invalid;
        st->rule.subsystem_vendor = v;
        st->rule.subsystem_device = d;
        return 0;

invalid:
        return invalid(st, k, value, line,
                       "expected VENDOR:DEVICE of the subsystem, 4 hex digits each, e.g. 1458:403b");
}

/* "03", "0300" or "030000": class, subclass and programming interface from the left; the digits
 * given are the ones compared, unless "/MASK" (as many digits) says which bits to compare. */
static int parse_class(ParseState *st, const KeyDef *k, const char *value, unsigned line) {
        const char *slash = strchr(value, '/');
        size_t len = slash ? (size_t)(slash - value) : strlen(value);
        _cleanup_(freep) char *digits = strndup(value, len);
        uint32_t v, mask;
        unsigned shift;

        if (!digits)
                return parse_oom(st);
        if (!(len == 2 || len == 4 || len == 6) || parse_hex_exact(digits, len, &v) < 0)
                return invalid(st, k, value, line,
                               "expected a class as 2, 4 or 6 hex digits (class, subclass, programming "
                               "interface), optionally with /MASK, e.g. 03 or 0300/ff00");
        shift = (6 - len) * 4;
        mask = ((1u << (len * 4)) - 1) << shift;
        if (slash) {
                if (parse_hex_exact(slash + 1, len, &mask) < 0)
                        return invalid(st, k, value, line,
                                       "the mask must have as many hex digits as the class (%zu)", len);
                mask <<= shift;
                if (mask == 0)
                        return invalid(st, k, value, line,
                                       "a zero mask matches every device; leave Class= out instead");
        }
        v <<= shift;
        if ((v & ~mask) != 0)
                return invalid(st, k, value, line,
                               "the class has bits set outside the mask, so it can never match");

        st->rule.class_value = v;
        st->rule.class_mask = mask;
        return 0;
}

static int parse_address(ParseState *st, const KeyDef *k, const char *value, unsigned line) {
        static const char full[] = "[0-9a-f][0-9a-f][0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-1][0-9a-f].[0-7]";
        size_t ok = strspn(value, "0123456789abcdef:.*?[]!-");

        if (value[ok] != '\0')
                return invalid(st, k, value, line,
                               "unexpected '%c': expected a PCI address as sysfs names it (lowercase hex), "
                               "or a glob of one, e.g. 0000:01:00.*",
                               value[ok]);
        /* Without a wildcard it must be a whole address, or it could never match. */
        if (!strpbrk(value, "*?[") && fnmatch(full, value, 0) != 0)
                return invalid(st, k, value, line,
                               "not a full PCI address DOMAIN:BUS:DEVICE.FUNCTION such as 0000:01:00.0; use "
                               "a glob such as *:01:00.0 to leave parts out");
        return 0;
}

static bool driver_name_is_valid(const char *s) {
        size_t len = strlen(s);

        return len > 0 && len < 64 &&
               strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == len;
}

static int parse_drivers(ParseState *st, const KeyDef *k, const char *value, unsigned line) {
        _cleanup_(strv_freep) char **drivers = NULL;
        _cleanup_(freep) char *copy = strdup(value);
        char *saveptr = NULL;
        size_t n = 0;

        if (!copy)
                return parse_oom(st);
        for (char *t = strtok_r(copy, " \t", &saveptr); t; t = strtok_r(NULL, " \t", &saveptr)) {
                if (!driver_name_is_valid(t))
                        return invalid(st, k, value, line, "'%s' is not a driver name", t);
                if (strv_push_dup(&drivers, &n, t) < 0)
                        return parse_oom(st);
        }
        st->rule.drivers = TAKE_PTR(drivers);
        return 0;
}

/* "01-23-45-67-89-ab-cd-ef", as lspci -vv prints the Device Serial Number. */
static int parse_serial(ParseState *st, const KeyDef *k, const char *value, unsigned line) {
        uint64_t serial = 0;

        if (strlen(value) != 23)
                goto invalid;
        for (size_t i = 0; i < 8; i++) {
                const char *p = value + i * 3;
                char byte[3] = { p[0], p[1] };
                uint32_t b;

                if ((i < 7 && p[2] != '-') || parse_hex_exact(byte, 2, &b) < 0)
                        goto invalid;
                serial = (serial << 8) | b;
        }
        st->rule.serial = serial;
        return 0;

invalid:
        return invalid(st, k, value, line,
                       "expected 8 dash-separated hex bytes as lspci -vv prints the Device Serial Number, "
                       "e.g. 01-23-45-67-89-ab-cd-ef");
}

static int parse_number(ParseState *st, const KeyDef *k, const char *value, unsigned line) {
        uint32_t v;

        if (parse_u32(value, 10, &v) < 0 || v > INT_MAX)
                return invalid(st, k, value, line, "expected a decimal number");
        if (k->index == MATCH_GROUP)
                st->rule.group = v;
        else
                st->rule.numa_node = (int)v;
        return 0;
}

static int parse_domain_type(ParseState *st, const KeyDef *k, const char *value, unsigned line) {
        FOREACH_ARRAY(t, domain_types, ELEMENTSOF(domain_types)) {
                if (strcmp(*t, value) == 0) {
                        st->rule.domain_type = *t;
                        return 0;
                }
                if (strcasecmp(*t, value) == 0)
                        return invalid(st, k, value, line,
                                       "did you mean %s? The kernel's spelling is case-sensitive", *t);
        }
        return invalid(st, k, value, line, "expected identity, DMA, DMA-FQ or auto");
}

static int parse_passthrough(ParseState *st, const KeyDef *k, const char *value, unsigned line) {
        if (strcmp(value, "allow") == 0)
                st->rule.passthrough = PASSTHROUGH_ALLOW;
        else if (strcmp(value, "deny") == 0)
                st->rule.passthrough = PASSTHROUGH_DENY;
        else
                return invalid(st, k, value, line, "expected allow or deny");
        return 0;
}

static int parse_bind_at_boot(ParseState *st, const KeyDef *k, const char *value, unsigned line) {
        /* vfio-pci or a variant driver: mlx5_vfio_pci, hisi_acc_vfio_pci, nvgrace_gpu_vfio_pci, … */
        if (!driver_name_is_valid(value) || !strstr(value, "vfio"))
                return invalid(st, k, value, line,
                               "expected vfio-pci or a VFIO variant driver such as mlx5_vfio_pci");
        st->rule.bind_at_boot = strdup(value);
        if (!st->rule.bind_at_boot)
                return parse_oom(st);
        return 0;
}

static int parse_critical(ParseState *st, const KeyDef *k, const char *value, unsigned line) {
        if (parse_bool(value, &st->rule.critical) < 0)
                return invalid(st, k, value, line, "expected yes or no");
        /* Canonical, so that "Critical=true" and "Critical=yes" in two rules agree. */
        st->rule.action[POLICY_CRITICAL].value = strdup(st->rule.critical ? "yes" : "no");
        if (!st->rule.action[POLICY_CRITICAL].value)
                return parse_oom(st);
        return 0;
}

static const KeyDef key_defs[] = {
        { SECTION_MATCH, MATCH_VENDOR, parse_id },
        { SECTION_MATCH, MATCH_DEVICE, parse_id },
        { SECTION_MATCH, MATCH_SUBSYSTEM, parse_subsystem },
        { SECTION_MATCH, MATCH_CLASS, parse_class },
        { SECTION_MATCH, MATCH_ADDRESS, parse_address },
        { SECTION_MATCH, MATCH_DRIVER, parse_drivers },
        { SECTION_MATCH, MATCH_SERIAL, parse_serial },
        { SECTION_MATCH, MATCH_GROUP, parse_number },
        { SECTION_MATCH, MATCH_NUMA_NODE, parse_number },
        { SECTION_POLICY, POLICY_DOMAIN_TYPE, parse_domain_type },
        { SECTION_POLICY, POLICY_PASSTHROUGH, parse_passthrough },
        { SECTION_POLICY, POLICY_BIND_AT_BOOT, parse_bind_at_boot },
        { SECTION_POLICY, POLICY_CRITICAL, parse_critical },
};

static Section section_from_string(const char *s) {
        if (strcmp(s, "Match") == 0)
                return SECTION_MATCH;
        if (strcmp(s, "Policy") == 0)
                return SECTION_POLICY;
        return SECTION_NONE;
}

static int on_section(void *userdata, const char *name, unsigned line) {
        ParseState *st = userdata;

        switch (section_from_string(name)) {
        case SECTION_MATCH:
                if (st->rule.line > 0)
                        return report(st, line,
                                      "a second [Match] section (the first is at line %u): a file holds one "
                                      "rule; put the next rule in a file of its own",
                                      st->rule.line);
                st->rule.line = line;
                return 0;
        case SECTION_POLICY:
                if (st->policy_line > 0)
                        return report(st, line, "a second [Policy] section (the first is at line %u)",
                                      st->policy_line);
                st->policy_line = line;
                /* Reported, but its keys are still checked. */
                if (st->rule.line == 0)
                        (void)report(st, line, "[Policy] without a [Match] section before it");
                return 0;
        case SECTION_NONE:
                break;
        }
        if (strcasecmp(name, "Match") == 0 || strcasecmp(name, "Policy") == 0)
                return report(st, line, "unknown section [%s], did you mean [%s]?", name,
                              strcasecmp(name, "Match") == 0 ? "Match" : "Policy");
        return report(st, line, "unknown section [%s]; a rule has a [Match] and a [Policy] section", name);
}

static int on_key(void *userdata, const char *section, const char *key, const char *value, unsigned line) {
        ParseState *st = userdata;
        Section s = section_from_string(section);
        const KeyDef *k = NULL;
        RuleKey *rk;
        int r;

        FOREACH_ARRAY(i, key_defs, ELEMENTSOF(key_defs))
                if (strcmp(key_name(i), key) == 0) {
                        k = i;
                        break;
                }
        if (!k) {
                /* Keys are case-sensitive, like systemd's; point at the likely typo. */
                FOREACH_ARRAY(i, key_defs, ELEMENTSOF(key_defs))
                        if (strcasecmp(key_name(i), key) == 0)
                                return report(st, line, "unknown key %s= in [%s], did you mean %s=?", key,
                                              section, key_name(i));
                return report(st, line, "unknown key %s= in [%s]", key, section);
        }
        if (k->section != s)
                return report(st, line, "%s= belongs in the [%s] section, not in [%s]", key,
                              section_name(k->section), section);

        rk = rule_key(&st->rule, k);
        if (rk->line > 0)
                return report(st, line, "%s= is set twice, here and at line %u%s", key, rk->line,
                              k->section == SECTION_MATCH && k->index == MATCH_DRIVER
                                      ? "; list alternatives in one line: Driver=a b"
                                      : "");
        if (!*value)
                return invalid(st, k, value, line, "empty value");
        if (strchr(value, '#'))
                return invalid(st, k, value, line, "comments must be on a line of their own");

        r = k->parse(st, k, value, line);
        if (r < 0)
                return r;
        rk->line = line;
        if (!rk->value) {
                rk->value = strdup(value);
                if (!rk->value)
                        return parse_oom(st);
        }
        return 0;
}

static void on_ini_error(void *userdata, unsigned line, const char *message) {
        ParseState *st = userdata;

        (void)report(st, line, "%s", message);
}

/* The keys of one rule must not contradict each other; contradictions between rules are conflicts
 * the planner reports. */
static void check_rule(ParseState *st) {
        const Rule *r = &st->rule;
        bool any_match = false, any_action = false;

        for (size_t i = 0; i < _MATCH_KEY_MAX; i++)
                any_match = any_match || r->match[i].line > 0;
        for (size_t i = 0; i < _POLICY_ACTION_MAX; i++)
                any_action = any_action || r->action[i].line > 0;

        /* After other errors, a missing or empty section is most likely their consequence (a
         * misspelt header, a bad value): saying so as well would only be noise. */
        if (!st->failed) {
                if (r->line == 0 && st->policy_line == 0)
                        (void)report(st, 0,
                                     "no rule: a policy file holds one [Match] and one [Policy] section");
                if (r->line > 0 && !any_match)
                        (void)report(st, r->line,
                                     "[Match] has no keys; a rule that matched every device is not allowed");
                if (r->line > 0 && st->policy_line == 0)
                        (void)report(st, r->line,
                                     "[Match] without a [Policy] section: the rule would do nothing");
                if (st->policy_line > 0 && !any_action)
                        (void)report(st, st->policy_line, "[Policy] sets nothing");
        }

        if (r->critical) {
                static const PolicyAction touching[] = { POLICY_DOMAIN_TYPE, POLICY_BIND_AT_BOOT };

                FOREACH_ARRAY(a, touching, ELEMENTSOF(touching))
                        if (r->action[*a].line > 0)
                                (void)report(st, r->action[*a].line,
                                             "%s= contradicts Critical=yes at line %u: a critical group is "
                                             "never changed",
                                             action_names[*a], r->action[POLICY_CRITICAL].line);
                if (r->passthrough == PASSTHROUGH_ALLOW)
                        (void)report(st, r->action[POLICY_PASSTHROUGH].line,
                                     "Passthrough=allow contradicts Critical=yes at line %u: a critical "
                                     "group stays with the host",
                                     r->action[POLICY_CRITICAL].line);
        }
        if (r->passthrough == PASSTHROUGH_DENY && r->bind_at_boot)
                (void)report(st, r->action[POLICY_BIND_AT_BOOT].line,
                             "BindAtBoot= contradicts Passthrough=deny at line %u",
                             r->action[POLICY_PASSTHROUGH].line);
}

/* Reads one file into *ret. Problems go to errors: -EINVAL. */
static int rule_load(const char *path, PolicyErrors *errors, Rule *ret) {
        static const IniHandler handler = {
                .on_section = on_section,
                .on_key = on_key,
                .on_error = on_ini_error,
        };
        _cleanup_(fclosep) FILE *f = NULL;
        ParseState st = { .path = path, .errors = errors };
        int r;

        f = fopen(path, "re");
        if (!f)
                return errors_add(errors, path, 0, "cannot open: %s", strerror(errno));

        r = ini_read(f, &handler, &st);
        if (r == -EIO)
                (void)report(&st, 0, "cannot read: %s", strerror(EIO));
        else if (r != -ENOMEM)
                check_rule(&st);
        if (r == -ENOMEM || st.oom) {
                rule_done(&st.rule);
                return -ENOMEM;
        }
        if (st.failed) {
                rule_done(&st.rule);
                return -EINVAL;
        }

        st.rule.file = strdup(path);
        if (!st.rule.file) {
                rule_done(&st.rule);
                return -ENOMEM;
        }
        *ret = st.rule;
        return 0;
}

/* ---- files and directories ------------------------------------------------------------------- */

static bool name_is_policy_file(const char *name) {
        size_t len = strlen(name);

        return name[0] != '.' && len > 5 && strcmp(name + len - 5, ".conf") == 0;
}

/* Appends the rule in path to p. -EINVAL (recorded in errors) and -ENOMEM. */
static int policy_add_file(Policy *p, const char *path, PolicyErrors *errors) {
        Rule rule, *slot;
        int r;

        r = rule_load(path, errors, &rule);
        if (r < 0)
                return r;
        slot = array_append(&p->rules, &p->n_rules, sizeof(Rule));
        if (!slot) {
                rule_done(&rule);
                return -ENOMEM;
        }
        *slot = rule;
        return 0;
}

/* Adds every *.conf in dir. Bad files are recorded and the rest still read, so that one run reports
 * every problem. Returns -ENOMEM, or -EINVAL if anything was recorded. */
static int policy_add_dir(Policy *p, const char *dir, bool must_exist, PolicyErrors *errors) {
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_(closep) int fd = -1;
        int r, ret = 0;

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT && !must_exist)
                        return 0;
                return errors_add(errors, dir, 0, "cannot open directory: %s", strerror(errno));
        }
        r = read_dir_at(fd, ".", &names, NULL);
        if (r < 0)
                return r == -ENOMEM ? r
                                    : errors_add(errors, dir, 0, "cannot read directory: %s", strerror(-r));

        for (char **name = names; *name; name++) {
                _cleanup_(freep) char *path = NULL;

                if (!name_is_policy_file(*name))
                        continue;
                path = strprintf("%s/%s", dir, *name);
                if (!path)
                        return -ENOMEM;
                r = policy_add_file(p, path, errors);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        ret = r;
        }
        return ret;
}

static int policy_add_path(Policy *p, const char *path, PolicyErrors *errors) {
        struct stat st;

        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
                return policy_add_dir(p, path, true, errors);
        return policy_add_file(p, path, errors);
}

static int policy_publish(Policy *p, int r, Policy **ret) {
        if (r < 0) {
                policy_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

int policy_load_dir(const char *dir, Policy **ret, PolicyErrors *errors) {
        Policy *p = calloc(1, sizeof(Policy));

        if (!p)
                return -ENOMEM;
        return policy_publish(p, policy_add_dir(p, dir, false, errors), ret);
}

int policy_load_files(char *const *paths, Policy **ret, PolicyErrors *errors) {
        Policy *p = calloc(1, sizeof(Policy));
        int r = 0;

        if (!p)
                return -ENOMEM;
        for (char *const *path = paths; path && *path && r != -ENOMEM; path++) {
                int k = policy_add_path(p, *path, errors);

                if (k < 0)
                        r = k;
        }
        return policy_publish(p, r, ret);
}

int policy_check_files(char *const *paths, FILE *out) {
        _cleanup_(policy_errors_done) PolicyErrors errors = {};
        _cleanup_(policy_freep) Policy *p = NULL;
        int r;

        r = policy_load_files(paths, &p, &errors);
        if (r == -ENOMEM)
                return r;
        policy_errors_print(&errors, out);
        return (int)errors.n;
}

/* ---- output ---------------------------------------------------------------------------------- */

char *rule_match_to_string(const Rule *r) {
        _cleanup_(freep) char *s = strdup("");

        for (size_t i = 0; s && i < _MATCH_KEY_MAX; i++) {
                char *t;

                if (r->match[i].line == 0)
                        continue;
                t = strprintf("%s%s%s=%s", s, *s ? " " : "", match_key_to_string(i), r->match[i].value);
                free(s);
                s = t;
        }
        return TAKE_PTR(s);
}

static json_object *keys_to_json(const RuleKey *keys, size_t n, const char *const *names) {
        json_object *o = json_object_new_object();

        for (size_t i = 0; o && i < n; i++) {
                json_object *k;

                if (keys[i].line == 0)
                        continue;
                k = json_object_new_object();
                json_object_object_add(k, "value", json_object_new_string(keys[i].value));
                json_object_object_add(k, "line", json_object_new_int64(keys[i].line));
                json_object_object_add(o, names[i], k);
        }
        return o;
}

json_object *policy_to_json(const Policy *p) {
        json_object *o = json_object_new_object(), *rules = json_object_new_array();

        FOREACH_ARRAY(r, p->rules, p->n_rules) {
                json_object *rule = json_object_new_object();

                json_object_object_add(rule, "file", json_object_new_string(r->file));
                json_object_object_add(rule, "line", json_object_new_int64(r->line));
                json_object_object_add(rule, "match",
                                       keys_to_json(r->match, _MATCH_KEY_MAX, match_key_names));
                json_object_object_add(rule, "policy",
                                       keys_to_json(r->action, _POLICY_ACTION_MAX, action_names));
                json_object_array_add(rules, rule);
        }
        json_object_object_add(o, "rules", rules);
        return o;
}
