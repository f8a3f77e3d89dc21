/* test_peer.c — signed peer records (node/core/peer.c): the exact signed byte layout, every
 * tampered field refused, node id derived from the key, protobuf round trips, canonical
 * address text, PeerList encode/decode keeping only verified records, and the size limits. */
#include "mesh_test.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "core/peer.h"
#include "core/wire.h"

static mesh_identity *ALICE, *BOB;
static mesh_addr ADDRS[3];

static int suite_init(void)
{
    mesh_test_env t;
    mesh_test_env_init(&t, 7);
    if (mesh_identity_generate(&ALICE, &t.env) != MESH_OK ||
        mesh_identity_generate(&BOB, &t.env) != MESH_OK)
        return -1;
    ADDRS[0] = mesh_addr_v4(0x0a000001, 4433);
    ADDRS[1] = mesh_addr_v4(0xc0a80102, 443);
    if (mesh_addr_parse(&ADDRS[2], "[2001:db8::7]:9000") != MESH_OK)
        return -1;
    return 0;
}

static int suite_clean(void)
{
    mesh_identity_free(ALICE);
    mesh_identity_free(BOB);
    return 0;
}

/* The longest host name: 63-byte labels of 'a' and a last one of 'b's, 253 bytes in all. */
static void longest_name(char out[MESH_HOST_NAME_MAX + 1])
{
    memset(out, 'a', MESH_HOST_NAME_MAX);
    for (size_t i = 63; i < MESH_HOST_NAME_MAX; i += 64)
        out[i] = '.';
    out[MESH_HOST_NAME_MAX - 1] = 'b';
    out[MESH_HOST_NAME_MAX] = '\0';
}

static mesh_peer_record alice_record(uint64_t seq)
{
    mesh_peer_record r;
    CU_ASSERT_EQUAL_FATAL(mesh_peer_record_make(&r, ALICE, ADDRS, 3, seq), MESH_OK);
    return r;
}

static void test_make_verify(void)
{
    mesh_peer_record r = alice_record(5);
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_OK);
    CU_ASSERT_EQUAL(r.seq, 5);
    CU_ASSERT_EQUAL(r.naddrs, 3);
    CU_ASSERT_TRUE(mesh_addr_equal(&r.addrs[2], &ADDRS[2]));
    /* node id = SHA-256(public key), the identity's id */
    uint8_t h[32];
    SHA256(mesh_identity_pubkey(ALICE), 32, h);
    CU_ASSERT_EQUAL(memcmp(r.node_id, h, 32), 0);
    CU_ASSERT_EQUAL(memcmp(r.node_id, mesh_identity_node_id(ALICE), 32), 0);
    /* no addresses is a valid record too (a node that only dials out) */
    mesh_peer_record none;
    CU_ASSERT_EQUAL(mesh_peer_record_make(&none, ALICE, NULL, 0, 1), MESH_OK);
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&none), MESH_OK);
    /* signing is deterministic: the same content gives the same record */
    mesh_peer_record again = alice_record(5);
    CU_ASSERT_TRUE(mesh_peer_record_equal(&r, &again));
    CU_ASSERT_FALSE(mesh_peer_record_equal(&r, &none));
}

/* The start of Alice's signed bytes, by hand: context, key, seq. Returns its length. */
static size_t signed_head(uint8_t *msg, uint64_t seq)
{
    memcpy(msg, "meshara-peer-v3", 15);
    memcpy(msg + 15, mesh_identity_pubkey(ALICE), 32);
    for (int i = 0; i < 8; i++)
        msg[15 + 32 + i] = (uint8_t)(seq >> (56 - 8 * i));
    return 15 + 32 + 8;
}

