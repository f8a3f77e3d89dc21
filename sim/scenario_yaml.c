/* scenario_yaml.c — YAML to a positioned tree, the arena, --set grafts and the error format
 * (see scenario_yaml.h). libyaml's event API builds the tree, so every node keeps the line and
 * column it came from; the schema is applied later, to the tree (scenario_decode.c). */
#include "sim/scenario_yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "meshara/error.h"

/* ---- arena ------------------------------------------------------------------------------- */

struct scn_arena_blk {
    struct scn_arena_blk *next;
    size_t used, cap;
    max_align_t data[];
};

void *scn_arena_alloc(scn_arena *a, size_t n)
{
    const size_t align = sizeof(max_align_t);
    n = (n + align - 1) / align * align;
    if (n == 0)
        n = align;
    scn_arena_blk *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > SCN_ARENA_BLOCK ? n : SCN_ARENA_BLOCK;
        if (a->total + cap > SCN_ARENA_MAX)
            return NULL;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
        a->total += cap;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *scn_arena_strndup(scn_arena *a, const char *s, size_t n)
{
    char *p = scn_arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void scn_arena_free(scn_arena *a)
{
    while (a->head) {
        scn_arena_blk *n = a->head->next;
        free(a->head);
        a->head = n;
    }
    a->total = 0;
}

/* ---- errors -------------------------------------------------------------------------------- */

int sim_scn_error(char *err, size_t errlen, int code, const sim_scn_loc *loc, const char *hint,
                  const char *fmt, ...)
{
    if (!err || errlen == 0)
        return code;
    size_t o = 0;
    int n;
    if (loc && loc->line)
        n = snprintf(err, errlen, "%s:%u:%u: ", loc->origin, loc->line, loc->col);
    else
        n = snprintf(err, errlen, "%s: ", loc && loc->origin ? loc->origin : "scenario");
    o = n < 0 ? 0 : (size_t)n < errlen ? (size_t)n : errlen - 1;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(err + o, errlen - o, fmt, ap);
    va_end(ap);
    o += n < 0 ? 0 : (size_t)n < errlen - o ? (size_t)n : errlen - o - 1;
    if (hint && o < errlen)
        snprintf(err + o, errlen - o, " (hint: %s)", hint);
    return code;
}

const char *scn_show(const char *s, char buf[SCN_SHOW_MAX + 4])
{
    size_t i = 0;
    for (; s[i] && i < SCN_SHOW_MAX; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (s[i]) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1 / 2;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t sub = diag + (a[i - 1] != b[j - 1]);
            size_t del = up + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            diag = up;
        }
    }
    return row[lb];
}

const char *sim_scn_nearest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t bestd = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t dist = edit_distance(word, cands[i]);
        if (dist < bestd) {
            bestd = dist;
            best = cands[i];
        }
    }
    size_t len = strlen(word);
    size_t ok = len / 3 > 2 ? len / 3 : 2;
    return bestd <= ok ? best : NULL;
}

const char *scn_suggest(char *buf, size_t cap, const char *word, const char *const *cands, size_t n,
                        const char *prefix)
{
    const char *near = sim_scn_nearest(word, cands, n);
    if (near) {
        snprintf(buf, cap, "did you mean '%s'?", near);
        return buf;
    }
    size_t o = (size_t)snprintf(buf, cap, "%s", prefix);
    for (size_t i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", cands[i]);
    if (n == 0 && o < cap)
        snprintf(buf + o, cap - o, "(none)");
    return buf;
}

/* ---- the YAML tree ------------------------------------------------------------------------ */

static scn_node *node_new(scn_tree *t, int kind, const sim_scn_loc *loc)
{
    scn_node *n = scn_arena_alloc(&t->a, sizeof *n);
    if (n) {
        n->kind = kind;
        n->loc = *loc;
    }
    return n;
}

static void node_append(scn_node *parent, scn_node *child)
{
    if (parent->last)
        parent->last->next = child;
    else
        parent->first = child;
    parent->last = child;
    parent->n++;
}

int scn_is_null(const scn_node *n)
{
    return !n || (n->kind == SCN_SCALAR && n->plain &&
                  (n->len == 0 || !strcmp(n->s, "~") || !strcmp(n->s, "null") ||
                   !strcmp(n->s, "Null") || !strcmp(n->s, "NULL")));
}

scn_node *scn_map_find(const scn_node *map, const char *key)
{
    for (scn_node *c = map->first; c; c = c->next)
        if (!strcmp(c->key->s, key))
            return c;
    return NULL;
}

/* Line and column (1-based) of a byte offset, for libyaml reader errors that carry only an
 * offset. */
static void offset_pos(const unsigned char *data, size_t len, size_t off, uint32_t *line,
                       uint32_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (data[i] == '\n') {
            ++*line;
            *col = 1;
        } else {
            ++*col;
        }
    }
}

