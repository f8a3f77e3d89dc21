/* path.h — what a path given to the simulator's tools is, in words for a message. The scenario
 * loader and the results recorder both refuse a path that is not a regular file (a FIFO would
 * block the reader, a device or directory is never what was meant) and say what it is. */
#ifndef SIM_PATH_H
#define SIM_PATH_H

#include <sys/types.h>

/* "a directory", "a FIFO (named pipe)", "a character device", "a block device", "a socket",
 * else "not a regular file"; static storage. For a mode that is not S_ISREG. */
const char *sim_path_kind(mode_t mode);

#endif