/* The signature covers exactly the layout peer.h documents: rebuild it by hand. */
static void test_signed_layout(void)
{
    mesh_peer_record r = alice_record(0x0102030405060708ULL);
    uint8_t msg[512];
    size_t o = signed_head(msg, 0x0102030405060708ULL);
    msg[o++] = 3;
    const char *texts[] = {"10.0.0.1:4433", "192.168.1.2:443", "[2001:db8::7]:9000"};
    for (int i = 0; i < 3; i++) {
        msg[o++] = (uint8_t)strlen(texts[i]);
        memcpy(msg + o, texts[i], strlen(texts[i]));
        o += strlen(texts[i]);
    }
    msg[o++] = 0; /* no relays */
    msg[o++] = 0; /* no host name */
    CU_ASSERT_EQUAL(mesh_ed25519_verify(r.pubkey, msg, o, r.sig), MESH_OK);
    msg[15 + 32 + 7] ^= 1; /* seq's low byte */
    CU_ASSERT_EQUAL(mesh_ed25519_verify(r.pubkey, msg, o, r.sig), MESH_ERR_BAD_SIGNATURE);
}

static void test_tampered(void)
{
    const mesh_peer_record good = alice_record(9);
    mesh_peer_record r;

    /* someone else's key on Alice's record (node id made to match it) */
    r = good;
    memcpy(r.pubkey, mesh_identity_pubkey(BOB), 32);
    mesh_node_id_of(r.pubkey, r.node_id);
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_ERR_BAD_SIGNATURE);
    /* a node id that is not the key's */
    r = good;
    r.node_id[31] ^= 0x80;
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_ERR_BAD_SIGNATURE);
    /* an address changed, added, dropped or reordered */
    r = good;
    r.addrs[1].port++;
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_ERR_BAD_SIGNATURE);
    r = good;
    r.addrs[0].ip[3] = 99;
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_ERR_BAD_SIGNATURE);
    r = good;
    r.naddrs = 2;
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_ERR_BAD_SIGNATURE);
    r = good;
    r.addrs[3] = ADDRS[0];
    r.naddrs = 4;
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_ERR_BAD_SIGNATURE);
    r = good;
    r.addrs[0] = good.addrs[1];
    r.addrs[1] = good.addrs[0];
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_ERR_BAD_SIGNATURE);
    /* a newer seq claimed without a new signature */
    r = good;
    r.seq++;
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_ERR_BAD_SIGNATURE);
    /* a flipped signature bit, first and last byte */
    r = good;
    r.sig[0] ^= 1;
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_ERR_BAD_SIGNATURE);
    r = good;
    r.sig[63] ^= 0x40;
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_ERR_BAD_SIGNATURE);
    /* a structurally broken record */
    r = good;
    r.naddrs = MESH_PEER_MAX_ADDRS + 1;
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_ERR_INVAL);
    r = good;
    r.addrs[2].family = MESH_AF_NONE;
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_ERR_INVAL);
}

static void test_make_limits(void)
{
    mesh_addr many[MESH_PEER_MAX_ADDRS + 1];
    for (int i = 0; i <= MESH_PEER_MAX_ADDRS; i++)
        many[i] = mesh_addr_v4(0x0a000000u + (uint32_t)i, (uint16_t)(1000 + i));
    mesh_peer_record r;
    memset(&r, 0xAB, sizeof r);
    CU_ASSERT_EQUAL(mesh_peer_record_make(&r, ALICE, many, MESH_PEER_MAX_ADDRS + 1, 1),
                    MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(r.seq, 0xABABABABABABABABULL); /* untouched */
    CU_ASSERT_EQUAL(mesh_peer_record_make(&r, ALICE, many, MESH_PEER_MAX_ADDRS, 1), MESH_OK);
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_OK);
    mesh_addr bad = many[0];
    bad.family = MESH_AF_NONE;
    CU_ASSERT_EQUAL(mesh_peer_record_make(&r, ALICE, &bad, 1, 1), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_peer_record_make(&r, ALICE, NULL, 1, 1), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_peer_record_make(&r, NULL, many, 1, 1), MESH_ERR_INVAL);
    /* the longest address text (an IPv6 address without zero groups) x 8 signs and verifies */
    mesh_addr longest[MESH_PEER_MAX_ADDRS];
    for (int i = 0; i < MESH_PEER_MAX_ADDRS; i++) {
        CU_ASSERT_EQUAL_FATAL(
            mesh_addr_parse(&longest[i], "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
            MESH_OK);
        longest[i].ip[0] = (uint8_t)(0xf0 + i);
    }
    CU_ASSERT_EQUAL(mesh_peer_record_make(&r, ALICE, longest, MESH_PEER_MAX_ADDRS, 2), MESH_OK);
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_OK);
}

