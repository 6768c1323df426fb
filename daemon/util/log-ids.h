/* The MESSAGE_IDs of iommud's journal entries, one per kind of event. systemd/iommud.catalog
 * explains each (journalctl -x); an ID, once published, never changes meaning. */
#pragma once

#define LOG_ID_READY "0abbe01c2ffb4028adbe3f6873c41561"                /* serving */
#define LOG_ID_STOPPING "ee49836df5244c7388a86427c3378e0c"             /* SIGTERM: draining */
#define LOG_ID_RELOADED "e98f98bf5f3e4a7fa5718dc84b451123"             /* settings reloaded */
#define LOG_ID_OPERATION_STARTED "ac16e82b67004694b67001f02e5abac0"    /* handed to the executor */
#define LOG_ID_OPERATION_DONE "3e41b50b42d94e9b8fea30cfceaf8706"       /* every step done */
#define LOG_ID_OPERATION_DRY_RUN "58de77d8776d44fc83e0b1a4c9b087a5"    /* what would be done */
#define LOG_ID_OPERATION_REFUSED "9f8265430f78460083c68904e2d5ce01"    /* refused before any change */
#define LOG_ID_OPERATION_FAILED "4818c41b668e424e97779c8c086e00c6"     /* a step failed, rolled back */
#define LOG_ID_ROLLBACK_FAILED "ebc9abf3238c4b1f876abbdc214385b4"      /* the rollback failed too */
#define LOG_ID_OPERATION_RECOVERED "0d772719e312441ba5e74a47e1644f62"  /* rolled back after a crash */
#define LOG_ID_OPERATION_INTERRUPTED "aaaa5ad3f2554ada8e5b27482bfb9481" /* ended by a crash, no record */
#define LOG_ID_BLOCK_REAPPLIED "3d763def4a864b37b4bed4a12d8e6f91"      /* a blocked device came back */
#define LOG_ID_HOST_PROBLEMS "b35ab3a09f1e41ed851f8b52ac1d7874"        /* files that could not be read */
#define LOG_ID_WATCHER_DROPPED "1c13784387b6447bb01870d29e937c12"      /* a Watch client fell behind */
