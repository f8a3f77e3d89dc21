/* version.h — the simulator's version string (recorded in results). */
#ifndef SIM_VERSION_H
#define SIM_VERSION_H
const char *sim_version(void);
#endif
