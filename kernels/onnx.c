/*
 * onnx.c — ONNX protobuf decoder; see onnx.h.
 *
 * Protobuf wire format in brief: a message is a sequence of fields, each a varint key
 * (field number << 3 | wire type) followed by a varint (type 0), 8 bytes (type 1), a varint
 * length and that many bytes (type 2: strings, bytes, sub-messages, packed repeated scalars)
 * or 4 bytes (type 5).  Repeated scalars may come packed (one type-2 field) or one field per
 * value, and a decoder must accept both.  Unknown fields are skipped.
 *
 * Messages are decoded in two passes where they hold repeated fields: the first counts, so
 * that each array is allocated once at its final size, the second fills.
 */
#include "kernels/onnx.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "onnx.c copies raw_data as it is: it assumes a little-endian host, as ONNX files are"
#endif

/* ---- arena: every allocation of one parse, freed at once ---------------------------------- */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
} chunk;

struct onnx_arena {
    chunk *head;
    size_t total;  /* bytes handed out (rounded), against the decoder's budget */
};

#define CHUNK_HDR ((sizeof(chunk) + 15) & ~(size_t)15)
#define CHUNK_MIN ((size_t)64 << 10)

/* Zeroed, 16-byte aligned memory that lives until the arena is freed; NULL if out of memory. */
static void *arena_alloc(struct onnx_arena *a, size_t n)
{
    if (n > SIZE_MAX / 4) return NULL;
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->head == NULL || a->head->cap - a->head->used < n) {
        size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
        chunk *c = calloc(1, CHUNK_HDR + cap);
        if (c == NULL) return NULL;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)a->head + CHUNK_HDR + a->head->used;
    a->head->used += n;
    return p;
}

static void arena_free(struct onnx_arena *a)
{
    if (a == NULL) return;
    chunk *c = a->head;
    while (c != NULL) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

/* ---- decoder state and errors ---------------------------------------------------------------- */

typedef struct dec {
    const char *file;
    char *err;
    size_t errlen;
    struct onnx_arena *a;
    size_t budget; /* at most this many bytes from the arena */
    pc_status st;
} dec;

/* Sets the error "file: message" and returns -1 so that callers can `return fail(...)`. */
__attribute__((format(printf, 2, 3))) static int fail(dec *d, const char *fmt, ...)
{
    char msg[PC_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Names come from the file: keep the message on one line whatever they hold. */
    for (char *c = msg; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    d->st = pc_err(d->err, d->errlen, PC_ERR_CONFIG, "%s: %s", d->file, msg);
    return -1;
}

static int oom(dec *d, size_t bytes)
{
    d->st = pc_err(d->err, d->errlen, PC_ERR_INTERNAL,
                   "%s: out of memory decoding the model (%zu bytes)", d->file, bytes);
    return -1;
}

static void *dalloc(dec *d, size_t n)
{
    /* Counted as arena_alloc rounds, so that total never passes budget. */
    size_t rounded = n > SIZE_MAX / 4 ? SIZE_MAX : n == 0 ? 16 : (n + 15) & ~(size_t)15;
    if (rounded > d->budget - d->a->total) {
        d->st = pc_err(d->err, d->errlen, PC_ERR_CONFIG,
                       "%s: decoding it would take more than %zu bytes of memory (%d times the "
                       "file's size, plus %d MiB): a corrupt or hostile file",
                       d->file, d->budget, ONNX_MEM_FACTOR, ONNX_MEM_FLOOR_MIB);
        return NULL;
    }
    void *p = arena_alloc(d->a, n);
    if (p == NULL) oom(d, n);
    else d->a->total += rounded;
    return p;
}

/* ---- wire format ----------------------------------------------------------------------------- */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

int onnx_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    const uint8_t *q = *p;
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (q >= end) return 0;
        uint8_t b = *q++;
        if (i == 9 && b > 1) return 0; /* the 10th byte may only carry bit 63 */
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *v = x;
            *p = q;
            return 1;
        }
    }
    return 0;
}

typedef struct pbf {
    uint32_t num;
    int wire;
    uint64_t v;        /* WT_VARINT, and the bits of WT_I64 / WT_I32 */
    const uint8_t *p;  /* WT_LEN */
    size_t len;
} pbf;

typedef struct pbr {
    const uint8_t *p, *end;
} pbr;

static pbr pb_open(const uint8_t *p, size_t len)
{
    pbr r = {p, p + len};
    return r;
}

static uint64_t le_bits(const uint8_t *p, int n)
{
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--) x = (x << 8) | p[i];
    return x;
}

/* Reads the next field. Returns 1 for a field, 0 at the end of the message, -1 if malformed
 * (*why says how). Never reads outside [r->p, r->end). */
