/* The states a group is in, as core judges them (ARCHITECTURE.md, "Group state machine"). */
#pragma once

typedef enum GroupStateKind {
        GROUP_HOST,
        GROUP_VFIO_READY,
        GROUP_BLOCKED,
        GROUP_TRANSITIONING,
        GROUP_IN_USE, /* a running guest (libvirt domain) has a member assigned */
        GROUP_FAILED, /* an operation left the group neither as it was nor as intended (a kernel write
                       * that did not return, a failed rollback): its intent record is kept for an
                       * admin, and operations on the group are refused */
} GroupStateKind;

const char *group_state_to_string(GroupStateKind s); /* "host", "vfio-ready", "blocked", "transitioning", "in-use", "failed" */