/* Pack a PeerRecord message and unpack it again, as the wire would. */
static Meshara__Wire__PeerRecord *pb_wire(const Meshara__Wire__PeerRecord *pb)
{
    size_t n = meshara__wire__peer_record__get_packed_size(pb);
    uint8_t *buf = malloc(n + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_EQUAL_FATAL(meshara__wire__peer_record__pack(pb, buf), n);
    Meshara__Wire__PeerRecord *d = meshara__wire__peer_record__unpack(NULL, n, buf);
    free(buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    return d;
}

static void test_pb_round_trip(void)
{
    mesh_peer_record r = alice_record(77);
    Meshara__Wire__PeerRecord pb;
    mesh_peer_pb_scratch sc;
    mesh_peer_record_to_pb(&r, &pb, &sc);
    CU_ASSERT_EQUAL(pb.n_addresses, 3);
    CU_ASSERT_STRING_EQUAL(pb.addresses[2], "[2001:db8::7]:9000");
    Meshara__Wire__PeerRecord *d = pb_wire(&pb);
    mesh_peer_record back;
    CU_ASSERT_EQUAL(mesh_peer_record_from_pb(d, &back), MESH_OK);
    CU_ASSERT_TRUE(mesh_peer_record_equal(&r, &back));
    meshara__wire__peer_record__free_unpacked(d, NULL);
}

/* "Via relay": the relays are signed after the addresses (text, then key), travel in
 * PeerRecord.relays and come back equal; changing a relay's address or key, or dropping one,
 * breaks the signature; a relay key of the wrong size or too many relays are malformed. */
static void test_relays(void)
{
    mesh_peer_relay rl[2];
    memset(rl, 0, sizeof rl);
    (void)mesh_addr_parse(&rl[0].addr, "203.0.113.5:443");
    memset(rl[0].key, 0xAB, 32);
    (void)mesh_addr_parse(&rl[1].addr, "[2001:db8::9]:8443");
    memset(rl[1].key, 0xCD, 32);
    mesh_peer_record r;
    CU_ASSERT_EQUAL_FATAL(mesh_peer_record_make_relayed(&r, ALICE, NULL, 0, rl, 2, 4), MESH_OK);
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_OK);
    uint8_t msg[512];
    size_t o = signed_head(msg, 4);
    msg[o++] = 0; /* no addresses of its own */
    msg[o++] = 2;
    const char *texts[] = {"203.0.113.5:443", "[2001:db8::9]:8443"};
    for (int i = 0; i < 2; i++) {
        msg[o++] = (uint8_t)strlen(texts[i]);
        memcpy(msg + o, texts[i], strlen(texts[i]));
        o += strlen(texts[i]);
        memcpy(msg + o, rl[i].key, 32);
        o += 32;
    }
    msg[o++] = 0; /* no host name */
    CU_ASSERT_EQUAL(mesh_ed25519_verify(r.pubkey, msg, o, r.sig), MESH_OK);

    mesh_peer_record t = r;
    t.relays[1].key[0] ^= 1;
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&t), MESH_ERR_BAD_SIGNATURE);
    t = r;
    t.relays[0].addr.port++;
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&t), MESH_ERR_BAD_SIGNATURE);
    t = r;
    t.nrelays = 1;
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&t), MESH_ERR_BAD_SIGNATURE);
    CU_ASSERT_FALSE(mesh_peer_record_equal(&r, &t));

    Meshara__Wire__PeerRecord pb;
    mesh_peer_pb_scratch sc;
    mesh_peer_record_to_pb(&r, &pb, &sc);
    CU_ASSERT_EQUAL_FATAL(pb.n_relays, 2);
    CU_ASSERT_STRING_EQUAL(pb.relays[1]->address, "[2001:db8::9]:8443");
    Meshara__Wire__PeerRecord *d = pb_wire(&pb);
    mesh_peer_record back;
    CU_ASSERT_EQUAL(mesh_peer_record_from_pb(d, &back), MESH_OK);
    CU_ASSERT_TRUE(mesh_peer_record_equal(&r, &back));
    meshara__wire__peer_record__free_unpacked(d, NULL);
    sc.refs[0].public_key.len = 31;
    CU_ASSERT_EQUAL(mesh_peer_record_from_pb(&pb, &back), MESH_ERR_MALFORMED);
    sc.refs[0].public_key.len = 32;
    sc.refs[1].address = "[2001:0db8::9]:8443"; /* not canonical */
    CU_ASSERT_EQUAL(mesh_peer_record_from_pb(&pb, &back), MESH_ERR_MALFORMED);
    mesh_peer_relay many[MESH_PEER_MAX_RELAYS + 1];
    memset(many, 0, sizeof many);
    for (size_t i = 0; i <= MESH_PEER_MAX_RELAYS; i++)
        many[i].addr = rl[0].addr;
    CU_ASSERT_EQUAL(
        mesh_peer_record_make_relayed(&t, ALICE, NULL, 0, many, MESH_PEER_MAX_RELAYS + 1, 5),
        MESH_ERR_INVAL);
    /* the largest list: 64 records of 8 addresses, 4 relays and a host name, all in their
     * longest text */
    mesh_addr longest[MESH_PEER_MAX_ADDRS];
    for (size_t i = 0; i < MESH_PEER_MAX_ADDRS; i++)
        (void)mesh_addr_parse(&longest[i], "[2001:db8:1234:5678:9abc:def0:1234:5678]:65535");
    for (size_t i = 0; i < MESH_PEER_MAX_RELAYS; i++)
        many[i].addr = longest[0];
    char name[MESH_HOST_NAME_MAX + 1];
    longest_name(name);
    CU_ASSERT_EQUAL_FATAL(mesh_peer_record_make_named(&t, ALICE, longest, MESH_PEER_MAX_ADDRS, many,
                                                      MESH_PEER_MAX_RELAYS, name, 6),
                          MESH_OK);
    mesh_peer_record *list = calloc(2 * MESH_PEER_LIST_MAX, sizeof *list);
    CU_ASSERT_PTR_NOT_NULL_FATAL(list);
    for (size_t i = 0; i < MESH_PEER_LIST_MAX; i++)
        list[i] = t;
    uint8_t *buf = NULL;
    size_t len = 0, n = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_peer_list_encode(list, MESH_PEER_LIST_MAX, &buf, &len), MESH_OK);
    CU_ASSERT(len <= MESH_PEER_LIST_MAX_BYTES);
    CU_ASSERT_EQUAL(
        mesh_peer_list_decode(buf, len, list + MESH_PEER_LIST_MAX, MESH_PEER_LIST_MAX, &n, NULL),
        MESH_OK);
    CU_ASSERT_EQUAL(n, MESH_PEER_LIST_MAX);
    free(buf);
    free(list);
}

