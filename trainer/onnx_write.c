/* onnx_write.c — the ONNX protobuf wire format, written by hand (field numbers from
 * onnx.proto). A message is built in its own growing buffer and appended to its parent as a
 * length-delimited field, which is all the nesting protobuf needs. */
#include "trainer/onnx_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct pbuf {
    uint8_t *p;
    size_t len, cap;
    bool failed; /* out of memory: every later append is a no-op */
} pbuf;

static void pb_reserve(pbuf *b, size_t more)
{
    if (b->failed || b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more) cap *= 2;
    uint8_t *grown = realloc(b->p, cap);
    if (grown == NULL) {
        b->failed = true;
        return;
    }
    b->p = grown;
    b->cap = cap;
}

static void pb_bytes(pbuf *b, const void *data, size_t n)
{
    pb_reserve(b, n);
    if (b->failed || n == 0) return;
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void pb_varint(pbuf *b, uint64_t v)
{
    uint8_t tmp[10];
    int n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) tmp[n] |= 0x80;
        n++;
    } while (v);
    pb_bytes(b, tmp, (size_t)n);
}

static void pb_key(pbuf *b, int field, int wire) { pb_varint(b, ((uint64_t)field << 3) | (uint64_t)wire); }
static void pb_int(pbuf *b, int field, int64_t v)
{
    pb_key(b, field, 0);
    pb_varint(b, (uint64_t)v);
}
static void pb_len(pbuf *b, int field, const void *data, size_t n)
{
    pb_key(b, field, 2);
    pb_varint(b, n);
    pb_bytes(b, data, n);
}
static void pb_str(pbuf *b, int field, const char *s) { pb_len(b, field, s, strlen(s)); }
static void pb_float(pbuf *b, int field, float f)
{
    pb_key(b, field, 5);
    uint8_t le[4];
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++) le[i] = (uint8_t)(u >> (8 * i));
    pb_bytes(b, le, 4);
}
/* Appends child as field `field` of b and frees child. */
static void pb_msg(pbuf *b, int field, pbuf *child)
{
    if (child->failed) b->failed = true;
    else pb_len(b, field, child->p, child->len);
    free(child->p);
    *child = (pbuf){0};
}

/* onnx.proto field numbers. */
enum {
    MODEL_IR_VERSION = 1, MODEL_PRODUCER = 2, MODEL_PRODUCER_VERSION = 3, MODEL_GRAPH = 7, MODEL_OPSET = 8,
    OPSET_DOMAIN = 1, OPSET_VERSION = 2,
    GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INIT = 5, GRAPH_DOC = 10, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12,
    NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP = 4, NODE_ATTR = 5,
    ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_INTS = 8, ATTR_TYPE = 20,
    TENSOR_DIMS = 1, TENSOR_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW = 9,
    VI_NAME = 1, VI_TYPE = 2, TYPE_TENSOR = 1, TT_ELEM = 1, TT_SHAPE = 2, SHAPE_DIM = 1, DIM_VALUE = 1, DIM_PARAM = 2,
};
enum { ELEM_FLOAT = 1, ELEM_INT64 = 7, ATTR_TYPE_FLOAT = 1, ATTR_TYPE_INT = 2, ATTR_TYPE_INTS = 7 };

/* A float tensor initializer, little-endian raw data. */
static void add_init(pbuf *graph, const char *name, const int64_t *dims, int rank, const float *data)
{
    pbuf t = {0};
    int64_t count = 1;
    for (int i = 0; i < rank; i++) {
        pb_int(&t, TENSOR_DIMS, dims[i]);
        count *= dims[i];
    }
    pb_int(&t, TENSOR_TYPE, ELEM_FLOAT);
    pb_str(&t, TENSOR_NAME, name);
    pb_key(&t, TENSOR_RAW, 2);
    pb_varint(&t, (uint64_t)count * 4);
    pb_reserve(&t, (size_t)count * 4);
    for (int64_t i = 0; !t.failed && i < count; i++) {
        uint32_t u;
        memcpy(&u, &data[i], 4);
        uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        pb_bytes(&t, le, 4);
    }
    pb_msg(graph, GRAPH_INIT, &t);
}

