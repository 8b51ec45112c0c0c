/* libFuzzer harness over the ONNX reader (kernels/onnx.c) and the graph compiler behind it
 * (model_load in kernels/model.c).  `make check-fuzz` builds it with clang and runs it for
 * FUZZ_SECONDS under -rss_limit_mb=512 -malloc_limit_mb=256 (tests/fuzz.mk).
 *
 * For each input: onnx_parse must either succeed with a model whose every pointer can be
 * read (walked below, so that ASan checks each one), or fail with a non-empty one-line
 * message and no model.  Bytes that parse go on to model_load with a small batch, which must
 * likewise succeed or fail cleanly; a model that loads is described (as `precast inspect`
 * does) and run once on zeroed inputs. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kernels/model.h"
#include "kernels/onnx.h"

#define FUZZ_BATCH_ROWS 2

/* Built with -DFUZZ_SKIP_WIDE_INPUTS, the harness does not pass models with a graph input
 * wider than this many elements per row to model_load: for exploring past the known finding
 * that model_load allocates batch_rows x width without a bound (not for check-fuzz). */
#define FUZZ_SKIP_WIDTH ((int64_t)1 << 22)

/* An invariant broke: crash so that libFuzzer saves the input. */
#define require(c) \
    do {           \
        if (!(c)) __builtin_trap(); \
    } while (0)

static volatile size_t sink; /* keeps the walk from being optimised away */

static void walk_str(const char *s)
{
    require(s != NULL);
    sink += strlen(s);
}

static void walk_tensor(const onnx_tensor *t)
{
    walk_str(t->name);
    require(t->rank >= 0 && t->rank <= ONNX_MAX_RANK);
    require(t->count >= 0 && t->count < ONNX_MAX_ELEMS);
    int64_t count = 1;
    for (int i = 0; i < t->rank; i++) count *= t->dims[i];
    require(count == t->count);
    for (int64_t i = 0; i < t->count; i++) {
        if (t->f != NULL) sink += t->f[i] == 0.0f;
        else sink += t->i[i] == 0;
    }
}

static void walk_graph(const onnx_graph *g);

static void walk_node(const onnx_node *n)
{
    walk_str(n->name);
    walk_str(n->op_type);
    walk_str(n->domain);
    require(n->n_in >= 0 && n->n_out >= 0 && n->n_attr >= 0);
    for (int64_t i = 0; i < n->n_in; i++) walk_str(n->in[i]);
    for (int64_t i = 0; i < n->n_out; i++) walk_str(n->out[i]);
    for (int64_t i = 0; i < n->n_attr; i++) {
        const onnx_attr *a = &n->attr[i];
        walk_str(a->name);
        switch (a->type) {
        case ONNX_ATTR_STRING: walk_str(a->s); break;
        case ONNX_ATTR_TENSOR: walk_tensor(a->t); break;
        case ONNX_ATTR_GRAPH: walk_graph(a->g); break;
        case ONNX_ATTR_GRAPHS:
            for (int64_t k = 0; k < a->n; k++) walk_graph(&a->graphs[k]);
            break;
        case ONNX_ATTR_FLOATS:
            for (int64_t k = 0; k < a->n; k++) sink += a->floats[k] == 0.0f;
            break;
        case ONNX_ATTR_INTS:
            for (int64_t k = 0; k < a->n; k++) sink += a->ints[k] == 0;
            break;
        default: break;
        }
        require(onnx_node_attr(n, a->name) != NULL);
    }
}

static void walk_value_info(const onnx_value_info *v)
{
    walk_str(v->name);
    require(v->rank >= 0 && v->rank <= ONNX_MAX_RANK);
    for (int k = 0; k < v->rank; k++)
        if (v->dim_param[k] != NULL) walk_str(v->dim_param[k]);
}

static void walk_graph(const onnx_graph *g)
{
    require(g != NULL);
    walk_str(g->name);
    for (int64_t i = 0; i < g->n_node; i++) walk_node(&g->node[i]);
    for (int64_t i = 0; i < g->n_init; i++) walk_tensor(&g->init[i]);
    for (int64_t i = 0; i < g->n_input; i++) walk_value_info(&g->input[i]);
    for (int64_t i = 0; i < g->n_output; i++) walk_value_info(&g->output[i]);
}

static void check_err(pc_status st, const char *err)
{
    require(st != PC_OK);
    require(err[0] != '\0' && strchr(err, '\n') == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[PC_ERRLEN];
    err[0] = '\0';
    onnx_model *om = NULL;
    pc_status st = onnx_parse(data, size, "fuzz.onnx", &om, err, sizeof err);
    if (st != PC_OK) {
        require(om == NULL);
        check_err(st, err);
        return 0;
    }
    require(om != NULL);
    walk_str(om->producer_name);
    walk_str(om->producer_version);
    onnx_graph g = {.name = om->graph_name, .n_node = om->n_node, .n_init = om->n_init,
                    .n_input = om->n_input, .n_output = om->n_output, .node = om->node,
                    .init = om->init, .input = om->input, .output = om->output};
    walk_graph(&g);
    int wide = 0, symbolic = 0;
    for (int64_t i = 0; i < om->n_input; i++) {
        for (int k = 0; k < om->input[i].rank; k++) symbolic |= om->input[i].dims[k] < 0;
        int64_t width = 1;
        for (int k = 1; k < om->input[i].rank && width <= FUZZ_SKIP_WIDTH; k++)
            if (om->input[i].dims[k] > 0) width *= om->input[i].dims[k];
        wide |= width > FUZZ_SKIP_WIDTH;
    }
    (void)wide;
    onnx_free(om);

#ifdef FUZZ_SKIP_WIDE_INPUTS
    if (wide) return 0;
#endif
    model *m = NULL;
    err[0] = '\0';
    st = model_load(data, size, "fuzz.onnx", FUZZ_BATCH_ROWS, &m, err, sizeof err);
    if (st != PC_OK) {
        require(m == NULL);
        check_err(st, err);
        return 0;
    }
    static FILE *devnull;
    if (devnull == NULL) devnull = fopen("/dev/null", "w");
    if (devnull != NULL) model_describe(m, devnull);
    /* A graph with fixed shapes runs its own batch size, not the one asked for, and its
     * inputs may have first dims of their own (model_input_shape in the newer model.h): only
     * a graph with a batch dim has its inputs filled as rows*width values. */
    int64_t rows = model_batch_rows(m);
    require(rows > 0);
    for (int i = 0; i < model_input_count(m) && symbolic; i++) {
        size_t esize = model_input_elem(m, i) == MODEL_ELEM_INT64 ? sizeof(int64_t)
                                                                  : sizeof(float);
        size_t n = (size_t)rows * (size_t)model_input_width(m, i);
        memset(model_input_buffer(m, i), 0, n * esize);
    }
    /* Outputs hold rows*width values when the graph has a batch dim; a static graph's
     * outputs have first dims of their own (model_output_shape in the newer model.h). */
    if (model_forward(m, rows, err, sizeof err) == PC_OK && symbolic)
        for (int i = 0; i < model_output_count(m); i++) {
            const float *y = model_output(m, i);
            if (y == NULL) continue; /* an int64 output (TopK indices, ArgMax) */
            for (int64_t k = 0; k < rows * model_output_width(m, i); k++)
                sink += y[k] == 0.0f;
        }
    model_close(m);
    return 0;
}
