/* frame_pull.h — frame.h's pull mode driven as the session drives it (reserve, write at most
 * the room offered, commit, take every whole frame out), over a stream held in memory, with
 * the checks a reader relies on recorded rather than asserted: so a CUnit test and a fuzz
 * target judge the same run each in its own way. Test code. */
#ifndef MESH_TEST_FRAME_PULL_H
#define MESH_TEST_FRAME_PULL_H

#include <stddef.h>
#include <stdint.h>

#include "core/frame.h"

typedef struct mesh_pull_run {
    int rc;         /* MESH_OK (stream consumed, maybe mid-frame) or the decoder's failure */
    size_t partial; /* mesh_frame_partial at the end */
    int crossed;    /* a reserve offered room past the end of a frame of known length */
    int outside;    /* a frame handed out not inside the decoder's buffer */
    int no_room;    /* a reserve gave no room or no pointer */
} mesh_pull_run;

/* Feed the n bytes of s to d (initialised by the caller, left as the run ends: free it) in
 * writes of at most step bytes, asking for chunk when no length is known; cb gets every
 * frame (its return value is ignored). Returns what it records in *out. */
void mesh_frame_pull_stream(mesh_frame_dec *d, const uint8_t *s, size_t n, size_t step,
                            size_t chunk, mesh_frame_cb cb, void *ud, mesh_pull_run *out);

#endif