/* A graph input or output: (N, width) of elem. */
static void add_value_info(pbuf *graph, int field, const char *name, int elem, int64_t width)
{
    pbuf vi = {0}, type = {0}, tt = {0}, shape = {0}, d0 = {0}, d1 = {0};
    pb_str(&d0, DIM_PARAM, "N");
    pb_int(&d1, DIM_VALUE, width);
    pb_msg(&shape, SHAPE_DIM, &d0);
    pb_msg(&shape, SHAPE_DIM, &d1);
    pb_int(&tt, TT_ELEM, elem);
    pb_msg(&tt, TT_SHAPE, &shape);
    pb_msg(&type, TYPE_TENSOR, &tt);
    pb_str(&vi, VI_NAME, name);
    pb_msg(&vi, VI_TYPE, &type);
    pb_msg(graph, field, &vi);
}

typedef struct attr {
    const char *name;
    int type; /* ATTR_TYPE_* */
    float f;
    int64_t i;
} attr;

static void add_node(pbuf *graph, const char *op, const char *name, const char *const *ins, int nin,
                     const char *out, const attr *attrs, int nattrs)
{
    pbuf n = {0};
    for (int i = 0; i < nin; i++) pb_str(&n, NODE_INPUT, ins[i]);
    pb_str(&n, NODE_OUTPUT, out);
    pb_str(&n, NODE_NAME, name);
    pb_str(&n, NODE_OP, op);
    for (int a = 0; a < nattrs; a++) {
        pbuf at = {0};
        pb_str(&at, ATTR_NAME, attrs[a].name);
        if (attrs[a].type == ATTR_TYPE_FLOAT) pb_float(&at, ATTR_F, attrs[a].f);
        else if (attrs[a].type == ATTR_TYPE_INT) pb_int(&at, ATTR_I, attrs[a].i);
        else pb_int(&at, ATTR_INTS, attrs[a].i); /* one-element list */
        pb_int(&at, ATTR_TYPE, attrs[a].type);
        pb_msg(&n, NODE_ATTR, &at);
    }
    pb_msg(graph, GRAPH_NODE, &n);
}

/* The embedding branches: Gather then ReduceMean over the bag. Returns the widths. */
static int64_t add_embeds(pbuf *g, const onnx_write_spec *s, char (*pooled)[96])
{
    int64_t width = 0;
    for (int e = 0; e < s->nembeds; e++) {
        const onnx_write_embed *em = &s->embeds[e];
        char table[96], gathered[96];
        snprintf(table, sizeof table, "embed.%s", em->input);
        snprintf(gathered, sizeof gathered, "embed.%s.rows", em->input);
        snprintf(pooled[e], sizeof pooled[e], "embed.%s.mean", em->input);
        int64_t dims[2] = {em->vocab, em->dim};
        add_init(g, table, dims, 2, em->table);
        const char *gin[2] = {table, em->input};
        attr axis0 = {"axis", ATTR_TYPE_INT, 0, 0};
        char name[128];
        snprintf(name, sizeof name, "gather_%s", em->input);
        add_node(g, "Gather", name, gin, 2, gathered, &axis0, 1);
        attr rm[2] = {{"axes", ATTR_TYPE_INTS, 0, 1}, {"keepdims", ATTR_TYPE_INT, 0, 0}};
        snprintf(name, sizeof name, "mean_%s", em->input);
        const char *rin[1] = {gathered};
        add_node(g, "ReduceMean", name, rin, 1, pooled[e], rm, 2);
        width += em->dim;
    }
    return width;
}

static const char *act_op(train_activation a)
{
    switch (a) {
    case TRAIN_ACT_RELU: return "Relu";
    case TRAIN_ACT_LEAKY_RELU: return "LeakyRelu";
    case TRAIN_ACT_TANH: return "Tanh";
    case TRAIN_ACT_SIGMOID: return "Sigmoid";
    default: return NULL;
    }
}

