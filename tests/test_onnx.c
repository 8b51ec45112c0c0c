/* Unit tests of the ONNX reader (kernels/onnx.c) against hostile models: every model here is
 * built byte by byte by a small protobuf writer, so the test needs no fixture files.  Each
 * hostile input must give PC_ERR_CONFIG with a one-line message that names the file and the
 * thing that is wrong, and no crash; a model from a newer ONNX, with fields this reader does
 * not know, must still load.  The graph-level checks (a cycle, an undefined tensor, Loop) go
 * through model_load (kernels/model.h). */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "kernels/model.h"
#include "kernels/onnx.h"

static char err[PC_ERRLEN];

/* ---- a tiny protobuf writer -------------------------------------------------------------- */

typedef struct pbw {
    uint8_t *b;
    size_t n, cap;
} pbw;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static void w_raw(pbw *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->b = realloc(w->b, w->cap);
        ck_assert(w->b != NULL);
    }
    if (n > 0) memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void w_varint(pbw *w, uint64_t v)
{
    do {
        uint8_t byte = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
        w_raw(w, &byte, 1);
        v >>= 7;
    } while (v);
}

static void w_key(pbw *w, int field, int wire) { w_varint(w, (uint64_t)field << 3 | (uint64_t)wire); }

static void w_int(pbw *w, int field, uint64_t v)
{
    w_key(w, field, WT_VARINT);
    w_varint(w, v);
}

static void w_fixed32(pbw *w, int field, uint32_t v)
{
    w_key(w, field, WT_I32);
    for (int i = 0; i < 4; i++) w_raw(w, &(uint8_t){(uint8_t)(v >> 8 * i)}, 1);
}

static void w_float(pbw *w, int field, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    w_fixed32(w, field, u);
}

static void w_fixed64(pbw *w, int field, uint64_t v)
{
    w_key(w, field, WT_I64);
    for (int i = 0; i < 8; i++) w_raw(w, &(uint8_t){(uint8_t)(v >> 8 * i)}, 1);
}

/* A length-delimited field that claims `claim` bytes but holds `len`. */
static void w_claim(pbw *w, int field, const void *p, size_t len, uint64_t claim)
{
    w_key(w, field, WT_LEN);
    w_varint(w, claim);
    w_raw(w, p, len);
}

static void w_bytes(pbw *w, int field, const void *p, size_t len) { w_claim(w, field, p, len, len); }
static void w_str(pbw *w, int field, const char *s) { w_bytes(w, field, s, strlen(s)); }

/* Appends sub-message m as field `field` and frees m. */
static void w_msg(pbw *w, int field, pbw *m)
{
    w_bytes(w, field, m->b, m->n);
    free(m->b);
    *m = (pbw){0};
}

static void pbw_free(pbw *w)
{
    free(w->b);
    *w = (pbw){0};
}

/* ---- model builders --------------------------------------------------------------------------
 * A build context: `unknown` adds fields of every wire type that ONNX does not define (as a
 * newer ONNX would) at the start and end of every message; `bad` makes the bad-th
 * length-delimited field (counted in writing order) claim 1 MiB more than it holds. */
typedef struct ctx {
    bool unknown;
    int bad, count;
} ctx;

static void c_unknown(ctx *c, pbw *w)
{
    if (!c->unknown) return;
    w_int(w, 1000, 300);
    w_fixed64(w, 1001, 0x0123456789abcdefULL);
    w_str(w, 1002, "\x0a\x03new"); /* a message of a kind this reader does not know */
    w_fixed32(w, 1003, 7);
    w_int(w, 536870911, 1); /* the highest field number protobuf allows */
}

static void c_bytes(ctx *c, pbw *w, int field, const void *p, size_t len)
{
    w_claim(w, field, p, len, len + (c->count++ == c->bad ? 1u << 20 : 0));
}
static void c_str(ctx *c, pbw *w, int field, const char *s) { c_bytes(c, w, field, s, strlen(s)); }
static void c_msg(ctx *c, pbw *w, int field, pbw *m)
{
    c_unknown(c, m);
    c_bytes(c, w, field, m->b, m->n);
    pbw_free(m);
}
/* Starts a message (its leading unknown fields). */
static pbw c_begin(ctx *c)
{
    pbw m = {0};
    c_unknown(c, &m);
    return m;
}

/* ValueInfoProto `name`: float tensor (N, width); width < 0 writes the dim raw (-width as an
 * int64 varint, so as a negative number). */
static void c_value_info(ctx *c, pbw *w, int field, const char *name, int64_t width)
{
    pbw d0 = c_begin(c), d1 = c_begin(c), shape = c_begin(c), tt = c_begin(c),
        type = c_begin(c), vi = c_begin(c);
    c_str(c, &d0, 2, "N");
    w_int(&d1, 1, (uint64_t)width);
    c_msg(c, &shape, 1, &d0);
    c_msg(c, &shape, 1, &d1);
    w_int(&tt, 1, ONNX_DTYPE_FLOAT);
    c_msg(c, &tt, 2, &shape);
    c_msg(c, &type, 1, &tt);
    c_str(c, &vi, 1, name);
    c_msg(c, &vi, 2, &type);
    c_msg(c, w, field, &vi);
}