/* A host name, carried, signed (its length byte and text last in the signed bytes), refused
 * when tampered with; a bad one from the wire is MESH_ERR_BAD_HOST_NAME, signed or not. */
static void test_host_name(void)
{
    mesh_peer_record r, back;
    CU_ASSERT_EQUAL_FATAL(
        mesh_peer_record_make_named(&r, ALICE, ADDRS, 1, NULL, 0, "n1.example.net", 8), MESH_OK);
    CU_ASSERT_STRING_EQUAL(r.host_name, "n1.example.net");
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&r), MESH_OK);
    uint8_t msg[512];
    size_t o = signed_head(msg, 8);
    msg[o++] = 1;
    msg[o++] = (uint8_t)strlen("10.0.0.1:4433");
    memcpy(msg + o, "10.0.0.1:4433", 13);
    o += 13;
    msg[o++] = 0; /* no relays */
    msg[o++] = 14;
    memcpy(msg + o, "n1.example.net", 14);
    o += 14;
    CU_ASSERT_EQUAL(mesh_ed25519_verify(r.pubkey, msg, o, r.sig), MESH_OK);
    /* changed, dropped or added: the signature no longer holds */
    mesh_peer_record t = r;
    t.host_name[1] = '2';
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&t), MESH_ERR_BAD_SIGNATURE);
    t = r;
    t.host_name[0] = '\0';
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&t), MESH_ERR_BAD_SIGNATURE);
    CU_ASSERT_FALSE(mesh_peer_record_equal(&t, &r));
    t = alice_record(8);
    strcpy(t.host_name, "n1.example.net");
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&t), MESH_ERR_BAD_SIGNATURE);
    t = r;
    memset(t.host_name, 'a', sizeof t.host_name); /* no terminator */
    CU_ASSERT_EQUAL(mesh_peer_record_verify(&t), MESH_ERR_INVAL);
    /* the protobuf form carries it (field 6) and gives it back */
    Meshara__Wire__PeerRecord pb;
    mesh_peer_pb_scratch sc;
    mesh_peer_record_to_pb(&r, &pb, &sc);
    CU_ASSERT_STRING_EQUAL(pb.host_name, "n1.example.net");
    CU_ASSERT_EQUAL(mesh_peer_record_from_pb(&pb, &back), MESH_OK);
    CU_ASSERT_TRUE(mesh_peer_record_equal(&r, &back));
    /* names that are not DNS host names: refused when made, and named when they arrive */
    static const char *const bad[] = {"bad_name.org", "-a.example", "a-.example", "a..b", "a.b.",
                                      "10.0.0.1",     "[::1]",      "x y",        ""};
    char longer[MESH_HOST_NAME_MAX + 2];
    longest_name(longer);
    strcat(longer, "x");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CU_ASSERT_EQUAL(mesh_host_name_check(bad[i]), MESH_ERR_INVAL);
        if (bad[i][0]) /* "" is none: a record without a name */
            CU_ASSERT_EQUAL(mesh_peer_record_make_named(&t, ALICE, ADDRS, 1, NULL, 0, bad[i], 8),
                            MESH_ERR_INVAL);
        mesh_peer_record_to_pb(&r, &pb, &sc);
        pb.host_name = (char *)bad[i];
        memset(&back, 0x5A, sizeof back);
        int rc = mesh_peer_record_from_pb(&pb, &back);
        CU_ASSERT_EQUAL(rc, bad[i][0] ? MESH_ERR_BAD_HOST_NAME : MESH_ERR_BAD_SIGNATURE);
        CU_ASSERT_EQUAL(back.seq, 0x5A5A5A5A5A5A5A5AULL);
    }
    CU_ASSERT_EQUAL(mesh_host_name_check(longer), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_host_name_check(NULL), MESH_ERR_INVAL);
    static const char *const good[] = {"localhost", "n0.example.net", "A-1.Example.ORG", "x.y2k",
                                       "1.2.3.com"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CU_ASSERT_EQUAL(mesh_host_name_check(good[i]), MESH_OK);
    longer[MESH_HOST_NAME_MAX] = '\0';
    CU_ASSERT_EQUAL(mesh_host_name_check(longer), MESH_OK);
}