/* One layer from tensor `cur` (width *w) into a new tensor named in cur. */
static pc_status add_layer(pbuf *g, const onnx_write_layer *l, int i, char cur[96], int64_t *w, char *err,
                           size_t errlen)
{
    if (l->in != *w)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "onnx_write: layer %d takes %lld inputs but gets %lld", i,
                      (long long)l->in, (long long)*w);
    char name[96], out[96], pn[2][96];
    if (l->kind == TRAIN_LAYER_DROPOUT) return PC_OK; /* identity at inference */
    if (l->kind == TRAIN_LAYER_BATCHNORM) {
        if (!l->bn_scale || !l->bn_bias || !l->bn_mean || !l->bn_var)
            return pc_err(err, errlen, PC_ERR_INTERNAL, "onnx_write: batch norm layer %d lacks a parameter", i);
        static const char *const suffix[4] = {"weight", "bias", "running_mean", "running_var"};
        const float *data[4] = {l->bn_scale, l->bn_bias, l->bn_mean, l->bn_var};
        char names[4][96];
        const char *ins[5] = {cur, names[0], names[1], names[2], names[3]};
        for (int k = 0; k < 4; k++) {
            snprintf(names[k], sizeof names[k], "bn%d.%s", i, suffix[k]);
            add_init(g, names[k], &l->out, 1, data[k]);
        }
        snprintf(name, sizeof name, "batchnorm_%d", i);
        snprintf(out, sizeof out, "bn%d.out", i);
        attr eps = {"epsilon", ATTR_TYPE_FLOAT, (float)l->bn_eps, 0};
        add_node(g, "BatchNormalization", name, ins, 5, out, &eps, 1);
        memcpy(cur, out, 96);
        return PC_OK;
    }
    if (l->weight == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "onnx_write: dense layer %d has no weight", i);
    snprintf(pn[0], sizeof pn[0], "dense%d.weight", i);
    snprintf(pn[1], sizeof pn[1], "dense%d.bias", i);
    int64_t dims[2] = {l->weight_in_out ? l->in : l->out, l->weight_in_out ? l->out : l->in};
    add_init(g, pn[0], dims, 2, l->weight);
    if (l->bias) add_init(g, pn[1], &l->out, 1, l->bias);
    const char *ins[3] = {cur, pn[0], pn[1]};
    attr tb = {"transB", ATTR_TYPE_INT, 0, l->weight_in_out ? 0 : 1};
    snprintf(name, sizeof name, "gemm_%d", i);
    snprintf(out, sizeof out, "dense%d.out", i);
    add_node(g, "Gemm", name, ins, l->bias ? 3 : 2, out, &tb, 1);
    memcpy(cur, out, 96);
    const char *op = act_op(l->act);
    if (op != NULL) {
        const char *ain[1] = {cur};
        attr alpha = {"alpha", ATTR_TYPE_FLOAT, (float)l->alpha, 0};
        snprintf(name, sizeof name, "%s_%d", op, i);
        snprintf(out, sizeof out, "dense%d.act", i);
        add_node(g, op, name, ain, 1, out, &alpha, l->act == TRAIN_ACT_LEAKY_RELU ? 1 : 0);
        memcpy(cur, out, 96);
    }
    *w = l->out;
    return PC_OK;
}

/* The graph: inputs, embedding branches, concat, layers, and a final node (Softmax, Sigmoid,
 * or Identity for regression) that writes the output under its graph name. */