/* A float TensorProto with dims {width} and the values 0.5, 1.5, ... as raw_data. */
static pbw c_tensor(ctx *c, const char *name, int64_t width)
{
    pbw t = c_begin(c);
    w_int(&t, 1, (uint64_t)width);
    w_int(&t, 2, ONNX_DTYPE_FLOAT);
    if (name != NULL) c_str(c, &t, 8, name);
    float v[16];
    for (int i = 0; i < width; i++) v[i] = 0.5f + (float)i;
    c_bytes(c, &t, 9, v, (size_t)width * sizeof(float));
    return t;
}

/* model { ir 8; opset 13; graph "g" { LeakyRelu(x, alpha 0.25) -> h "Leaky"; Add(h, b) -> y
 * "Bias"; initializer b [4]; input x (N,4); output y (N,4) } }.  With `loop`, the graph
 * also holds a node "Loop_0" whose `body` (GRAPH) holds a Constant with a TENSOR attribute,
 * and a node "If_0" with a GRAPHS attribute: for tests of the reader alone. */
static pbw c_model(ctx *c, bool loop)
{
    pbw graph = c_begin(c), model = c_begin(c), os = c_begin(c);
    pbw leaky = c_begin(c), alpha = c_begin(c), add = c_begin(c);
    c_str(c, &leaky, 1, "x");
    c_str(c, &leaky, 2, "h");
    c_str(c, &leaky, 3, "Leaky");
    c_str(c, &leaky, 4, "LeakyRelu");
    c_str(c, &alpha, 1, "alpha");
    w_float(&alpha, 2, 0.25f);
    w_int(&alpha, 20, ONNX_ATTR_FLOAT);
    c_msg(c, &leaky, 5, &alpha);
    c_msg(c, &graph, 1, &leaky);
    c_str(c, &add, 1, "h");
    c_str(c, &add, 1, "b");
    c_str(c, &add, 2, "y");
    c_str(c, &add, 3, "Bias");
    c_str(c, &add, 4, "Add");
    c_msg(c, &graph, 1, &add);
    if (loop) {
        pbw node = c_begin(c), body = c_begin(c), battr = c_begin(c), cst = c_begin(c),
            vattr = c_begin(c), t = c_tensor(c, NULL, 2);
        c_str(c, &cst, 2, "k");
        c_str(c, &cst, 4, "Constant");
        c_str(c, &vattr, 1, "value");
        c_msg(c, &vattr, 5, &t);
        w_int(&vattr, 20, ONNX_ATTR_TENSOR);
        c_msg(c, &cst, 5, &vattr);
        c_msg(c, &body, 1, &cst);
        c_str(c, &body, 2, "body");
        c_value_info(c, &body, 12, "k", 2);
        c_str(c, &battr, 1, "body");
        c_msg(c, &battr, 6, &body);
        w_int(&battr, 20, ONNX_ATTR_GRAPH);
        c_str(c, &node, 3, "Loop_0");
        c_str(c, &node, 4, "Loop");
        c_msg(c, &node, 5, &battr);
        c_msg(c, &graph, 1, &node);
        pbw ifn = c_begin(c), gattr = c_begin(c), g1 = c_begin(c), g2 = c_begin(c);
        c_str(c, &g1, 2, "one");
        c_str(c, &g2, 2, "two");
        c_str(c, &gattr, 1, "branches");
        c_msg(c, &gattr, 11, &g1);
        c_msg(c, &gattr, 11, &g2);
        w_int(&gattr, 20, ONNX_ATTR_GRAPHS);
        c_str(c, &ifn, 3, "If_0");
        c_str(c, &ifn, 4, "If");
        c_msg(c, &ifn, 5, &gattr);
        c_msg(c, &graph, 1, &ifn);
    }
    c_str(c, &graph, 2, "g");
    pbw b = c_tensor(c, "b", 4);
    c_msg(c, &graph, 5, &b);
    c_value_info(c, &graph, 11, "x", 4);
    c_value_info(c, &graph, 12, "y", 4);
    /* The graph last, so that every strict prefix of the file cuts it. */
    w_int(&model, 1, 8);
    c_str(c, &model, 2, "test_onnx");
    c_str(c, &os, 1, "");
    w_int(&os, 2, 13);
    c_msg(c, &model, 8, &os);
    c_msg(c, &model, 7, &graph);
    c_unknown(c, &model);
    return model;
}

/* ---- helpers ------------------------------------------------------------------------------- */

/* onnx_parse with the checks every call must pass: a model exactly on success, else no model
 * and a one-line message starting with the file name. */
static pc_status parse(const void *b, size_t len)
{
    onnx_model *m = NULL;
    err[0] = '\0';
    pc_status st = onnx_parse(b, len, "hostile.onnx", &m, err, sizeof err);
    if (st == PC_OK) {
        ck_assert(m != NULL);
    } else {
        ck_assert(m == NULL);
        ck_assert_msg(strncmp(err, "hostile.onnx: ", 14) == 0, "%s", err);
        ck_assert_msg(strchr(err, '\n') == NULL, "not one line: %s", err);
        printf("refused: %s\n", err);
    }
    onnx_free(m);
    return st;
}

static pc_status parse_w(const pbw *w) { return parse(w->b, w->n); }

