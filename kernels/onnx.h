/*
 * onnx.h — a decoder for the ONNX protobuf wire format (kernels/ internal; model.h is the
 * module's public API).  No protobuf library: the few messages precast needs are decoded by
 * hand from onnx.proto's field numbers.
 *
 * What it decodes: ModelProto (ir_version, producer, opset_import, graph) → GraphProto
 * (nodes with their attributes, initializers, inputs, outputs), and the subgraphs that
 * GRAPH and GRAPHS attributes hold (Loop's body, If's branches), nested at most
 * ONNX_MAX_GRAPH_DEPTH deep.  Everything else is skipped, so that a file from a newer ONNX
 * with fields this decoder does not know still loads.
 *
 * Hostile input: every length is checked against the buffer, varints are at most 10 bytes,
 * tensors may have rank <= ONNX_MAX_RANK and < ONNX_MAX_ELEMS elements, and their data must
 * hold exactly what their dims need (checked against the bytes present before anything is
 * allocated).  Strings may not contain NUL bytes, nor names control characters.  Tensors
 * whose data lives in external files are refused.  All memory comes from one arena that may
 * not grow past ONNX_MEM_FACTOR times the input's length plus ONNX_MEM_FLOOR_MIB (real
 * models need about 1x: their bytes are weights; a file of millions of empty messages would
 * need 50x and more, and is refused).  A failure is a one-line message naming the file and
 * the thing that is wrong, never a crash.
 *
 * Ownership: onnx_parse copies everything it keeps (the bytes may be freed after it returns);
 * every pointer in an onnx_model lives until onnx_free.
 */
#ifndef PRECAST_ONNX_H
#define PRECAST_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/status.h"

#define ONNX_MAX_RANK 8
#define ONNX_MAX_ELEMS ((int64_t)1 << 31) /* per tensor, exclusive */
#define ONNX_MAX_GRAPH_DEPTH 8              /* the main graph is depth 0 */
#define ONNX_MEM_FACTOR 16                  /* decoded bytes per byte of file, at most... */
#define ONNX_MEM_FLOOR_MIB 16               /* ...plus this */

/* TensorProto.DataType values precast reads. */
typedef enum onnx_dtype {
    ONNX_DTYPE_FLOAT = 1,
    ONNX_DTYPE_INT32 = 6,
    ONNX_DTYPE_INT64 = 7,
    ONNX_DTYPE_BOOL = 9,
    ONNX_DTYPE_DOUBLE = 11
} onnx_dtype;

/* AttributeProto.AttributeType. */
typedef enum onnx_attr_type {
    ONNX_ATTR_UNDEFINED = 0,
    ONNX_ATTR_FLOAT = 1,
    ONNX_ATTR_INT = 2,
    ONNX_ATTR_STRING = 3,
    ONNX_ATTR_TENSOR = 4,
    ONNX_ATTR_GRAPH = 5,
    ONNX_ATTR_FLOATS = 6,
    ONNX_ATTR_INTS = 7,
    ONNX_ATTR_STRINGS = 8, /* STRINGS, TENSORS and 11 and higher: decoded as their type only */
    ONNX_ATTR_TENSORS = 9,
    ONNX_ATTR_GRAPHS = 10
} onnx_attr_type;

typedef struct onnx_graph onnx_graph;

/* A constant tensor, its data converted for computing: DOUBLE becomes float, INT32 and BOOL
 * (0 or 1) int64. */
typedef struct onnx_tensor {
    const char *name;          /* "" if the tensor has none (an attribute's tensor) */
    int32_t data_type;         /* as stored: an onnx_dtype */
    int rank;                  /* 0 for a scalar */
    int64_t dims[ONNX_MAX_RANK];
    int64_t count;             /* product of dims: 1 for a scalar, may be 0 */
    const float *f;            /* count floats for FLOAT and DOUBLE, else NULL */
    const int64_t *i;          /* count int64s for INT64, INT32 and BOOL, else NULL */
} onnx_tensor;

typedef struct onnx_attr {
    const char *name;
    int type;                  /* an onnx_attr_type */
    float f;                   /* FLOAT */
    int64_t i;                 /* INT */
    const char *s;             /* STRING, NUL-terminated copy */
    const onnx_tensor *t;      /* TENSOR */
    int64_t n;                 /* FLOATS, INTS and GRAPHS: how many */
    const float *floats;
    const int64_t *ints;
    const onnx_graph *g;       /* GRAPH (never NULL for that type) */
    const onnx_graph *graphs;  /* GRAPHS: n of them */
} onnx_attr;

typedef struct onnx_node {
    const char *name;          /* "" if unnamed */
    const char *op_type;
    const char *domain;        /* "" for the default domain */
    int64_t n_in, n_out, n_attr;
    const char **in;           /* "" marks an omitted optional input */
    const char **out;
    const onnx_attr *attr;
} onnx_node;

/* A graph input or output (ValueInfoProto with a tensor type). */
typedef struct onnx_value_info {
    const char *name;
    int32_t elem_type;         /* an onnx_dtype, 0 if the file gives none */
    int has_shape;             /* 0 if the file gives no shape at all */
    int rank;
    int64_t dims[ONNX_MAX_RANK];           /* -1 where the dim is symbolic or unknown */
    const char *dim_param[ONNX_MAX_RANK];  /* the symbol ("N", "batch"), NULL if none */
} onnx_value_info;

/* A subgraph (an attribute's GRAPH or GRAPHS), decoded as the main graph is. */
struct onnx_graph {
    const char *name;
    int64_t n_node, n_init, n_input, n_output;
    const onnx_node *node;
    const onnx_tensor *init;
    const onnx_value_info *input;
    const onnx_value_info *output;
};

typedef struct onnx_model {
    int64_t ir_version;
    int64_t opset;             /* version of the default domain ("" / "ai.onnx"); 0 if none */
    const char *producer_name;
    const char *producer_version;
    const char *graph_name;
    int has_graph;
    int64_t n_node, n_init, n_input, n_output;
    const onnx_node *node;     /* in file order */
    const onnx_tensor *init;
    const onnx_value_info *input;  /* as listed: may include initializers (older exporters) */
    const onnx_value_info *output;
    struct onnx_arena *arena;
} onnx_model;

/* Decodes `len` bytes of an ONNX ModelProto. `name` (the file name) starts every error
 * message. On success *out is a new model to release with onnx_free; on failure *out is NULL,
 * err holds a one-line message and the return is PC_ERR_CONFIG (malformed or unsupported
 * content) or PC_ERR_INTERNAL (out of memory). */
pc_status onnx_parse(const void *bytes, size_t len, const char *name, onnx_model **out,
                     char *err, size_t errlen);

/* Releases a model from onnx_parse; accepts NULL. */
void onnx_free(onnx_model *m);

/* Reads one base-128 varint at *p, not reading at or past `end`. Returns 1 and advances *p on
 * success; returns 0 and leaves *p unchanged if the varint is truncated or longer than 10
 * bytes or overflows 64 bits. Exposed for the tests. */
int onnx_varint(const uint8_t **p, const uint8_t *end, uint64_t *v);

/* The node's attribute called `name`, or NULL. */
const onnx_attr *onnx_node_attr(const onnx_node *n, const char *name);

/* Short static name of a data type: "float32", "int64", "int32", "float64", "bool", or a
 * name marked "(unsupported)" for the others. */
const char *onnx_dtype_str(int32_t t);

#endif