/* from_pb on r's protobuf form after edit() changed it; returns the code, out untouched. */
static int from_edited(const mesh_peer_record *r, void (*edit)(Meshara__Wire__PeerRecord *))
{
    Meshara__Wire__PeerRecord pb;
    mesh_peer_pb_scratch sc;
    mesh_peer_record_to_pb(r, &pb, &sc);
    char *ptrs[MESH_PEER_MAX_ADDRS + 1] = {0}; /* room for an edit that adds one */
    memcpy(ptrs, sc.ptrs, pb.n_addresses * sizeof *ptrs);
    pb.addresses = ptrs;
    edit(&pb);
    mesh_peer_record out;
    memset(&out, 0x5A, sizeof out);
    int rc = mesh_peer_record_from_pb(&pb, &out);
    if (rc != MESH_OK)
        CU_ASSERT_EQUAL(out.seq, 0x5A5A5A5A5A5A5A5AULL);
    return rc;
}

static void edit_short_key(Meshara__Wire__PeerRecord *pb)
{
    pb->public_key.len = 31;
}
static void edit_long_sig(Meshara__Wire__PeerRecord *pb)
{
    pb->signature.len = 65;
}
static void edit_no_sig(Meshara__Wire__PeerRecord *pb)
{
    pb->signature.len = 0;
}
static void edit_bad_addr(Meshara__Wire__PeerRecord *pb)
{
    pb->addresses[1] = "10.0.0.1";
}
static void edit_noncanon_v6(Meshara__Wire__PeerRecord *pb)
{
    pb->addresses[2] = "[2001:0db8:0:0:0:0:0:7]:9000"; /* same address, other spelling */
}
static void edit_long_addr(Meshara__Wire__PeerRecord *pb)
{
    static char s[200];
    memset(s, '1', sizeof s - 1);
    pb->addresses[0] = s;
}
static void edit_seq(Meshara__Wire__PeerRecord *pb)
{
    pb->seq++;
}
static void edit_nine_addrs(Meshara__Wire__PeerRecord *pb)
{
    for (size_t i = pb->n_addresses; i <= MESH_PEER_MAX_ADDRS; i++)
        pb->addresses[i] = "10.9.9.9:1";
    pb->n_addresses = MESH_PEER_MAX_ADDRS + 1;
}
static void edit_nothing(Meshara__Wire__PeerRecord *pb)
{
    (void)pb;
}