/* Expects onnx_parse to refuse w with PC_ERR_CONFIG and a message holding `want`; frees w. */
static void refused(pbw *w, const char *want)
{
    ck_assert_int_eq(parse_w(w), PC_ERR_CONFIG);
    ck_assert_msg(strstr(err, want) != NULL, "expected '%s' in: %s", want, err);
    pbw_free(w);
}

/* model { graph { initializer t } } around a TensorProto. */
static pbw in_graph(pbw *tensor)
{
    pbw graph = {0}, model = {0};
    w_msg(&graph, 5, tensor);
    w_msg(&model, 7, &graph);
    return model;
}

/* A float tensor "w" with the given dims, and data written by the caller into *t. */
static pbw tensor_dims(const uint64_t *dims, int rank, int dtype)
{
    pbw t = {0};
    for (int i = 0; i < rank; i++) w_int(&t, 1, dims[i]);
    w_int(&t, 2, (uint64_t)dtype);
    w_str(&t, 8, "w");
    return t;
}

/* Caps the address space at what the process uses now plus `extra` bytes, so that an
 * allocation the reader should never make fails instead of succeeding lazily.  Skipped (0)
 * under ASan or valgrind, which reserve far more address space than they use. Returns 1 if
 * the limit is set; *old receives the previous one. */
static int limit_address_space(size_t extra, struct rlimit *old)
{
#if defined(__SANITIZE_ADDRESS__)
    return 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return 0;
#endif
#endif
    const char *preload = getenv("LD_PRELOAD");
    if (preload != NULL && strstr(preload, "vgpreload") != NULL) return 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) return 0;
    unsigned long pages = 0;
    int ok = fscanf(f, "%lu", &pages) == 1;
    fclose(f);
    if (!ok || getrlimit(RLIMIT_AS, old) != 0) return 0;
    struct rlimit lim = *old;
    lim.rlim_cur = (rlim_t)pages * 4096 + extra;
    if (old->rlim_cur != RLIM_INFINITY && old->rlim_cur < lim.rlim_cur) return 0;
    return setrlimit(RLIMIT_AS, &lim) == 0;
}

/* ---- tensors ------------------------------------------------------------------------------- */

START_TEST(test_dims_overflow)
{
    /* Each dim below 2^31, the product 2^90: past 2^63 long before the end. */
    const uint64_t big[] = {1u << 30, 1u << 30, 1u << 30};
    pbw t = tensor_dims(big, 3, ONNX_DTYPE_FLOAT);
    w_bytes(&t, 9, "\0\0\0\0", 4);
    pbw m = in_graph(&t);
    refused(&m, "initializer 'w': dims hold more than 2^31 elements");
    /* (2^31 - 1)^2 * 4 wraps int64 to a small positive number if multiplied blindly. */
    const uint64_t wrap[] = {(1u << 31) - 1, (1u << 31) - 1, 4, 1};
    t = tensor_dims(wrap, 4, ONNX_DTYPE_INT64);
    m = in_graph(&t);
    refused(&m, "dims hold more than 2^31 elements");
    /* One dim of 2^63 - 1. */
    const uint64_t huge[] = {INT64_MAX};
    t = tensor_dims(huge, 1, ONNX_DTYPE_FLOAT);
    m = in_graph(&t);
    refused(&m, "dim 0 (9223372036854775807) is too large");
}
END_TEST

START_TEST(test_dims_negative)
{
    /* -1 and -255 as int64 varints (10 bytes each). */
    const uint64_t neg[] = {2, (uint64_t)-255};
    pbw t = tensor_dims(neg, 2, ONNX_DTYPE_FLOAT);
    pbw m = in_graph(&t);
    refused(&m, "initializer 'w': dim 1 is negative (-255)");
    const uint64_t minus1[] = {(uint64_t)-1};
    t = tensor_dims(minus1, 1, ONNX_DTYPE_INT64);
    m = in_graph(&t);
    refused(&m, "dim 0 is negative (-1)");
    /* And in a graph input's shape. */
    ctx c = {.bad = -1};
    pbw graph = {0}, model = {0};
    c_value_info(&c, &graph, 11, "x", -7);
    w_msg(&model, 7, &graph);
    refused(&model, "graph input 'x': dim 1 is negative");
}
END_TEST

