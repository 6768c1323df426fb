/* The states a group is in, as core judges them (ARCHITECTURE.md, "Group state machine"). */
#pragma once

typedef enum GroupStateKind {
        GROUP_HOST,
        GROUP_VFIO_READY,
        GROUP_BLOCKED,
        GROUP_TRANSITIONING,
        GROUP_IN_USE, /* a running guest (libvirt domain) has a member assigned */
} GroupStateKind;

const char *group_state_to_string(GroupStateKind s); /* "host", "vfio-ready", "blocked", "transitioning", "in-use" */
