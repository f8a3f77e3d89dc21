/* nat_pair.c — sim_nat_pair_paths (nat.h): which ways a direct TCP connection from one node to
 * another gets through the NATs in front of each, from the chains alone. */
#include "sim/nat.h"

#include <stddef.h>

sim_nat_hop sim_nat_hop_of(const sim_nat_cfg *cfg)
{
    sim_nat_hop h = {0};
    if (cfg) {
        h.mapping = cfg->mapping;
        h.filtering = cfg->filtering;
        h.services = (uint8_t)((cfg->portmap ? SIM_NAT_SVC_UPNP : 0) |
                               (cfg->natpmp ? SIM_NAT_SVC_NATPMP : 0));
    }
    return h;
}

static size_t hops(const sim_nat_chain *c)
{
    if (!c)
        return 0;
    return c->n < SIM_NET_MAX_LAN_DEPTH ? c->n : SIM_NET_MAX_LAN_DEPTH;
}

/* Every NAT maps independently of the destination: what a third party saw is what a peer
 * will be sent from. */
static int predictable(const sim_nat_chain *c)
{
    for (size_t i = 0; i < hops(c); i++)
        if (c->hop[i].mapping != SIM_NAT_ENDPOINT_INDEPENDENT)
            return 0;
    return 1;
}

/* A SYN from `from` to the address a third party saw `to`'s listening port as — the mapping
 * `to`'s registration made at each of its NATs: does it reach `to`'s host? to_sent: `to` sent
 * towards from's observed address first (the other half of a punch), which permits `from`
 * at a NAT only where that packet used the registration's mapping, i.e. while every NAT up
 * to this one maps independently of the destination. */
static int reaches(const sim_nat_chain *from, const sim_nat_chain *to, int to_sent)
{
    int same = 1;
    for (size_t i = 0; i < hops(to); i++) {
        same = same && to->hop[i].mapping == SIM_NAT_ENDPOINT_INDEPENDENT;
        int f = to->hop[i].filtering;
        if (f == SIM_NAT_ENDPOINT_INDEPENDENT)
            continue;
        if (!to_sent || !same)
            return 0;
        if (f == SIM_NAT_ADDRESS_PORT_DEPENDENT && !predictable(from))
            return 0; /* `to` permitted the port it predicted, the SYN comes from another */
    }
    return 1;
}

/* Both connect at once. Predictable on both sides: either SYN getting through is enough (the
 * other side's answer leaves from the port the first side aimed at). One side X predictable,
 * the other Y not: Y's SYN comes from a port X did not aim at, so X's listener takes it and
 * its answer completes Y's open — unless X's SYN got to Y first: Y's open then sits in
 * SYN-RECEIVED for X's other connection and the two opens never meet. */
static int punched(const sim_nat_chain *a, const sim_nat_chain *b)
{
    int pa = predictable(a), pb = predictable(b);
    int ra = reaches(a, b, 1), rb = reaches(b, a, 1);
    if (pa && pb)
        return ra || rb;
    if (pa)
        return rb && !ra;
    if (pb)
        return ra && !rb;
    return 0; /* every answer leaves from a port the other side did not aim at */
}

unsigned sim_nat_pair_paths(const sim_nat_chain *a, const sim_nat_chain *b)
{
    unsigned p = 0;
    if (hops(b) == 0)
        p |= SIM_NAT_PATH_DIRECT;
    if (predictable(b) && reaches(a, b, 0))
        p |= SIM_NAT_PATH_OBSERVED;
    if (punched(a, b))
        p |= SIM_NAT_PATH_PUNCHED;
    if (hops(b) == 1 && b->hop[0].services)
        p |= SIM_NAT_PATH_MAPPED;
    return p;
}

const char *sim_nat_path_name(unsigned bit)
{
    switch (bit) {
    case SIM_NAT_PATH_DIRECT:
        return "direct";
    case SIM_NAT_PATH_OBSERVED:
        return "observed";
    case SIM_NAT_PATH_PUNCHED:
        return "punched";
    case SIM_NAT_PATH_MAPPED:
        return "mapped";
    default:
        return "?";
    }
}