START_TEST(test_data_size_mismatch)
{
    /* A zero dim with data: count 0, but 4 bytes of raw_data or one float. */
    const uint64_t zero[] = {0, 3};
    pbw t = tensor_dims(zero, 2, ONNX_DTYPE_FLOAT);
    w_bytes(&t, 9, "\0\0\x80\x3f", 4);
    pbw m = in_graph(&t);
    refused(&m, "initializer 'w': raw_data holds 4 bytes, dims need 0");
    t = tensor_dims(zero, 2, ONNX_DTYPE_FLOAT);
    w_float(&t, 4, 1.0f);
    m = in_graph(&t);
    refused(&m, "initializer 'w': float_data holds 1 values, dims need 0");
    /* A zero dim and no data is a valid empty tensor, even beside a large dim. */
    const uint64_t empty[] = {0, 1u << 30};
    t = tensor_dims(empty, 2, ONNX_DTYPE_FLOAT);
    m = in_graph(&t);
    ck_assert_int_eq(parse_w(&m), PC_OK);
    pbw_free(&m);

    /* Data shorter than its dims: raw_data, packed int64_data, double_data one per field. */
    const uint64_t four[] = {4};
    t = tensor_dims(four, 1, ONNX_DTYPE_FLOAT);
    w_bytes(&t, 9, "\0\0\0\0\0\0\0\0", 8);
    m = in_graph(&t);
    refused(&m, "raw_data holds 8 bytes, dims need 16");
    t = tensor_dims(four, 1, ONNX_DTYPE_INT64);
    w_bytes(&t, 7, "\x01\x02\x03", 3); /* 3 packed varints */
    m = in_graph(&t);
    refused(&m, "int64_data holds 3 values, dims need 4");
    t = tensor_dims(four, 1, ONNX_DTYPE_DOUBLE);
    w_fixed64(&t, 10, 0);
    m = in_graph(&t);
    refused(&m, "double_data holds 1 values, dims need 4");
    /* No data at all. */
    t = tensor_dims(four, 1, ONNX_DTYPE_INT32);
    m = in_graph(&t);
    refused(&m, "int32_data holds 0 values, dims need 4");

    /* raw_data longer than its dims. */
    t = tensor_dims(four, 1, ONNX_DTYPE_FLOAT);
    uint8_t raw[20] = {0};
    w_bytes(&t, 9, raw, sizeof raw);
    m = in_graph(&t);
    refused(&m, "raw_data holds 20 bytes, dims need 16");
    /* Packed floats that do not fill their field (6 bytes). */
    t = tensor_dims(four, 1, ONNX_DTYPE_FLOAT);
    w_bytes(&t, 4, raw, 6);
    m = in_graph(&t);
    refused(&m, "packed fixed-size values do not fill their field");
}
END_TEST

START_TEST(test_huge_claim_small_file)
{
    /* 2^29 floats (2 GiB) and 2^31 - 1 int64s (16 GiB) claimed by files of a few dozen
     * bytes: refused for their size before anything is allocated, which the address-space
     * limit proves where it can be set (not under ASan or valgrind). */
    struct rlimit old;
    int limited = limit_address_space((size_t)512 << 20, &old);
    printf("address space limited: %s\n", limited ? "yes" : "no (sanitizer or valgrind)");
    const uint64_t two_gib[] = {1u << 29};
    pbw t = tensor_dims(two_gib, 1, ONNX_DTYPE_FLOAT);
    w_bytes(&t, 9, "\0\0\0\0", 4);
    pbw m = in_graph(&t);
    refused(&m, "raw_data holds 4 bytes, dims need 2147483648");
    t = tensor_dims(two_gib, 1, ONNX_DTYPE_FLOAT);
    w_float(&t, 4, 1.0f);
    m = in_graph(&t);
    refused(&m, "float_data holds 1 values, dims need 536870912");
    const uint64_t sixteen_gib[] = {(1u << 31) - 1};
    t = tensor_dims(sixteen_gib, 1, ONNX_DTYPE_INT64);
    w_bytes(&t, 7, "\x01", 1);
    m = in_graph(&t);
    refused(&m, "int64_data holds 1 values, dims need 2147483647");
    /* The same claim as an attribute's tensor. */
    pbw attr = {0}, node = {0}, graph = {0};
    t = tensor_dims(sixteen_gib, 1, ONNX_DTYPE_INT64);
    w_str(&attr, 1, "value");
    w_msg(&attr, 5, &t);
    w_int(&attr, 20, ONNX_ATTR_TENSOR);
    w_str(&node, 3, "Const_0");
    w_str(&node, 4, "Constant");
    w_msg(&node, 5, &attr);
    w_msg(&graph, 1, &node);
    w_msg(&m, 7, &graph);
    refused(&m, "node 'Const_0' attribute 'value': int64_data holds 0 values");
    if (limited) ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
}
END_TEST

START_TEST(test_rank_and_counts)
{
    /* 100,000 dims: refused for the rank, without reading them into anything. */
    pbw t = {0}, packed = {0};
    for (int i = 0; i < 100000; i++) w_varint(&packed, 1);
    w_bytes(&t, 1, packed.b, packed.n);
    w_int(&t, 2, ONNX_DTYPE_FLOAT);
    w_str(&t, 8, "w");
    pbw m = in_graph(&t);
    refused(&m, "initializer 'w': rank 100000 exceeds the supported 8");
    /* 100,000 floats for dims [2]. */
    const uint64_t two[] = {2};
    t = tensor_dims(two, 1, ONNX_DTYPE_FLOAT);
    uint8_t *zeros = calloc(400000, 1);
    ck_assert(zeros != NULL);
    w_bytes(&t, 4, zeros, 400000);
    m = in_graph(&t);
    refused(&m, "float_data holds 100000 values, dims need 2");
    /* A node with 100,000 inputs and an INTS attribute of 100,000 values: large but honest,
     * so they parse, each array sized by what the bytes hold. */
    pbw node = {0}, attr = {0}, graph = {0};
    for (int i = 0; i < 100000; i++) w_str(&node, 1, "");
    w_str(&node, 4, "Concat");
    w_str(&attr, 1, "axes");
    w_bytes(&attr, 8, packed.b, packed.n);
    w_int(&attr, 20, ONNX_ATTR_INTS);
    w_msg(&node, 5, &attr);
    w_msg(&graph, 1, &node);
    w_msg(&m, 7, &graph);
    onnx_model *om = NULL;
    ck_assert_int_eq(onnx_parse(m.b, m.n, "big.onnx", &om, err, sizeof err), PC_OK);
    ck_assert_int_eq(om->n_node, 1);
    ck_assert_int_eq(om->node[0].n_in, 100000);
    const onnx_attr *a = onnx_node_attr(&om->node[0], "axes");
    ck_assert(a != NULL && a->type == ONNX_ATTR_INTS && a->n == 100000 && a->ints[99999] == 1);
    onnx_free(om);
    /* A packed INTS field claiming 2^60 bytes in a small file. */
    w_str(&attr, 1, "axes");
    w_claim(&attr, 8, "\x01\x01", 2, (uint64_t)1 << 60);
    w_msg(&node, 5, &attr);
    w_msg(&graph, 1, &node);
    pbw claim = {0};
    w_msg(&claim, 7, &graph);
    refused(&claim, "node #0 attribute 'axes': malformed protobuf: a length runs past the end");
    free(zeros);
    pbw_free(&packed);
    pbw_free(&m);
}
END_TEST