static int pb_next(pbr *r, pbf *f, const char **why)
{
    if (r->p >= r->end) return 0;
    uint64_t key;
    if (!onnx_varint(&r->p, r->end, &key)) {
        *why = "truncated field key";
        return -1;
    }
    uint64_t num = key >> 3;
    if (num == 0 || num > 536870911u) {
        *why = "invalid field number";
        return -1;
    }
    f->num = (uint32_t)num;
    f->wire = (int)(key & 7);
    f->p = NULL;
    f->len = 0;
    f->v = 0;
    size_t left = (size_t)(r->end - r->p);
    switch (f->wire) {
    case WT_VARINT:
        if (!onnx_varint(&r->p, r->end, &f->v)) {
            *why = "truncated or overlong varint";
            return -1;
        }
        return 1;
    case WT_I64:
        if (left < 8) {
            *why = "truncated 64-bit field";
            return -1;
        }
        f->v = le_bits(r->p, 8);
        r->p += 8;
        return 1;
    case WT_I32:
        if (left < 4) {
            *why = "truncated 32-bit field";
            return -1;
        }
        f->v = le_bits(r->p, 4);
        r->p += 4;
        return 1;
    case WT_LEN: {
        uint64_t n;
        if (!onnx_varint(&r->p, r->end, &n)) {
            *why = "truncated length";
            return -1;
        }
        if (n > (uint64_t)(r->end - r->p)) {
            *why = "a length runs past the end of the data (file truncated?)";
            return -1;
        }
        f->p = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 1;
    }
    case 3:
    case 4:
        *why = "wire type 3/4 (a protobuf group, which no ONNX message uses)";
        return -1;
    default:
        *why = "invalid wire type 6/7 (not protobuf)";
        return -1;
    }
}

static int bad_wire(dec *d, const char *where, const pbf *f)
{
    return fail(d, "%s: field %u has the wrong wire type %d (not an ONNX file?)", where,
                (unsigned)f->num, f->wire);
}

static int malformed(dec *d, const char *where, const char *why)
{
    return fail(d, "%s: malformed protobuf: %s", where, why);
}

/* A NUL-terminated copy of a string field, or NULL (error set) if it holds a NUL byte, which
 * would silently cut it short (and make two different names compare equal).  A name (of a
 * node, tensor, op, domain or dim: `name` true) may hold no control character either: names
 * end up in one-line error messages and in `precast inspect`'s output. `where` names the
 * field's owner in the message. */
static const char *dstr_of(dec *d, const uint8_t *p, size_t len, const char *where, bool name)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] == 0) {
            fail(d, "%s: a string holds a NUL byte at offset %zu", where, i);
            return NULL;
        }
        if (name && (p[i] < 0x20 || p[i] == 0x7f)) {
            fail(d, "%s: a name holds the control character 0x%02x at offset %zu", where,
                 (unsigned)p[i], i);
            return NULL;
        }
    }
    char *s = dalloc(d, len + 1);
    if (s == NULL) return NULL;
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

static const char *dstr(dec *d, const uint8_t *p, size_t len, const char *where)
{
    return dstr_of(d, p, len, where, true);
}

/* A free text (an attribute's string value, the producer): NUL bytes refused only. */
static const char *dtext(dec *d, const uint8_t *p, size_t len, const char *where)
{
    return dstr_of(d, p, len, where, false);
}