typedef struct builder {
    scn_tree *t;
    const char *origin;
    int positions; /* 0: values from --set, no line/column */
    scn_node *stack[SIM_SCN_MAX_DEPTH];
    scn_node *pending[SIM_SCN_MAX_DEPTH]; /* a mapping's key waiting for its value */
    int depth;
    scn_node *root;
    char *err;
    size_t errlen;
} builder;

static sim_scn_loc mark_loc(const builder *b, yaml_mark_t m)
{
    sim_scn_loc l = {b->origin, 0, 0};
    if (b->positions) {
        l.line = (uint32_t)m.line + 1;
        l.col = (uint32_t)m.column + 1;
    }
    return l;
}

/* Place a new node in its parent (as a key, a value or an item). */
static int build_add(builder *b, scn_node *n)
{
    if (++b->t->nodes > SIM_SCN_MAX_YAML_NODES)
        return sim_scn_error(b->err, b->errlen, MESH_ERR_LIMIT, &n->loc,
                             "split the scenario; large groups are one entry with a count",
                             "too many YAML nodes (limit %d)", SIM_SCN_MAX_YAML_NODES);
    if (b->depth == 0) {
        b->root = n;
        return MESH_OK;
    }
    scn_node *parent = b->stack[b->depth - 1];
    if (parent->kind == SCN_SEQ) {
        node_append(parent, n);
        return MESH_OK;
    }
    scn_node **pending = &b->pending[b->depth - 1];
    if (!*pending) {
        if (n->kind != SCN_SCALAR)
            return sim_scn_error(b->err, b->errlen, MESH_ERR_MALFORMED, &n->loc,
                                 "keys are plain words such as name or count",
                                 "a mapping key must be a scalar");
        if (parent->n >= SCN_MAX_MAP_KEYS)
            return sim_scn_error(b->err, b->errlen, MESH_ERR_LIMIT, &n->loc,
                                 "no section of a scenario has that many keys",
                                 "too many keys in one mapping (limit %d)", SCN_MAX_MAP_KEYS);
        scn_node *dup = scn_map_find(parent, n->s);
        if (dup) {
            char hint[96];
            if (dup->key->loc.line)
                snprintf(hint, sizeof hint, "first given at line %u, column %u", dup->key->loc.line,
                         dup->key->loc.col);
            else
                snprintf(hint, sizeof hint, "give each key once");
            char sb[SCN_SHOW_MAX + 4];
            return sim_scn_error(b->err, b->errlen, MESH_ERR_MALFORMED, &n->loc, hint,
                                 "duplicate key '%s'", scn_show(n->s, sb));
        }
        *pending = n;
        return MESH_OK;
    }
    n->key = *pending;
    *pending = NULL;
    node_append(parent, n);
    return MESH_OK;
}

/* A scalar: refused when it holds a NUL (C strings could not carry it), else copied. */
static int build_scalar(builder *b, const yaml_event_t *ev, const sim_scn_loc *l)
{
    if (memchr(ev->data.scalar.value, 0, ev->data.scalar.length))
        return sim_scn_error(b->err, b->errlen, MESH_ERR_MALFORMED, l, "remove the \\0 escape",
                             "NUL character in a string");
    scn_node *n = node_new(b->t, SCN_SCALAR, l);
    if (!n || !(n->s = scn_arena_strndup(&b->t->a, (const char *)ev->data.scalar.value,
                                         ev->data.scalar.length)))
        return sim_scn_error(b->err, b->errlen, MESH_ERR_NOMEM, l, NULL, "out of memory");
    n->len = ev->data.scalar.length;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    return build_add(b, n);
}