START_TEST(test_memory_budget)
{
    /* 400,000 empty graph inputs: 800,004 bytes of file that would decode to some 60 MB of
     * structures, past the budget of 16 times the file plus 16 MiB. */
    pbw graph = {0}, m = {0};
    for (int i = 0; i < 400000; i++) w_raw(&graph, "\x5a\x00", 2);
    w_msg(&m, 7, &graph);
    refused(&m, "decoding it would take more than 29577280 bytes of memory (16 times the "
                "file's size, plus 16 MiB): a corrupt or hostile file");
    /* 40,000 of them fit. */
    for (int i = 0; i < 40000; i++) w_raw(&graph, "\x5a\x00", 2);
    w_msg(&m, 7, &graph);
    ck_assert_int_eq(parse_w(&m), PC_OK);
    pbw_free(&m);
}
END_TEST

/* ---- the wire format ------------------------------------------------------------------------ */

START_TEST(test_past_the_end_every_level)
{
    /* Count the length-delimited fields of the deepest model, then make each in turn claim
     * 1 MiB more than it holds: wherever it is, the reader must notice. */
    ctx c = {.unknown = false, .bad = -1};
    pbw good = c_model(&c, true);
    ck_assert_int_eq(parse_w(&good), PC_OK);
    pbw_free(&good);
    int n = c.count;
    ck_assert_int_gt(n, 50);
    for (int bad = 0; bad < n; bad++) {
        ctx b = {.unknown = false, .bad = bad};
        pbw m = c_model(&b, true);
        ck_assert_int_eq(b.count, n);
        ck_assert_msg(parse_w(&m) == PC_ERR_CONFIG, "field %d: accepted", bad);
        ck_assert_msg(strstr(err, "past the end") != NULL, "field %d: %s", bad, err);
        pbw_free(&m);
    }
    printf("past the end: %d fields, each refused\n", n);
    /* The same file cut short at every byte. */
    c = (ctx){.bad = -1};
    good = c_model(&c, true);
    for (size_t len = 0; len < good.n; len++) {
        pc_status st = parse(good.b, len);
        ck_assert_msg(st == PC_ERR_CONFIG, "prefix of %zu bytes: status %d", len, st);
    }
    pbw_free(&good);
}
END_TEST