static void test_pb_refused(void)
{
    mesh_peer_record r = alice_record(3);
    CU_ASSERT_EQUAL(from_edited(&r, edit_nothing), MESH_OK);
    CU_ASSERT_EQUAL(from_edited(&r, edit_short_key), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(from_edited(&r, edit_long_sig), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(from_edited(&r, edit_no_sig), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(from_edited(&r, edit_bad_addr), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(from_edited(&r, edit_noncanon_v6), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(from_edited(&r, edit_long_addr), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(from_edited(&r, edit_nine_addrs), MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(from_edited(&r, edit_seq), MESH_ERR_BAD_SIGNATURE);
    /* a record claiming someone else's key: Bob's key with Alice's signature */
    mesh_peer_record claim = r;
    memcpy(claim.pubkey, mesh_identity_pubkey(BOB), 32);
    CU_ASSERT_EQUAL(from_edited(&claim, edit_nothing), MESH_ERR_BAD_SIGNATURE);
    /* node_id is derived, never read from input: a wrong one in the struct is not carried */
    mesh_peer_record wrong_id = r;
    memset(wrong_id.node_id, 0, 32);
    CU_ASSERT_EQUAL(from_edited(&wrong_id, edit_nothing), MESH_OK);
}

/* n records: Bob's and Alice's with seqs 1..; *bad (if >= 0) gets a tampered seq. */
static void make_records(mesh_peer_record *recs, size_t n, long bad)
{
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL_FATAL(
            mesh_peer_record_make(&recs[i], i % 2 ? BOB : ALICE, ADDRS, 1 + i % 3, i + 1), MESH_OK);
        if ((long)i == bad)
            recs[i].seq += 100;
    }
}

static void test_list(void)
{
    mesh_peer_record recs[6], out[6];
    make_records(recs, 6, 2);
    uint8_t *buf = NULL;
    size_t len = 0, n = 99, dropped = 99;
    CU_ASSERT_EQUAL_FATAL(mesh_peer_list_encode(recs, 6, &buf, &len), MESH_OK);
    CU_ASSERT_TRUE(len < MESH_PEER_LIST_MAX_BYTES);
    CU_ASSERT_EQUAL(mesh_peer_list_decode(buf, len, out, 6, &n, &dropped), MESH_OK);
    CU_ASSERT_EQUAL(n, 5);
    CU_ASSERT_EQUAL(dropped, 1);
    CU_ASSERT_TRUE(mesh_peer_record_equal(&out[1], &recs[1]));
    CU_ASSERT_TRUE(mesh_peer_record_equal(&out[2], &recs[3])); /* the bad one is skipped */
    CU_ASSERT_TRUE(mesh_peer_record_equal(&out[4], &recs[5]));
    /* a smaller cap keeps the first verified ones and counts the rest as dropped */
    CU_ASSERT_EQUAL(mesh_peer_list_decode(buf, len, out, 2, &n, &dropped), MESH_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(dropped, 4);
    CU_ASSERT_EQUAL(mesh_peer_list_decode(buf, len, out, 6, &n, NULL), MESH_OK);
    free(buf);

    /* the empty list */
    CU_ASSERT_EQUAL_FATAL(mesh_peer_list_encode(NULL, 0, &buf, &len), MESH_OK);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_EQUAL(mesh_peer_list_decode(buf, len, out, 6, &n, &dropped), MESH_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(dropped, 0);
    free(buf);
}

static void test_list_limits(void)
{
    mesh_peer_record *recs = calloc(MESH_PEER_LIST_MAX + 1, sizeof *recs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(recs);
    make_records(recs, MESH_PEER_LIST_MAX + 1, -1);
    uint8_t *buf = NULL;
    size_t len = 0, n = 0, dropped = 0;
    CU_ASSERT_EQUAL(mesh_peer_list_encode(recs, MESH_PEER_LIST_MAX + 1, &buf, &len),
                    MESH_ERR_INVAL);
    CU_ASSERT_EQUAL_FATAL(mesh_peer_list_encode(recs, MESH_PEER_LIST_MAX, &buf, &len), MESH_OK);
    CU_ASSERT_EQUAL(mesh_peer_list_decode(buf, len, recs, MESH_PEER_LIST_MAX, &n, &dropped),
                    MESH_OK);
    CU_ASSERT_EQUAL(n, MESH_PEER_LIST_MAX);
    free(buf);

    /* 65 entries, packed by hand past the encoder's check: malformed, nothing kept */
    make_records(recs, MESH_PEER_LIST_MAX + 1, -1);
    Meshara__Wire__PeerRecord *pbs = calloc(MESH_PEER_LIST_MAX + 1, sizeof *pbs);
    Meshara__Wire__PeerRecord **ptrs = calloc(MESH_PEER_LIST_MAX + 1, sizeof *ptrs);
    mesh_peer_pb_scratch *text = calloc(MESH_PEER_LIST_MAX + 1, sizeof *text);
    CU_ASSERT_FATAL(pbs && ptrs && text);
    for (size_t i = 0; i <= MESH_PEER_LIST_MAX; i++) {
        mesh_peer_record_to_pb(&recs[i], &pbs[i], &text[i]);
        ptrs[i] = &pbs[i];
    }
    Meshara__Wire__PeerList list = MESHARA__WIRE__PEER_LIST__INIT;
    list.n_peers = MESH_PEER_LIST_MAX + 1;
    list.peers = ptrs;
    len = meshara__wire__peer_list__get_packed_size(&list);
    buf = malloc(len);
    CU_ASSERT_EQUAL_FATAL(meshara__wire__peer_list__pack(&list, buf), len);
    n = 12345;
    CU_ASSERT_EQUAL(mesh_peer_list_decode(buf, len, recs, MESH_PEER_LIST_MAX + 1, &n, &dropped),
                    MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(n, 12345);
    CU_ASSERT_EQUAL(mesh_peer_list_from_pb(&list, recs, MESH_PEER_LIST_MAX + 1, &n, NULL),
                    MESH_ERR_MALFORMED);
    free(buf);
    free(pbs);
    free(ptrs);
    free(text);

    /* more bytes than any legal list, garbage, and bad arguments */
    uint8_t *big = calloc(1, MESH_PEER_LIST_MAX_BYTES + 1);
    CU_ASSERT_EQUAL(mesh_peer_list_decode(big, MESH_PEER_LIST_MAX_BYTES + 1, recs, 1, &n, NULL),
                    MESH_ERR_TOO_BIG);
    free(big);
    const uint8_t junk[] = {0x0a, 0x50, 0x01}; /* a record field claiming 80 bytes, 1 given */
    CU_ASSERT_EQUAL(mesh_peer_list_decode(junk, sizeof junk, recs, 1, &n, NULL),
                    MESH_ERR_MALFORMED);
    CU_ASSERT_EQUAL(mesh_peer_list_decode(NULL, 5, recs, 1, &n, NULL), MESH_ERR_INVAL);
    CU_ASSERT_EQUAL(mesh_peer_list_decode(junk, 0, NULL, 1, &n, NULL), MESH_ERR_INVAL);
    /* hostile: thousands of empty records cost more heap than the budget allows */
    size_t hn = 60000;
    uint8_t *hostile = malloc(hn);
    for (size_t i = 0; i + 1 < hn; i += 2) {
        hostile[i] = 0x0a; /* field 1, length-delimited */
        hostile[i + 1] = 0x00;
    }
    CU_ASSERT_EQUAL(mesh_peer_list_decode(hostile, hn, recs, 1, &n, NULL), MESH_ERR_LIMIT);
    free(hostile);
    free(recs);
}

/* The path a node takes for a FIND_NODE answer: Response.peers inside an Envelope. */
static void test_list_in_envelope(void)
{
    mesh_peer_record recs[4], out[4];
    make_records(recs, 4, 0);
    Meshara__Wire__PeerRecord pbs[4], *ptrs[4];
    mesh_peer_pb_scratch text[4];
    for (int i = 0; i < 4; i++) {
        mesh_peer_record_to_pb(&recs[i], &pbs[i], &text[i]);
        ptrs[i] = &pbs[i];
    }
    Meshara__Wire__PeerList list = MESHARA__WIRE__PEER_LIST__INIT;
    list.n_peers = 4;
    list.peers = ptrs;
    Meshara__Wire__Response resp = MESHARA__WIRE__RESPONSE__INIT;
    resp.type = MESHARA__WIRE__QUERY_TYPE__QUERY_FIND_NODE;
    resp.peers = &list;
    mesh_envelope e = MESHARA__WIRE__ENVELOPE__INIT;
    e.body_case = MESHARA__WIRE__ENVELOPE__BODY_RESPONSE;
    e.response = &resp;
    uint8_t *buf = NULL;
    size_t len = 0, n = 0, dropped = 0;
    CU_ASSERT_EQUAL_FATAL(mesh_wire_encode(&e, &buf, &len), MESH_OK);
    mesh_envelope *d = NULL;
    CU_ASSERT_EQUAL_FATAL(mesh_wire_decode(buf, len, &d), MESH_OK);
    CU_ASSERT_EQUAL(mesh_peer_list_from_pb(d->response->peers, out, 4, &n, &dropped), MESH_OK);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(dropped, 1);
    CU_ASSERT_TRUE(mesh_peer_record_equal(&out[0], &recs[1]));
    mesh_wire_free(d);
    free(buf);
}

static CU_TestInfo peer_tests[] = {
    {"make and verify, node id derived", test_make_verify},
    {"signed byte layout", test_signed_layout},
    {"relays: signed, carried, tamper-evident, bounded", test_relays},
    {"host name: signed, carried, tamper-evident, DNS syntax", test_host_name},
    {"tampered key, id, addresses, seq, signature refused", test_tampered},
    {"make limits", test_make_limits},
    {"protobuf round trip", test_pb_round_trip},
    {"protobuf records refused", test_pb_refused},
    {"list keeps only verified records", test_list},
    {"list limits, garbage, hostile input", test_list_limits},
    {"list inside a Response envelope", test_list_in_envelope},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"peer", suite_init, suite_clean, NULL, NULL, peer_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return mesh_test_main(suites);
}