/* A mapping or sequence opens: it becomes the parent of what follows until its end. */
static int build_open(builder *b, int kind, const sim_scn_loc *l)
{
    if (b->depth >= SIM_SCN_MAX_DEPTH)
        return sim_scn_error(b->err, b->errlen, MESH_ERR_LIMIT, l,
                             "a scenario needs far less nesting", "nesting deeper than %d levels",
                             SIM_SCN_MAX_DEPTH);
    scn_node *n = node_new(b->t, kind, l);
    if (!n)
        return sim_scn_error(b->err, b->errlen, MESH_ERR_NOMEM, l, NULL, "out of memory");
    int rc = build_add(b, n);
    if (rc == MESH_OK) {
        b->pending[b->depth] = NULL;
        b->stack[b->depth++] = n;
    }
    return rc;
}

/* One parser event into the tree; *done at the end of the stream. */
static int build_event(builder *b, const yaml_event_t *ev, int *docs, int *done)
{
    sim_scn_loc l = mark_loc(b, ev->start_mark);
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++*docs > 1)
            return sim_scn_error(b->err, b->errlen, MESH_ERR_MALFORMED, &l,
                                 "a scenario is one YAML document: remove this '---'",
                                 "more than one YAML document");
        return MESH_OK;
    case YAML_ALIAS_EVENT:
        return sim_scn_error(b->err, b->errlen, MESH_ERR_MALFORMED, &l,
                             "write the value out instead of *alias",
                             "YAML aliases are not supported");
    case YAML_SCALAR_EVENT:
        return build_scalar(b, ev, &l);
    case YAML_SEQUENCE_START_EVENT:
        return build_open(b, SCN_SEQ, &l);
    case YAML_MAPPING_START_EVENT:
        return build_open(b, SCN_MAP, &l);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        b->depth--;
        return MESH_OK;
    case YAML_STREAM_END_EVENT:
        *done = 1;
        return MESH_OK;
    default:
        return MESH_OK;
    }
}

/* libyaml's error, at its position (a reader error carries only a byte offset). */
static int parse_error(builder *b, const yaml_parser_t *p, const unsigned char *data, size_t len)
{
    sim_scn_loc l = mark_loc(b, p->problem_mark);
    if (p->error == YAML_READER_ERROR && b->positions)
        offset_pos(data, len, p->problem_offset, &l.line, &l.col);
    if (p->error == YAML_MEMORY_ERROR)
        return sim_scn_error(b->err, b->errlen, MESH_ERR_NOMEM, &l, NULL, "out of memory");
    return sim_scn_error(b->err, b->errlen, MESH_ERR_MALFORMED, &l,
                         "check indentation, colons and quotes on this line and the one before",
                         "YAML syntax error: %s%s%s", p->problem ? p->problem : "invalid",
                         p->context ? " " : "", p->context ? p->context : "");
}