static pc_status build_graph(pbuf *g, const onnx_write_spec *s, char *err, size_t errlen)
{
    if (s->dense_width <= 0 && s->nembeds == 0)
        return pc_err(err, errlen, PC_ERR_INTERNAL, "onnx_write: the model has no input");
    pb_str(g, GRAPH_NAME, "precast_train");
    if (s->doc) pb_str(g, GRAPH_DOC, s->doc);
    char (*pooled)[96] = calloc((size_t)s->nembeds + 1, sizeof *pooled);
    if (pooled == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    char cur[96];
    int64_t w = add_embeds(g, s, pooled);
    if (s->nembeds > 0) {
        const char **ins = calloc((size_t)s->nembeds + 1, sizeof *ins);
        if (ins == NULL) {
            free(pooled);
            return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
        }
        int n = 0;
        if (s->dense_width > 0) ins[n++] = s->dense_input;
        for (int e = 0; e < s->nembeds; e++) ins[n++] = pooled[e];
        attr axis1 = {"axis", ATTR_TYPE_INT, 0, 1};
        snprintf(cur, sizeof cur, "concat.out");
        add_node(g, "Concat", "concat", ins, n, cur, &axis1, 1);
        free(ins);
        w += s->dense_width > 0 ? s->dense_width : 0;
    } else {
        snprintf(cur, sizeof cur, "%s", s->dense_input);
        w = s->dense_width;
    }
    free(pooled);
    for (int i = 0; i < s->nlayers; i++) {
        pc_status st = add_layer(g, &s->layers[i], i, cur, &w, err, errlen);
        if (st != PC_OK) return st;
    }
    const char *fin[1] = {cur};
    attr axis1 = {"axis", ATTR_TYPE_INT, 0, 1};
    if (s->final == ONNX_WRITE_FINAL_SOFTMAX) add_node(g, "Softmax", "softmax", fin, 1, s->output, &axis1, 1);
    else if (s->final == ONNX_WRITE_FINAL_SIGMOID) add_node(g, "Sigmoid", "sigmoid", fin, 1, s->output, NULL, 0);
    else add_node(g, "Identity", "output", fin, 1, s->output, NULL, 0);
    if (s->dense_width > 0) add_value_info(g, GRAPH_INPUT, s->dense_input, ELEM_FLOAT, s->dense_width);
    for (int e = 0; e < s->nembeds; e++) add_value_info(g, GRAPH_INPUT, s->embeds[e].input, ELEM_INT64, s->embeds[e].bag);
    add_value_info(g, GRAPH_OUTPUT, s->output, ELEM_FLOAT, w);
    return PC_OK;
}

pc_status onnx_write_bytes(const onnx_write_spec *s, uint8_t **bytes, size_t *len, char *err, size_t errlen)
{
    *bytes = NULL;
    *len = 0;
    pbuf graph = {0}, model = {0}, opset = {0};
    pc_status st = build_graph(&graph, s, err, errlen);
    if (st != PC_OK) {
        free(graph.p);
        return st;
    }
    pb_int(&model, MODEL_IR_VERSION, 8);
    pb_str(&model, MODEL_PRODUCER, "precast-train");
    pb_str(&model, MODEL_PRODUCER_VERSION, "1");
    pb_msg(&model, MODEL_GRAPH, &graph);
    pb_str(&opset, OPSET_DOMAIN, "");
    pb_int(&opset, OPSET_VERSION, 13);
    pb_msg(&model, MODEL_OPSET, &opset);
    if (model.failed) {
        free(model.p);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory while encoding the ONNX model");
    }
    *bytes = model.p;
    *len = model.len;
    return PC_OK;
}

pc_status onnx_write_file(const onnx_write_spec *s, const char *path, char *err, size_t errlen)
{
    uint8_t *bytes;
    size_t len;
    pc_status st = onnx_write_bytes(s, &bytes, &len, err, errlen);
    if (st != PC_OK) return st;
    size_t tl = strlen(path) + 5;
    char *tmp = malloc(tl);
    if (tmp == NULL) {
        free(bytes);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    }
    snprintf(tmp, tl, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) st = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", tmp, strerror(errno));
    for (size_t off = 0; st == PC_OK && off < len;) {
        ssize_t n = write(fd, bytes + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) st = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", tmp, n < 0 ? strerror(errno) : "short write");
        else off += (size_t)n;
    }
    if (st == PC_OK && fsync(fd) != 0) st = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", tmp, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && st == PC_OK) st = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", tmp, strerror(errno));
    if (st == PC_OK && rename(tmp, path) != 0) st = pc_err(err, errlen, PC_ERR_CANTCREAT, "%s: %s", path, strerror(errno));
    if (st != PC_OK && fd >= 0) unlink(tmp);
    free(tmp);
    free(bytes);
    return st;
}
