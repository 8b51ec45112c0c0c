/*
 * model.h — the kernels module's public API: load an ONNX model, compile it for a batch size,
 * run the forward pass over batches of rows.
 *
 * Loading parses the ONNX file (kernels/onnx.h), checks every op and shape, infers every
 * tensor's shape with the batch dimension set to `batch_rows`, folds what can be folded
 * (BatchNormalization into the dense layer before it, Gemm's alpha and beta, a MatMul's
 * bias Add, a ReLU after a dense layer) and compiles a plan: a list of kernel calls
 * (kernels/ops.h) over buffers carved out of ONE allocation made at load.  model_forward runs
 * the plan and allocates nothing.
 *
 * Tensors: float32 or int64, of any rank (up to 8).  A graph input's batch dimension is its
 * symbolic dim (dim_param such as "N" or "batch"); every other dim must be a known number, and
 * every input of a graph with a symbolic dim must have one.  Buffers are row-major with the
 * batch outermost, so that row r of an input is the `width` elements at r*width, whatever
 * axis the ONNX graph gives the batch.  Every node's shapes are inferred at load for any
 * batch of 1 to batch_rows rows (Shape/Reshape chains included); what cannot be is refused.
 *
 * Static graphs: a graph with no symbolic dim at all (the ONNX backend test cases, or a model
 * exported without dynamic axes) runs with its fixed shapes; batch_rows is then ignored and
 * model_batch_rows() is the first input's first dim (1 for a scalar): each forward computes
 * the whole fixed batch, whatever `rows` model_forward is given.
 *
 * Opsets 6 to 17 of the default domain are read (with each op's semantics of that opset).
 *
 * Ownership: a model owns all its buffers; names and buffers it returns are borrowed and
 * valid until model_close (outputs: until the next model_forward).  The bytes given to
 * model_load are not kept.
 *
 * Threads: a model is not safe to use from two threads at once; distinct models are
 * independent.  model_load sets OpenBLAS to one thread (one MPI rank per core is precast's
 * parallelism); that setting is process-wide.
 */
#ifndef PRECAST_MODEL_H
#define PRECAST_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kernels/status.h"

typedef struct model model;

typedef enum model_elem { MODEL_ELEM_FLOAT = 1, MODEL_ELEM_INT64 = 7 } model_elem;

/* What the graph's last op did to an output, so a head never applies softmax twice. */
typedef enum model_final {
    MODEL_FINAL_NONE = 0,
    MODEL_FINAL_SOFTMAX,
    MODEL_FINAL_LOGSOFTMAX,
    MODEL_FINAL_SIGMOID
} model_final;

/* Parses, validates and compiles `bytes` (an ONNX file's contents; not kept after return) for
 * batches of up to batch_rows rows. `name` is used in error messages (the file name).
 * On success *out is a new model (release it with model_close). On failure *out is NULL, err
 * holds one line such as "m.onnx: node 'Conv_3' (op Conv) is not supported; ..." and the
 * return is PC_ERR_CONFIG (model rejected), PC_ERR_USAGE (batch_rows out of range) or
 * PC_ERR_INTERNAL (out of memory). */
pc_status model_load(const void *bytes, size_t len, const char *name, int64_t batch_rows,
                     model **out, char *err, size_t errlen);

/* A graph input fixed at load to a constant value, as if it were an initializer: what a
 * static-shape compiler needs for inputs that give shapes, axes or k (the ONNX backend test
 * cases pass those as inputs). */
typedef struct model_const_input {
    const char *name;        /* a graph input's name */
    model_elem elem;
    int rank;                /* <= 8 */
    const int64_t *dims;     /* rank dims */
    const void *data;        /* product(dims) floats or int64s; copied */
} model_const_input;

/* model_load with the graph inputs named in consts[0..n_consts) fixed to those values; they
 * are no longer inputs of the model.  A name that is no graph input gives PC_ERR_CONFIG. */
pc_status model_load_bound(const void *bytes, size_t len, const char *name, int64_t batch_rows,
                           const model_const_input *consts, int n_consts, model **out,
                           char *err, size_t errlen);

/* The most memory a compiled plan may use for activations (all buffers but the parameters):
 * a model whose shapes need more for the job's batch_rows is refused at load (PC_ERR_CONFIG),
 * so that a small hostile file cannot make precast allocate gigabytes. */
#define MODEL_MAX_ACTIVATION_BYTES ((size_t)1 << 30)

/* Reads a whole file into *bytes (malloc'd; the caller frees it) and *len, with a NUL after the
 * last byte so that a text file can be used as a string. A missing or unreadable file gives
 * PC_ERR_NOINPUT naming the path; on failure *bytes is NULL. */
pc_status model_file_read(const char *path, char **bytes, size_t *len, char *err, size_t errlen);

/* Reads the file at `path` and calls model_load. A missing or unreadable file gives
 * PC_ERR_NOINPUT ("path: No such file or directory"); a bad model PC_ERR_CONFIG. */