int scn_yaml_parse(scn_tree *t, const char *origin, int positions, const void *data, size_t len,
                   scn_node **root, char *err, size_t errlen)
{
    builder b = {.t = t, .origin = origin, .positions = positions, .err = err, .errlen = errlen};
    yaml_parser_t p;
    yaml_event_t ev;
    int rc = MESH_OK, docs = 0, done = 0;
    *root = NULL;
    if (!yaml_parser_initialize(&p))
        return sim_scn_error(err, errlen, MESH_ERR_NOMEM, NULL, NULL, "out of memory");
    yaml_parser_set_input_string(&p, data, len);
    while (!done && rc == MESH_OK) {
        if (!yaml_parser_parse(&p, &ev)) {
            rc = parse_error(&b, &p, data, len);
            break;
        }
        rc = build_event(&b, &ev, &docs, &done);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (rc == MESH_OK)
        *root = b.root;
    return rc;
}

/* ---- --set grafts ------------------------------------------------------------------------- */

/* The child of node named by segment seg (a key, a list index or an element's name). */
static scn_node *child_for(scn_node *node, const char *seg)
{
    if (node->kind == SCN_MAP)
        return scn_map_find(node, seg);
    if (node->kind != SCN_SEQ)
        return NULL;
    int digits = *seg != '\0';
    for (const char *c = seg; *c; c++)
        digits &= *c >= '0' && *c <= '9';
    size_t i = 0;
    for (scn_node *e = node->first; e; e = e->next, i++) {
        if (digits && (size_t)strtoull(seg, NULL, 10) == i)
            return e;
        if (e->kind == SCN_MAP) {
            scn_node *nm = scn_map_find(e, "name");
            if (nm && nm->kind == SCN_SCALAR && !strcmp(nm->s, seg))
                return e;
        }
    }
    return NULL;
}

/* Replace old (a child of parent) by repl, keeping its key. */
static void node_replace(scn_node *parent, scn_node *old, scn_node *repl)
{
    repl->key = old->key;
    repl->next = old->next;
    if (parent->first == old)
        parent->first = repl;
    for (scn_node *c = parent->first; c; c = c->next)
        if (c->next == old)
            c->next = repl;
    if (parent->last == old)
        parent->last = repl;
}

/* Put child into map `node`: in place of `old` (keeping its key), or as a new entry under
 * key `name`. */
static int place(scn_tree *t, scn_node *node, scn_node *old, const char *name, scn_node *child,
                 char *err, size_t errlen)
{
    if (old) {
        node_replace(node, old, child);
        return MESH_OK;
    }
    scn_node *k = node_new(t, SCN_SCALAR, &child->loc);
    if (!k || !(k->s = scn_arena_strndup(&t->a, name, strlen(name))))
        return sim_scn_error(err, errlen, MESH_ERR_NOMEM, &child->loc, NULL, "out of memory");
    k->len = strlen(name);
    k->plain = 1;
    child->key = k;
    node_append(node, child);
    return MESH_OK;
}

int scn_yaml_graft(scn_tree *t, scn_node **root, const char *path, const char *value,
                   const char *origin, char *err, size_t errlen)
{
    sim_scn_loc l = {origin, 0, 0};
    scn_node *val;
    int rc = scn_yaml_parse(t, origin, 0, value, strlen(value), &val, err, errlen);
    if (rc != MESH_OK)
        return rc;
    if (!val) { /* an empty value: the empty scalar, as `key:` in a file */
        if (!(val = node_new(t, SCN_SCALAR, &l)))
            return sim_scn_error(err, errlen, MESH_ERR_NOMEM, &l, NULL, "out of memory");
        val->s = "";
        val->plain = 1;
    }
    if (!*root && !(*root = node_new(t, SCN_MAP, &l)))
        return sim_scn_error(err, errlen, MESH_ERR_NOMEM, &l, NULL, "out of memory");
    scn_node *node = *root;
    const char *seg = path;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t sl = dot ? (size_t)(dot - seg) : strlen(seg);
        char name[SCN_PATH_MAX];
        if (sl == 0 || sl >= sizeof name)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &l,
                                 "write dotted keys such as network.core.latency",
                                 "bad path: empty or overlong segment");
        memcpy(name, seg, sl);
        name[sl] = '\0';
        scn_node *c = child_for(node, name);
        if (node->kind == SCN_SEQ && !c)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &l,
                                 "name a list element by its index (0, 1...) or its name",
                                 "no element '%s' in that list", name);
        if (node->kind == SCN_SCALAR)
            return sim_scn_error(err, errlen, MESH_ERR_MALFORMED, &l,
                                 "the path goes through a scalar value",
                                 "cannot set '%s' inside a scalar", name);
        if (!dot) {
            return place(t, node, c, name, val, err, errlen);
        }
        if (!c || scn_is_null(c)) { /* create the missing mapping */
            scn_node *m = node_new(t, SCN_MAP, &l);
            if (!m)
                return sim_scn_error(err, errlen, MESH_ERR_NOMEM, &l, NULL, "out of memory");
            if ((rc = place(t, node, c, name, m, err, errlen)) != MESH_OK)
                return rc;
            c = m;
        }
        node = c;
        seg = dot + 1;
    }
}
