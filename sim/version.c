/* version.c — the simulator's version string (recorded in results). */
#include "sim/version.h"

const char *sim_version(void)
{
    return "meshara-sim 0.1.0";
}
