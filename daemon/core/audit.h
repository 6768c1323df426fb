/* The person behind a call, for the audit line of an operation, IOMMUD_PEER= and the history. */
#pragma once

#include <sys/types.h>

/* base, then what /proc tells about the local process pid: its login uid (the person who logged in,
 * kept by the kernel across sudo and su), the user sudo ran it for (SUDO_USER in its environment)
 * and its systemd unit. "unix uid=0 gid=0 pid=4242" becomes "unix uid=0 gid=0 pid=4242
 * loginuid=1000 sudo_user=alice unit=session-3.scope"; facts that cannot be read are left out.
 * pid <= 0: base alone. NULL on OOM. */
char *audit_describe_process(const char *base, pid_t pid);
