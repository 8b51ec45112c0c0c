/* net.c — the trainable network; see net.h.  (Being implemented: this first version only
 * fixes the API so that the trainer can be written against it.) */
#include "trainer/net.h"

#include <stdlib.h>
#include <string.h>

void net_spec_init(net_spec *s)
{
    memset(s, 0, sizeof *s);
    s->head = NET_HEAD_SOFTMAX;
    s->init = NET_INIT_KAIMING_UNIFORM;
    s->bn_eps = 1e-5f;
    s->bn_momentum = 0.1f;
    for (int e = 0; e < NET_MAX_EMBEDS; e++) {
        s->embeds[e].bag = 1;
        s->embeds[e].padding_idx = -1;
    }
}

pc_status net_create(const net_spec *spec, int64_t batch_rows, net **out, char *err,
                     size_t errlen)
{
    (void)spec;
    (void)batch_rows;
    *out = NULL;
    return pc_err(err, errlen, PC_ERR_INTERNAL, "net_create: not implemented yet");
}

void net_free(net *n) { (void)n; }
const net_spec *net_get_spec(const net *n) { (void)n; return NULL; }
int64_t net_batch_rows(const net *n) { (void)n; return 0; }
int64_t net_input_width(const net *n) { (void)n; return 0; }
float *net_dense_input(net *n) { (void)n; return NULL; }
int64_t *net_embed_input(net *n, int e) { (void)n; (void)e; return NULL; }
int32_t *net_label_class(net *n) { (void)n; return NULL; }
float *net_label_target(net *n) { (void)n; return NULL; }
uint64_t *net_row_keys(net *n) { (void)n; return NULL; }

pc_status net_forward_train(net *n, int64_t rows, uint64_t step, double *loss, char *err,
                            size_t errlen)
{
    (void)n; (void)rows; (void)step; (void)loss;
    return pc_err(err, errlen, PC_ERR_INTERNAL, "not implemented yet");
}

void net_backward(net *n, int64_t rows) { (void)n; (void)rows; }

pc_status net_forward_eval(net *n, int64_t rows, double *loss, char *err, size_t errlen)
{
    (void)n; (void)rows; (void)loss;
    return pc_err(err, errlen, PC_ERR_INTERNAL, "not implemented yet");
}

const float *net_output(const net *n) { (void)n; return NULL; }
int net_param_count(const net *n) { (void)n; return 0; }
pc_status net_param_get(net *n, int i, net_param *p) { (void)n; (void)i; (void)p; return PC_ERR_USAGE; }
int net_param_find(const net *n, const char *name) { (void)n; (void)name; return -1; }
void net_param_touch(net *n, int i, int64_t row) { (void)n; (void)i; (void)row; }
int net_layer_count(const net *n) { (void)n; return 0; }
pc_status net_layer_get(const net *n, int i, net_layer *l) { (void)n; (void)i; (void)l; return PC_ERR_USAGE; }
void net_dead_reset(net *n) { (void)n; }
double net_dead_share(const net *n, int layer) { (void)n; (void)layer; return -1.0; }