pc_status model_load_file(const char *path, int64_t batch_rows, model **out, char *err,
                          size_t errlen);

/* Releases the model and everything it owns; accepts NULL. */
void model_close(model *m);

/* The batch size the model was compiled for. */
int64_t model_batch_rows(const model *m);

/* Graph inputs, in the graph's order, without initializers that older exporters also list as
 * inputs. REQUIRES: 0 <= i < model_input_count(m). Names are borrowed from m. */
int model_input_count(const model *m);
const char *model_input_name(const model *m, int i);
model_elem model_input_elem(const model *m, int i);
int64_t model_input_width(const model *m, int i); /* elements per row (product of non-batch dims) */

/* The input's buffer: batch_rows*width elements (float or int64_t as model_input_elem says),
 * row-major, owned by m; the caller fills rows [0, rows) before model_forward. The pointer
 * is stable for the model's life, and model_forward does not modify it. */
void *model_input_buffer(model *m, int i);

/* The index of the graph input called `name`, or -1 if there is none. */
int model_input_index(const model *m, const char *name);

/* The input's ONNX shape: writes its rank (<= 8) dims into dims and returns the rank; the
 * batch dim reads -1 (static graphs: every dim is a number). */
int model_input_shape(const model *m, int i, int64_t *dims);

/* Sparse rows (LIBSVM).  model_input_sparse_ok: true when input i is a 2-D float input read
 * only as the left operand of dense layers with constant weights, so that its rows may come
 * as a CSR batch instead of the dense buffer.
 * model_input_set_sparse: the next model_forward (only that one) reads input i from the CSR
 * batch row_ptr (rows+1 entries, non-decreasing, row_ptr[0] >= 0), cols and vals (0-based
 * column and value of each stored entry), computing out[r,:] = bias + sum vals*W[col,:]
 * without densifying; the dense buffer of that input is not read.  The arrays are borrowed
 * until that forward returns.  A column outside [0, width) or a decreasing row_ptr makes that
 * forward fail with PC_ERR_DATA naming the row.  PC_ERR_USAGE (and nothing set) if the input
 * is not sparse_ok or an array is NULL.  REQUIRES: 0 <= i < model_input_count(m). */
bool model_input_sparse_ok(const model *m, int i);
pc_status model_input_set_sparse(model *m, int i, const int64_t *row_ptr, const int32_t *cols,
                                 const float *vals, char *err, size_t errlen);

/* Graph outputs, in the graph's order, each with its batch dim first (transposed there if
 * the graph has it elsewhere); float32 or int64 (TopK indices, ArgMax).
 * REQUIRES: 0 <= i < model_output_count(m). */
int model_output_count(const model *m);
const char *model_output_name(const model *m, int i);
int64_t model_output_width(const model *m, int i);
model_final model_output_final(const model *m, int i);
model_elem model_output_elem(const model *m, int i);
/* The output's ONNX shape, as model_input_shape. */
int model_output_shape(const model *m, int i, int64_t *dims);
/* True if the graph has no symbolic dim (see "Static graphs" above). */
bool model_is_static(const model *m);

/* Runs the plan on the first `rows` rows of the input buffers. No allocation.
 * REQUIRES: 0 < rows <= batch_rows (otherwise PC_ERR_USAGE and nothing is computed).
 * PC_ERR_DATA if the rows hold something the graph cannot take: an id outside an embedding
 * table (Gather; the message names the node, the id and the row), a bad sparse batch; the
 * outputs are then undefined. */
pc_status model_forward(model *m, int64_t rows, char *err, size_t errlen);

/* rows*width floats of output i from the last model_forward (row-major), owned by m; valid
 * until the next model_forward or model_close.  NULL if the output is int64. */
const float *model_output(const model *m, int i);
/* The same for an int64 output (rows*width int64s); NULL if the output is float. */
const int64_t *model_output_i64(const model *m, int i);

/* Number of scalars in the model's initializers (as in the file, before any folding). */
int64_t model_param_count(const model *m);

/* Floating-point operations per row of the compiled plan: 2*C*OC (+OC) per dense layer
 * (dense-equivalent for a sparse input), 2*M*N*K per matrix product, about one per element
 * for the element-wise steps, and one per element moved by a gather, concat or transpose. */
double model_flops_per_row(const model *m);

/* For `precast inspect`: ir/opset/producer, inputs & outputs with shapes, op counts, the
 * compiled plan, parameters, FLOPs/row, memory, "supported: yes". */
void model_describe(const model *m, FILE *out);

/* The dense (sgemm) steps of the plan, for benchmarks: step i multiplies (rows, in) by
 * (in, out). REQUIRES: 0 <= i < model_dense_count(m). */
int model_dense_count(const model *m);
void model_dense_shape(const model *m, int i, int64_t *in, int64_t *out);

#endif