START_TEST(test_varints)
{
    /* 11-byte varints as a value, as a key, as a length, and inside a tensor's packed dims. */
    static const uint8_t v11[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    const uint8_t *p = v11;
    uint64_t v;
    ck_assert(!onnx_varint(&p, v11 + sizeof v11, &v) && p == v11);
    pbw m = {0};
    w_key(&m, 1, WT_VARINT);
    w_raw(&m, v11, sizeof v11);
    refused(&m, "model: malformed protobuf: truncated or overlong varint");
    w_raw(&m, v11, sizeof v11);
    refused(&m, "truncated field key");
    w_key(&m, 7, WT_LEN);
    w_raw(&m, v11, sizeof v11);
    refused(&m, "truncated length");
    pbw t = {0};
    w_key(&t, 1, WT_LEN);
    w_varint(&t, sizeof v11);
    w_raw(&t, v11, sizeof v11);
    w_int(&t, 2, ONNX_DTYPE_FLOAT);
    m = in_graph(&t);
    refused(&m, "truncated packed varint");
    /* A 10-byte varint above 2^64. */
    static const uint8_t over[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    w_key(&m, 1, WT_VARINT);
    w_raw(&m, over, sizeof over);
    refused(&m, "overlong varint");
    /* Field number 0. */
    w_raw(&m, "\x02\x00", 2);
    refused(&m, "invalid field number");
}
END_TEST

START_TEST(test_wire_types)
{
    /* Wire types 3 and 4 (groups, which ONNX never uses) and 6 and 7 (undefined), at the top
     * and as an unknown field deep inside (a node): all refused, none skipped blindly. */
    static const struct {
        int wire;
        const char *want;
    } cases[] = {{3, "protobuf group"}, {4, "protobuf group"}, {6, "invalid wire type"},
                 {7, "invalid wire type"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pbw m = {0};
        w_key(&m, 1, cases[i].wire);
        w_raw(&m, "\0\0\0\0\0\0\0\0", 8);
        refused(&m, cases[i].want);
        pbw node = {0}, graph = {0};
        w_str(&node, 4, "Relu");
        w_key(&node, 99, cases[i].wire);
        w_msg(&graph, 1, &node);
        w_msg(&m, 7, &graph);
        refused(&m, cases[i].want);
        ck_assert(strstr(err, "node #0") != NULL);
    }
    /* Known fields with the wrong wire type. */
    pbw m = {0}, graph = {0}, node = {0}, attr = {0};
    w_str(&attr, 1, "body");
    w_int(&attr, 6, 5); /* a GRAPH as a varint */
    w_str(&node, 3, "Loop_0");
    w_msg(&node, 5, &attr);
    w_msg(&graph, 1, &node);
    w_msg(&m, 7, &graph);
    refused(&m, "node 'Loop_0' attribute 'body': field 6 has the wrong wire type 0");
    w_fixed32(&m, 7, 0);
    refused(&m, "model: field 7 has the wrong wire type 5");
}
END_TEST

START_TEST(test_strings)
{
    /* An attribute's string value with an embedded NUL. */
    pbw m = {0}, graph = {0}, node = {0}, attr = {0};
    w_str(&attr, 1, "mode");
    w_bytes(&attr, 4, "constant\0edge", 13);
    w_int(&attr, 20, ONNX_ATTR_STRING);
    w_str(&node, 3, "Pad_0");
    w_str(&node, 4, "Pad");
    w_msg(&node, 5, &attr);
    w_msg(&graph, 1, &node);
    w_msg(&m, 7, &graph);
    refused(&m, "node 'Pad_0' attribute 'mode': a string holds a NUL byte at offset 8");
    /* A node name with a NUL, a tensor name with a newline (which would break the one-line
     * messages that quote it). */
    w_bytes(&node, 3, "Relu\0_0", 7);
    w_msg(&graph, 1, &node);
    w_msg(&m, 7, &graph);
    refused(&m, "node #0: a string holds a NUL byte at offset 4");
    w_str(&node, 3, "Relu_0");
    w_str(&node, 1, "x\ny");
    w_msg(&graph, 1, &node);
    w_msg(&m, 7, &graph);
    refused(&m, "node 'Relu_0': a name holds the control character 0x0a at offset 1");
    /* Free text may hold control characters (but not NUL). */
    w_str(&attr, 1, "note");
    w_str(&attr, 4, "line 1\nline 2\t.");
    w_str(&node, 4, "Relu");
    w_msg(&node, 5, &attr);
    w_msg(&graph, 1, &node);
    w_str(&m, 2, "producer\r\n");
    w_msg(&m, 7, &graph);
    ck_assert_int_eq(parse_w(&m), PC_OK);
    pbw_free(&m);
}
END_TEST

START_TEST(test_unknown_fields)
{
    /* A model from a newer ONNX: unknown fields of every wire type in every message. */
    ctx c = {.unknown = true, .bad = -1};
    pbw m = c_model(&c, true);
    ck_assert_int_eq(parse_w(&m), PC_OK);
    pbw_free(&m);
    c = (ctx){.unknown = true, .bad = -1};
    m = c_model(&c, false);
    model *mo = NULL;
    ck_assert_msg(model_load(m.b, m.n, "newer.onnx", 2, &mo, err, sizeof err) == PC_OK, "%s", err);
    ck_assert_int_eq(model_input_count(mo), 1);
    ck_assert_int_eq(model_input_width(mo, 0), 4);
    float *x = model_input_buffer(mo, 0);
    const float in[8] = {-4, -2, 0, 2, 4, 8, -8, 1};
    memcpy(x, in, sizeof in);
    ck_assert_int_eq(model_forward(mo, 2, err, sizeof err), PC_OK);
    const float *y = model_output(mo, 0);
    for (int i = 0; i < 8; i++) {
        float want = (in[i] < 0 ? 0.25f * in[i] : in[i]) + 0.5f + (float)(i % 4);
        ck_assert_msg(y[i] == want, "y[%d] = %g, want %g", i, (double)y[i], (double)want);
    }
    model_close(mo);
    pbw_free(&m);
}
END_TEST

/* ---- subgraphs ---------------------------------------------------------------------------------- */

START_TEST(test_subgraphs)
{
    ctx c = {.bad = -1};
    pbw m = c_model(&c, true);
    onnx_model *om = NULL;
    ck_assert_int_eq(onnx_parse(m.b, m.n, "loop.onnx", &om, err, sizeof err), PC_OK);
    ck_assert_int_eq(om->n_node, 4);
    const onnx_node *loop = &om->node[2];
    ck_assert_str_eq(loop->op_type, "Loop");
    const onnx_attr *body = onnx_node_attr(loop, "body");
    ck_assert(body != NULL && body->type == ONNX_ATTR_GRAPH && body->g != NULL);
    ck_assert_str_eq(body->g->name, "body");
    ck_assert_int_eq(body->g->n_node, 1);
    ck_assert_str_eq(body->g->node[0].op_type, "Constant");
    const onnx_attr *value = onnx_node_attr(&body->g->node[0], "value");
    ck_assert(value != NULL && value->t != NULL && value->t->count == 2 && value->t->f[1] == 1.5f);
    ck_assert_int_eq(body->g->n_output, 1);
    ck_assert_str_eq(body->g->output[0].name, "k");
    const onnx_attr *br = onnx_node_attr(&om->node[3], "branches");
    ck_assert(br != NULL && br->type == ONNX_ATTR_GRAPHS && br->n == 2);
    ck_assert_str_eq(br->graphs[0].name, "one");
    ck_assert_str_eq(br->graphs[1].name, "two");
    onnx_free(om);
    /* The compiler refuses Loop itself, naming it. */
    model *mo = NULL;
    ck_assert_int_eq(model_load(m.b, m.n, "loop.onnx", 2, &mo, err, sizeof err), PC_ERR_CONFIG);
    ck_assert(mo == NULL);
    ck_assert_msg(strstr(err, "'Loop_0'") != NULL && strstr(err, "Loop") != NULL, "%s", err);
    printf("refused: %s\n", err);
    pbw_free(&m);

    /* Subgraphs nested ONNX_MAX_GRAPH_DEPTH deep parse; one more level is refused (the
     * stack stays bounded whatever the file holds). */
    for (int depth = ONNX_MAX_GRAPH_DEPTH; depth <= ONNX_MAX_GRAPH_DEPTH + 1; depth++) {
        pbw g = {0};
        w_str(&g, 2, "innermost");
        for (int k = 0; k < depth; k++) {
            pbw attr = {0}, node = {0}, outer = {0};
            w_str(&attr, 1, "body");
            w_msg(&attr, 6, &g); /* no type: IR version 1 style, inferred from the field */
            w_str(&node, 3, "Loop");
            w_msg(&node, 5, &attr);
            w_msg(&outer, 1, &node);
            g = outer;
        }
        w_msg(&m, 7, &g);
        if (depth == ONNX_MAX_GRAPH_DEPTH) {
            ck_assert_int_eq(parse_w(&m), PC_OK);
            pbw_free(&m);
        } else {
            refused(&m, "subgraphs nest more than 8 deep");
        }
    }
    /* A GRAPH attribute without a graph. */
    pbw attr = {0}, node = {0}, graph = {0};
    w_str(&attr, 1, "then_branch");
    w_int(&attr, 20, ONNX_ATTR_GRAPH);
    w_str(&node, 3, "If_0");
    w_msg(&node, 5, &attr);
    w_msg(&graph, 1, &node);
    w_msg(&m, 7, &graph);
    refused(&m, "node 'If_0' attribute 'then_branch': GRAPH attribute without a graph");
    /* A hostile tensor inside a subgraph is found there. */
    const uint64_t neg[] = {(uint64_t)-3};
    pbw t = tensor_dims(neg, 1, ONNX_DTYPE_FLOAT), body2 = {0};
    w_msg(&body2, 5, &t);
    w_str(&attr, 1, "else_branch");
    w_msg(&attr, 6, &body2);
    w_int(&attr, 20, ONNX_ATTR_GRAPH);
    w_str(&node, 3, "If_1");
    w_msg(&node, 5, &attr);
    w_msg(&graph, 1, &node);
    w_msg(&m, 7, &graph);
    refused(&m, "initializer 'w': dim 0 is negative (-3)");
}
END_TEST

/* ---- external data ------------------------------------------------------------------------------ */

/* model { graph { initializer "w" [4] float, data_location = EXTERNAL (if `flag`),
 * external_data { location: path } (if path) } } */
static pbw external(const char *path, bool flag)
{
    const uint64_t four[] = {4};
    pbw t = tensor_dims(four, 1, ONNX_DTYPE_FLOAT);
    if (path != NULL) {
        pbw e1 = {0}, e2 = {0};
        w_str(&e1, 1, "location");
        w_str(&e1, 2, path);
        w_msg(&t, 13, &e1);
        w_str(&e2, 1, "length");
        w_str(&e2, 2, "16");
        w_msg(&t, 13, &e2);
    }
    if (flag) w_int(&t, 14, 1);
    return in_graph(&t);
}

START_TEST(test_external_data)
{
    pbw m = external(NULL, true);
    refused(&m, "initializer 'w': keeps its data in an external file (data_location=EXTERNAL), "
                "which precast does not read yet");
    m = external("weights.bin", true);
    refused(&m, "initializer 'w': keeps its data in an external file 'weights.bin' "
                "(data_location=EXTERNAL), which precast does not read yet");
    m = external("sub/dir/w.bin", false); /* external_data without the flag: still external */
    refused(&m, "external file 'sub/dir/w.bin'");
    static const char *const escaping[] = {"../secret.bin", "../../../../etc/passwd",
                                           "/etc/passwd", "sub/../../w.bin", "a/..",
                                           "..\\w.bin", "C:\\w.bin", "\\\\host\\share\\w"};
    for (size_t i = 0; i < sizeof escaping / sizeof *escaping; i++) {
        m = external(escaping[i], true);
        ck_assert_int_eq(parse_w(&m), PC_ERR_CONFIG);
        ck_assert_msg(strstr(err, "outside the model's folder") != NULL, "%s: %s", escaping[i],
                      err);
        ck_assert_msg(strstr(err, "may not make the job read other files") != NULL, "%s", err);
        pbw_free(&m);
    }
    /* Names that merely contain dots stay inside. */
    m = external("w..bin", true);
    refused(&m, "does not read yet");
    m = external("./w.bin", true);
    refused(&m, "does not read yet");
}
END_TEST

/* ---- graph structure, through the compiler ---------------------------------------------------- */

/* model { opset 13; graph { Relu(a_in) -> a_out "A"; Relu(b_in) -> b_out "B"; input x (N,4);
 * output `out` (N,4) } } */
/* Relu A then Relu B over an input x (N, width): the graph the activation cap is tested on. */
static pbw two_nodes_wide(const char *a_in, const char *b_in, const char *out, int64_t width)
{
    pbw a = {0}, b = {0}, graph = {0}, os = {0}, model = {0};
    ctx c = {.bad = -1};
    w_str(&a, 1, a_in);
    w_str(&a, 2, "a");
    w_str(&a, 3, "A");
    w_str(&a, 4, "Relu");
    w_str(&b, 1, b_in);
    w_str(&b, 2, "b");
    w_str(&b, 3, "B");
    w_str(&b, 4, "Relu");
    w_msg(&graph, 1, &a);
    w_msg(&graph, 1, &b);
    c_value_info(&c, &graph, 11, "x", width);
    c_value_info(&c, &graph, 12, out, width);
    w_int(&os, 2, 13);
    w_int(&model, 1, 8);
    w_msg(&model, 7, &graph);
    w_msg(&model, 8, &os);
    return model;
}

static pbw two_nodes(const char *a_in, const char *b_in, const char *out)
{
    return two_nodes_wide(a_in, b_in, out, 4);
}

static void load_refused(pbw *w, const char *want)
{
    model *m = NULL;
    err[0] = '\0';
    pc_status st = model_load(w->b, w->n, "graph.onnx", 2, &m, err, sizeof err);
    ck_assert_msg(st == PC_ERR_CONFIG, "status %d: %s", st, err);
    ck_assert(m == NULL);
    ck_assert_msg(strncmp(err, "graph.onnx: ", 12) == 0 && strchr(err, '\n') == NULL, "%s", err);
    ck_assert_msg(strstr(err, want) != NULL, "expected '%s' in: %s", want, err);
    printf("refused: %s\n", err);
    pbw_free(w);
}

/* A 90-byte file claiming an input of 2^30 columns: the plan's activations (8 GiB for two
 * rows) are refused before anything is allocated, not attempted. */
START_TEST(test_activation_cap)
{
    pbw wide = two_nodes_wide("x", "a", "b", (int64_t)1 << 30);
    load_refused(&wide, "MiB of activations, over the 1024 MiB limit");
    pbw fits = two_nodes_wide("x", "a", "b", 1 << 16);
    model *m = NULL;
    ck_assert_msg(model_load(fits.b, fits.n, "graph.onnx", 2, &m, err, sizeof err) == PC_OK, "%s", err);
    model_close(m);
    pbw_free(&fits);
}
END_TEST

START_TEST(test_graph_structure)
{
    pbw ok = two_nodes("x", "a", "b");
    model *m = NULL;
    ck_assert_msg(model_load(ok.b, ok.n, "graph.onnx", 2, &m, err, sizeof err) == PC_OK, "%s", err);
    model_close(m);
    pbw_free(&ok);
    /* A cycle: A reads B's output, B reads A's. */
    pbw cycle = two_nodes("b", "a", "b");
    load_refused(&cycle, "node 'A'");
    /* A node reading a tensor that nothing defines. */
    pbw undef = two_nodes("x", "nowhere", "b");
    load_refused(&undef, "node 'B'");
    undef = two_nodes("x", "nowhere", "b");
    load_refused(&undef, "'nowhere'");
    /* A node reading its own output. */
    pbw self = two_nodes("x", "b", "b");
    load_refused(&self, "node 'B'");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("onnx");
    TCase *t = tcase_create("tensors");
    tcase_add_test(t, test_dims_overflow);
    tcase_add_test(t, test_dims_negative);
    tcase_add_test(t, test_data_size_mismatch);
    tcase_add_test(t, test_huge_claim_small_file);
    tcase_add_test(t, test_rank_and_counts);
    tcase_add_test(t, test_memory_budget);
    suite_add_tcase(s, t);
    TCase *w = tcase_create("wire");
    tcase_set_timeout(w, 60); /* valgrind */
    tcase_add_test(w, test_past_the_end_every_level);
    tcase_add_test(w, test_varints);
    tcase_add_test(w, test_wire_types);
    tcase_add_test(w, test_strings);
    tcase_add_test(w, test_unknown_fields);
    suite_add_tcase(s, w);
    TCase *g = tcase_create("graphs");
    tcase_add_test(g, test_subgraphs);
    tcase_add_test(g, test_external_data);
    tcase_add_test(g, test_graph_structure);
    tcase_add_test(g, test_activation_cap);
    suite_add_tcase(s, g);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