static float f32_of(uint64_t bits)
{
    uint32_t u = (uint32_t)bits;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static double f64_of(uint64_t bits)
{
    double x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* Repeated scalar kinds and what they are stored as. */
enum { RK_VARINT, /* -> int64_t */ RK_F32, /* -> float */ RK_F64 /* -> float */ };

static void rep_store(void *out, int kind, int64_t i, uint64_t bits)
{
    if (kind == RK_VARINT)
        ((int64_t *)out)[i] = (int64_t)bits;
    else if (kind == RK_F32)
        ((float *)out)[i] = f32_of(bits);
    else
        ((float *)out)[i] = (float)f64_of(bits);
}

/* Counts (out == NULL) or gathers (into out, at most cap values) the values of repeated
 * scalar field `num` of message [p, p+len), packed or not. Returns the count, or -1 with
 * *why set if malformed. */
static int64_t rep_scan(const uint8_t *p, size_t len, uint32_t num, int kind, void *out,
                        int64_t cap, const char **why)
{
    pbr r = pb_open(p, len);
    pbf f;
    int64_t n = 0;
    int rc;
    int scalar_wire = kind == RK_VARINT ? WT_VARINT : kind == RK_F32 ? WT_I32 : WT_I64;
    while ((rc = pb_next(&r, &f, why)) > 0) {
        if (f.num != num) continue;
        if (f.wire == scalar_wire) {
            if (out != NULL && n < cap) rep_store(out, kind, n, f.v);
            n++;
        } else if (f.wire == WT_LEN) {
            const uint8_t *q = f.p, *e = f.p + f.len;
            if (kind != RK_VARINT) {
                size_t w = kind == RK_F32 ? 4 : 8;
                if (f.len % w != 0) {
                    *why = "packed fixed-size values do not fill their field";
                    return -1;
                }
                if (out == NULL) {
                    n += (int64_t)(f.len / w);
                    continue;
                }
                for (; q < e; q += w, n++)
                    if (n < cap) rep_store(out, kind, n, le_bits(q, (int)w));
            } else {
                while (q < e) {
                    uint64_t v;
                    if (!onnx_varint(&q, e, &v)) {
                        *why = "truncated packed varint";
                        return -1;
                    }
                    if (out != NULL && n < cap) rep_store(out, kind, n, v);
                    n++;
                }
            }
        } else {
            *why = "a repeated field has the wrong wire type";
            return -1;
        }
    }
    return rc < 0 ? -1 : n;
}

/* ---- TensorProto ------------------------------------------------------------------------------ */

const char *onnx_dtype_str(int32_t t)
{
    switch (t) {
    case ONNX_DTYPE_FLOAT: return "float32";
    case ONNX_DTYPE_INT32: return "int32";
    case ONNX_DTYPE_INT64: return "int64";
    case ONNX_DTYPE_DOUBLE: return "float64";
    case 2: return "uint8 (unsupported)";
    case 3: return "int8 (unsupported)";
    case 8: return "string (unsupported)";
    case ONNX_DTYPE_BOOL: return "bool";
    case 10: return "float16 (unsupported)";
    case 16: return "bfloat16 (unsupported)";
    }
    return "unsupported type";
}

/* True if `path` (an external_data location) stays inside the model's folder: relative, and
 * with no ".." component (on either kind of separator, as the file may come from Windows). */
static bool path_is_inside(const char *path)
{
    if (path[0] == '/' || path[0] == '\\' || path[0] == '\0') return false;
    if (strchr(path, ':') != NULL) return false; /* C:\..., or a URL */
    for (const char *c = path; *c != '\0';) {
        size_t n = strcspn(c, "/\\");
        if (n == 2 && c[0] == '.' && c[1] == '.') return false;
        c += n;
        if (*c != '\0') c++;
    }
    return true;
}

/* One TensorProto.external_data entry (StringStringEntryProto: key 1, value 2): sets *path
 * to the value of the "location" key. */
static int external_location(dec *d, const uint8_t *p, size_t len, const char *where,
                             const char **path)
{
    const char *why = NULL;
    pbr r = pb_open(p, len);
    pbf f;
    int rc;
    const uint8_t *key = NULL, *val = NULL;
    size_t klen = 0, vlen = 0;
    while ((rc = pb_next(&r, &f, &why)) > 0) {
        if (f.num != 1 && f.num != 2) continue;
        if (f.wire != WT_LEN) return bad_wire(d, where, &f);
        if (f.num == 1) key = f.p, klen = f.len;
        else val = f.p, vlen = f.len;
    }
    if (rc < 0) return malformed(d, where, why);
    if (key != NULL && klen == 8 && memcmp(key, "location", 8) == 0 && val != NULL)
        if ((*path = dtext(d, val, vlen, where)) == NULL) return -1;
    return 0;
}

/* Decodes a TensorProto. `what` names it in messages when it has no name of its own (an
 * attribute's tensor); an initializer is named by its name. */
static int parse_tensor(dec *d, const uint8_t *p, size_t len, onnx_tensor *t, const char *what,
                        bool is_init)
{
    const char *why = NULL;
    pbr r = pb_open(p, len);
    pbf f;
    int rc;
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    bool has_raw = false, external = false;
    const char *ext_path = NULL;
    int64_t dtype = 0, location = 0;
    const char *name = "";
    char label[300];
    snprintf(label, sizeof label, "%s", what);
    while ((rc = pb_next(&r, &f, &why)) > 0) {
        switch (f.num) {
        case 2:
            if (f.wire != WT_VARINT) return bad_wire(d, label, &f);
            dtype = (int64_t)f.v;
            break;
        case 3: return fail(d, "%s: segmented tensors are not supported", label);
        case 8:
            if (f.wire != WT_LEN) return bad_wire(d, label, &f);
            if ((name = dstr(d, f.p, f.len, label)) == NULL) return -1;
            if (is_init) snprintf(label, sizeof label, "initializer '%.200s'", name);
            break;
        case 9:
            if (f.wire != WT_LEN) return bad_wire(d, label, &f);
            raw = f.p;
            raw_len = f.len;
            has_raw = true;
            break;
        case 13:
            external = true;
            if (f.wire == WT_LEN && external_location(d, f.p, f.len, label, &ext_path) < 0)
                return -1;
            break;
        case 14:
            if (f.wire != WT_VARINT) return bad_wire(d, label, &f);
            location = (int64_t)f.v;
            break;
        default: break;
        }
    }
    if (rc < 0) return malformed(d, label, why);
    t->name = name;
    t->data_type = (int32_t)dtype;
    if (external || location == 1) {
        if (ext_path != NULL && !path_is_inside(ext_path))
            return fail(d, "%s: refers to external data at '%.200s', outside the model's folder "
                           "(data_location=EXTERNAL); precast refuses it: a model may not make "
                           "the job read other files on the machine",
                        label, ext_path);
        return fail(d, "%s: keeps its data in an external file%s%.200s%s "
                       "(data_location=EXTERNAL), which precast does not read yet (every rank "
                       "gets the .onnx bytes only); re-export with the weights inside the .onnx",
                    label, ext_path != NULL ? " '" : "", ext_path != NULL ? ext_path : "",
                    ext_path != NULL ? "'" : "");
    }

    /* dims: rank first (before allocating anything), then the product, checked. */
    int64_t rank = rep_scan(p, len, 1, RK_VARINT, NULL, 0, &why);
    if (rank < 0) return malformed(d, label, why);
    if (rank > ONNX_MAX_RANK)
        return fail(d, "%s: rank %lld exceeds the supported %d", label, (long long)rank,
                    ONNX_MAX_RANK);
    rep_scan(p, len, 1, RK_VARINT, t->dims, ONNX_MAX_RANK, &why);
    t->rank = (int)rank;
    int64_t count = 1;
    bool zero = false;
    for (int i = 0; i < t->rank; i++) {
        int64_t dim = t->dims[i];
        if (dim < 0) return fail(d, "%s: dim %d is negative (%lld)", label, i, (long long)dim);
        if (dim >= ONNX_MAX_ELEMS)
            return fail(d, "%s: dim %d (%lld) is too large", label, i, (long long)dim);
        if (dim == 0) zero = true;
        else if (count > (ONNX_MAX_ELEMS - 1) / dim)
            return fail(d, "%s: dims hold more than 2^31 elements, more than precast accepts",
                        label);
        else count *= dim;
    }
    if (zero) count = 0;
    t->count = count;

    size_t esize;
    int field, kind;
    switch (dtype) {
    case ONNX_DTYPE_FLOAT: esize = 4; field = 4; kind = RK_F32; break;
    case ONNX_DTYPE_INT32: esize = 4; field = 5; kind = RK_VARINT; break;
    case ONNX_DTYPE_INT64: esize = 8; field = 7; kind = RK_VARINT; break;
    case ONNX_DTYPE_DOUBLE: esize = 8; field = 10; kind = RK_F64; break;
    case ONNX_DTYPE_BOOL: esize = 1; field = 5; kind = RK_VARINT; break;
    default:
        return fail(d, "%s: data type %lld (%s) is not supported; precast reads float32, "
                       "float64, int32, int64 and bool tensors",
                    label, (long long)dtype, onnx_dtype_str((int32_t)dtype));
    }
    bool is_float = dtype == ONNX_DTYPE_FLOAT || dtype == ONNX_DTYPE_DOUBLE;
    size_t need = (size_t)count * esize;
    if (has_raw) {
        if (raw_len != need)
            return fail(d, "%s: raw_data holds %zu bytes, dims need %zu", label, raw_len, need);
    } else {
        int64_t n = rep_scan(p, len, (uint32_t)field, kind, NULL, 0, &why);
        if (n < 0) return malformed(d, label, why);
        if (n != count) {
            const char *fname = field == 4 ? "float_data" : field == 5 ? "int32_data"
                              : field == 7 ? "int64_data" : "double_data";
            return fail(d, "%s: %s holds %lld values, dims need %lld", label, fname,
                        (long long)n, (long long)count);
        }
    }

    /* The data, converted: floats for FLOAT/DOUBLE, int64 for INT64/INT32. */
    void *data = dalloc(d, (size_t)count * (is_float ? sizeof(float) : sizeof(int64_t)));
    if (data == NULL) return -1;
    if (has_raw) {
        if (dtype == ONNX_DTYPE_FLOAT || dtype == ONNX_DTYPE_INT64) {
            if (need > 0) memcpy(data, raw, need);
        } else {
            for (int64_t i = 0; i < count; i++) {
                uint64_t bits = le_bits(raw + (size_t)i * esize, (int)esize);
                if (dtype == ONNX_DTYPE_DOUBLE) ((float *)data)[i] = (float)f64_of(bits);
                else if (dtype == ONNX_DTYPE_BOOL) ((int64_t *)data)[i] = bits != 0;
                else ((int64_t *)data)[i] = (int32_t)(uint32_t)bits;
            }
        }
    } else {
        rep_scan(p, len, (uint32_t)field, kind, data, count, &why);
        if (dtype == ONNX_DTYPE_INT32) /* int32_data holds sign-extended varints */
            for (int64_t i = 0; i < count; i++)
                ((int64_t *)data)[i] = (int32_t)((int64_t *)data)[i];
        else if (dtype == ONNX_DTYPE_BOOL)
            for (int64_t i = 0; i < count; i++)
                ((int64_t *)data)[i] = ((int64_t *)data)[i] != 0;
    }
    if (is_float) t->f = data;
    else t->i = data;
    return 0;
}

/* ---- AttributeProto, NodeProto ---------------------------------------------------------------- */

static int parse_graph(dec *d, const uint8_t *p, size_t len, onnx_graph *g, const char *where,
                       int depth);

/* Decodes the subgraph of field [p, p+len) of attribute `where` into *g; `depth` is the
 * subgraph's own depth. */
static int parse_subgraph(dec *d, const uint8_t *p, size_t len, onnx_graph *g,
                          const char *where, int depth)
{
    if (depth > ONNX_MAX_GRAPH_DEPTH)
        return fail(d, "%s: subgraphs nest more than %d deep", where, ONNX_MAX_GRAPH_DEPTH);
    char label[400];
    snprintf(label, sizeof label, "%.300s subgraph", where);
    return parse_graph(d, p, len, g, label, depth);
}

/* `node` names the node in messages ("node 'Gemm_0'"); `depth` is that of its graph. */
static int parse_attr(dec *d, const uint8_t *p, size_t len, onnx_attr *a, const char *node,
                      int depth)
{
    const char *why = NULL;
    char where[300];
    snprintf(where, sizeof where, "%.140s attribute", node);
    pbr r = pb_open(p, len);
    pbf f;
    int rc;
    int64_t type = -1, ng = 0;
    bool has_f = false, has_i = false, has_s = false;
    const uint8_t *tp = NULL, *gp = NULL;
    size_t tlen = 0, glen = 0;
    a->name = "";
    while ((rc = pb_next(&r, &f, &why)) > 0) {
        switch (f.num) {
        case 1:
            if (f.wire != WT_LEN) return bad_wire(d, where, &f);
            if ((a->name = dstr(d, f.p, f.len, where)) == NULL) return -1;
            snprintf(where, sizeof where, "%.140s attribute '%.100s'", node, a->name);
            break;
        case 20:
            if (f.wire != WT_VARINT) return bad_wire(d, where, &f);
            type = (int64_t)f.v;
            break;
        case 2:
            if (f.wire != WT_I32) return bad_wire(d, where, &f);
            a->f = f32_of(f.v);
            has_f = true;
            break;
        case 3:
            if (f.wire != WT_VARINT) return bad_wire(d, where, &f);
            a->i = (int64_t)f.v;
            has_i = true;
            break;
        case 4:
            if (f.wire != WT_LEN) return bad_wire(d, where, &f);
            if ((a->s = dtext(d, f.p, f.len, where)) == NULL) return -1;
            has_s = true;
            break;
        case 5:
            if (f.wire != WT_LEN) return bad_wire(d, where, &f);
            tp = f.p;
            tlen = f.len;
            break;
        case 6:
            if (f.wire != WT_LEN) return bad_wire(d, where, &f);
            gp = f.p;
            glen = f.len;
            break;
        case 11:
            if (f.wire != WT_LEN) return bad_wire(d, where, &f);
            ng++;
            break;
        default: break;
        }
    }
    if (rc < 0) return malformed(d, where, why);
    int64_t nf = rep_scan(p, len, 7, RK_F32, NULL, 0, &why);
    if (nf < 0) return malformed(d, where, why);
    int64_t ni = rep_scan(p, len, 8, RK_VARINT, NULL, 0, &why);
    if (ni < 0) return malformed(d, where, why);
    if (type < 0) { /* IR version 1 files carry no type: infer it from the field present */
        type = nf > 0 ? ONNX_ATTR_FLOATS : ni > 0 ? ONNX_ATTR_INTS : ng > 0 ? ONNX_ATTR_GRAPHS
             : tp != NULL ? ONNX_ATTR_TENSOR : gp != NULL ? ONNX_ATTR_GRAPH
             : has_s ? ONNX_ATTR_STRING : has_i ? ONNX_ATTR_INT : has_f ? ONNX_ATTR_FLOAT
             : ONNX_ATTR_UNDEFINED;
    }
    a->type = (int)(type > 100 ? 100 : type);
    if (a->type == ONNX_ATTR_STRING && a->s == NULL) a->s = "";
    if (a->type == ONNX_ATTR_FLOATS) {
        float *v = dalloc(d, (size_t)nf * sizeof *v);
        if (v == NULL) return -1;
        rep_scan(p, len, 7, RK_F32, v, nf, &why);
        a->floats = v;
        a->n = nf;
    } else if (a->type == ONNX_ATTR_INTS) {
        int64_t *v = dalloc(d, (size_t)ni * sizeof *v);
        if (v == NULL) return -1;
        rep_scan(p, len, 8, RK_VARINT, v, ni, &why);
        a->ints = v;
        a->n = ni;
    } else if (a->type == ONNX_ATTR_TENSOR) {
        if (tp == NULL) return fail(d, "%s: TENSOR attribute without a tensor", where);
        onnx_tensor *t = dalloc(d, sizeof *t);
        if (t == NULL) return -1;
        if (parse_tensor(d, tp, tlen, t, where, false) < 0) return -1;
        a->t = t;
    } else if (a->type == ONNX_ATTR_GRAPH) {
        if (gp == NULL) return fail(d, "%s: GRAPH attribute without a graph", where);
        onnx_graph *g = dalloc(d, sizeof *g);
        if (g == NULL) return -1;
        if (parse_subgraph(d, gp, glen, g, where, depth + 1) < 0) return -1;
        a->g = g;
    } else if (a->type == ONNX_ATTR_GRAPHS) {
        onnx_graph *g = dalloc(d, (size_t)ng * sizeof *g);
        if (g == NULL) return -1;
        int64_t k = 0;
        r = pb_open(p, len);
        while (pb_next(&r, &f, &why) > 0)
            if (f.num == 11 && parse_subgraph(d, f.p, f.len, &g[k++], where, depth + 1) < 0)
                return -1;
        a->graphs = g;
        a->n = ng;
    }
    return 0;
}

static int parse_node(dec *d, const uint8_t *p, size_t len, onnx_node *n, int64_t index,
                      int depth)
{
    const char *why = NULL;
    char where[64];
    snprintf(where, sizeof where, "node #%lld", (long long)index);
    pbr r = pb_open(p, len);
    pbf f;
    int rc;
    n->name = n->op_type = n->domain = "";
    /* Pass 1: counts, and the name first so that later messages can use it. */
    while ((rc = pb_next(&r, &f, &why)) > 0) {
        if (f.num >= 1 && f.num <= 7 && f.num != 6 && f.wire != WT_LEN)
            return bad_wire(d, where, &f);
        switch (f.num) {
        case 1: n->n_in++; break;
        case 2: n->n_out++; break;
        case 3: if ((n->name = dstr(d, f.p, f.len, where)) == NULL) return -1; break;
        case 4: if ((n->op_type = dstr(d, f.p, f.len, where)) == NULL) return -1; break;
        case 5: n->n_attr++; break;
        case 7: if ((n->domain = dstr(d, f.p, f.len, where)) == NULL) return -1; break;
        default: break;
        }
    }
    if (rc < 0) return malformed(d, where, why);
    char label[140];
    if (n->name[0] != '\0') snprintf(label, sizeof label, "node '%.120s'", n->name);
    else snprintf(label, sizeof label, "%s", where);
    const char **in = dalloc(d, (size_t)n->n_in * sizeof *in);
    const char **out = dalloc(d, (size_t)n->n_out * sizeof *out);
    onnx_attr *attr = dalloc(d, (size_t)n->n_attr * sizeof *attr);
    if (in == NULL || out == NULL || attr == NULL) return -1;
    int64_t ni = 0, no = 0, na = 0;
    r = pb_open(p, len);
    while (pb_next(&r, &f, &why) > 0) {
        if (f.num == 1) {
            if ((in[ni++] = dstr(d, f.p, f.len, label)) == NULL) return -1;
        } else if (f.num == 2) {
            if ((out[no++] = dstr(d, f.p, f.len, label)) == NULL) return -1;
        } else if (f.num == 5) {
            if (parse_attr(d, f.p, f.len, &attr[na++], label, depth) < 0) return -1;
        }
    }
    n->in = in;
    n->out = out;
    n->attr = attr;
    return 0;
}

const onnx_attr *onnx_node_attr(const onnx_node *n, const char *name)
{
    for (int64_t i = 0; i < n->n_attr; i++)
        if (strcmp(n->attr[i].name, name) == 0) return &n->attr[i];
    return NULL;
}

/* ---- ValueInfoProto ---------------------------------------------------------------------------- */

static int parse_shape(dec *d, const uint8_t *p, size_t len, onnx_value_info *v,
                       const char *where)
{
    const char *why = NULL;
    pbr r = pb_open(p, len);
    pbf f;
    int rc;
    v->has_shape = 1;
    while ((rc = pb_next(&r, &f, &why)) > 0) {
        if (f.num != 1) continue;
        if (f.wire != WT_LEN) return bad_wire(d, where, &f);
        if (v->rank >= ONNX_MAX_RANK)
            return fail(d, "%s: rank exceeds the supported %d", where, ONNX_MAX_RANK);
        int k = v->rank++;
        v->dims[k] = -1;
        v->dim_param[k] = NULL;
        pbr dr = pb_open(f.p, f.len);
        pbf g;
        int rc2;
        while ((rc2 = pb_next(&dr, &g, &why)) > 0) {
            if (g.num == 1) {
                if (g.wire != WT_VARINT) return bad_wire(d, where, &g);
                if ((int64_t)g.v < 0)
                    return fail(d, "%s: dim %d is negative", where, k);
                v->dims[k] = (int64_t)g.v;
                v->dim_param[k] = NULL;
            } else if (g.num == 2) {
                if (g.wire != WT_LEN) return bad_wire(d, where, &g);
                if ((v->dim_param[k] = dstr(d, g.p, g.len, where)) == NULL) return -1;
                v->dims[k] = -1;
            }
        }
        if (rc2 < 0) return malformed(d, where, why);
    }
    return rc < 0 ? malformed(d, where, why) : 0;
}

static int parse_value_info(dec *d, const uint8_t *p, size_t len, onnx_value_info *v,
                            const char *kind, int64_t index)
{
    const char *why = NULL;
    char where[400];
    snprintf(where, sizeof where, "%.180s #%lld", kind, (long long)index);
    pbr r = pb_open(p, len);
    pbf f;
    int rc;
    const uint8_t *tp = NULL;
    size_t tlen = 0;
    v->name = "";
    while ((rc = pb_next(&r, &f, &why)) > 0) {
        if (f.num == 1) {
            if (f.wire != WT_LEN) return bad_wire(d, where, &f);
            if ((v->name = dstr(d, f.p, f.len, where)) == NULL) return -1;
            snprintf(where, sizeof where, "%.180s '%.200s'", kind, v->name);
        } else if (f.num == 2) {
            if (f.wire != WT_LEN) return bad_wire(d, where, &f);
            tp = f.p;
            tlen = f.len;
        }
    }
    if (rc < 0) return malformed(d, where, why);
    if (tp == NULL) return 0;
    /* TypeProto: only tensor_type (1) is of interest; other kinds leave elem_type 0. */
    r = pb_open(tp, tlen);
    while ((rc = pb_next(&r, &f, &why)) > 0) {
        if (f.num != 1) continue;
        if (f.wire != WT_LEN) return bad_wire(d, where, &f);
        pbr tr = pb_open(f.p, f.len);
        pbf g;
        int rc2;
        while ((rc2 = pb_next(&tr, &g, &why)) > 0) {
            if (g.num == 1) {
                if (g.wire != WT_VARINT) return bad_wire(d, where, &g);
                v->elem_type = (int32_t)g.v;
            } else if (g.num == 2) {
                if (g.wire != WT_LEN) return bad_wire(d, where, &g);
                v->rank = 0;
                if (parse_shape(d, g.p, g.len, v, where) < 0) return -1;
            }
        }
        if (rc2 < 0) return malformed(d, where, why);
    }
    return rc < 0 ? malformed(d, where, why) : 0;
}

/* ---- GraphProto, ModelProto -------------------------------------------------------------------- */

/* Decodes a GraphProto at `depth` (0 for the model's graph); `where` names it in messages. */
static int parse_graph(dec *d, const uint8_t *p, size_t len, onnx_graph *g, const char *where,
                       int depth)
{
    const char *why = NULL;
    pbr r = pb_open(p, len);
    pbf f;
    int rc;
    g->name = "";
    while ((rc = pb_next(&r, &f, &why)) > 0) {
        if ((f.num == 1 || f.num == 2 || f.num == 5 || f.num == 11 || f.num == 12) &&
            f.wire != WT_LEN)
            return bad_wire(d, where, &f);
        switch (f.num) {
        case 1: g->n_node++; break;
        case 2: if ((g->name = dstr(d, f.p, f.len, where)) == NULL) return -1; break;
        case 5: g->n_init++; break;
        case 11: g->n_input++; break;
        case 12: g->n_output++; break;
        case 15: return fail(d, "%s: sparse initializers are not supported", where);
        default: break;
        }
    }
    if (rc < 0) return malformed(d, where, why);
    onnx_node *node = dalloc(d, (size_t)g->n_node * sizeof *node);
    onnx_tensor *init = dalloc(d, (size_t)g->n_init * sizeof *init);
    onnx_value_info *in = dalloc(d, (size_t)g->n_input * sizeof *in);
    onnx_value_info *out = dalloc(d, (size_t)g->n_output * sizeof *out);
    if (node == NULL || init == NULL || in == NULL || out == NULL) return -1;
    g->node = node;
    g->init = init;
    g->input = in;
    g->output = out;
    /* In a subgraph, inputs and outputs are named as the subgraph's own. */
    char kin[200], kout[200];
    snprintf(kin, sizeof kin, "%.150s input", depth == 0 ? "graph" : where);
    snprintf(kout, sizeof kout, "%.150s output", depth == 0 ? "graph" : where);
    int64_t nn = 0, nt = 0, ni = 0, no = 0;
    r = pb_open(p, len);
    while (pb_next(&r, &f, &why) > 0) {
        char what[64];
        switch (f.num) {
        case 1:
            if (parse_node(d, f.p, f.len, &node[nn], nn, depth) < 0) return -1;
            nn++;
            break;
        case 5:
            snprintf(what, sizeof what, "initializer #%lld", (long long)nt);
            if (parse_tensor(d, f.p, f.len, &init[nt++], what, true) < 0) return -1;
            break;
        case 11:
            if (parse_value_info(d, f.p, f.len, &in[ni], kin, ni) < 0) return -1;
            ni++;
            break;
        case 12:
            if (parse_value_info(d, f.p, f.len, &out[no], kout, no) < 0) return -1;
            no++;
            break;
        default: break;
        }
    }
    return 0;
}

static int parse_model(dec *d, const uint8_t *p, size_t len, onnx_model *m)
{
    const char *why = NULL;
    pbr r = pb_open(p, len);
    pbf f;
    int rc;
    const uint8_t *gp = NULL;
    size_t glen = 0;
    m->producer_name = m->producer_version = "";
    while ((rc = pb_next(&r, &f, &why)) > 0) {
        switch (f.num) {
        case 1:
            if (f.wire != WT_VARINT) return bad_wire(d, "model", &f);
            m->ir_version = (int64_t)f.v;
            break;
        case 2:
        case 3: {
            if (f.wire != WT_LEN) return bad_wire(d, "model", &f);
            const char *s = dtext(d, f.p, f.len, f.num == 2 ? "producer_name" : "producer_version");
            if (s == NULL) return -1;
            if (f.num == 2) m->producer_name = s;
            else m->producer_version = s;
            break;
        }
        case 7:
            if (f.wire != WT_LEN) return bad_wire(d, "model", &f);
            gp = f.p;
            glen = f.len;
            m->has_graph = 1;
            break;
        case 8: {
            if (f.wire != WT_LEN) return bad_wire(d, "model", &f);
            pbr orr = pb_open(f.p, f.len);
            pbf g;
            int rc2;
            bool default_domain = true;
            int64_t version = 0;
            while ((rc2 = pb_next(&orr, &g, &why)) > 0) {
                if (g.num == 1 && g.wire == WT_LEN)
                    default_domain = g.len == 0 || (g.len == 7 && memcmp(g.p, "ai.onnx", 7) == 0);
                else if (g.num == 2 && g.wire == WT_VARINT)
                    version = (int64_t)g.v;
                else if (g.num == 1 || g.num == 2)
                    return bad_wire(d, "model opset_import", &g);
            }
            if (rc2 < 0) return malformed(d, "model opset_import", why);
            if (default_domain) m->opset = version;
            break;
        }
        default: break;
        }
    }
    if (rc < 0) return malformed(d, "model", why);
    if (gp == NULL) return fail(d, "contains no graph (is it an ONNX model?)");
    onnx_graph g = {0};
    if (parse_graph(d, gp, glen, &g, "graph", 0) < 0) return -1;
    m->graph_name = g.name;
    m->n_node = g.n_node;
    m->n_init = g.n_init;
    m->n_input = g.n_input;
    m->n_output = g.n_output;
    m->node = g.node;
    m->init = g.init;
    m->input = g.input;
    m->output = g.output;
    return 0;
}

pc_status onnx_parse(const void *bytes, size_t len, const char *name, onnx_model **out,
                     char *err, size_t errlen)
{
    *out = NULL;
    dec d = {name != NULL ? name : "model", err, errlen, NULL, 0, PC_OK};
    size_t floor = (size_t)ONNX_MEM_FLOOR_MIB << 20;
    d.budget = len > (SIZE_MAX - floor) / ONNX_MEM_FACTOR ? SIZE_MAX
             : len * ONNX_MEM_FACTOR + floor;
    d.a = calloc(1, sizeof *d.a);
    if (d.a == NULL) return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", d.file);
    onnx_model *m = arena_alloc(d.a, sizeof *m);
    if (m == NULL) {
        arena_free(d.a);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "%s: out of memory", d.file);
    }
    m->arena = d.a;
    if (parse_model(&d, bytes != NULL ? bytes : (const void *)"", bytes != NULL ? len : 0, m) < 0) {
        arena_free(d.a);
        return d.st;
    }
    *out = m;
    return PC_OK;
}

void onnx_free(onnx_model *m)
{
    if (m != NULL) arena_free(m->arena);
}
