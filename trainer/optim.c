/* optim.c — optimisers, clipping and schedules; see optim.h.  (Being implemented: this first
 * version only fixes the API so that the trainer can be written against it.) */
#include "trainer/optim.h"

#include <math.h>
#include <stdlib.h>

void optim_config_init(optim_config *c, optim_kind kind)
{
    c->kind = kind;
    c->lr = 1e-3;
    c->momentum = 0.0;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->l2 = 0.0;
}

pc_status optim_create(const optim_config *cfg, const net *n, optim **out, char *err,
                       size_t errlen)
{
    (void)cfg; (void)n;
    *out = NULL;
    return pc_err(err, errlen, PC_ERR_INTERNAL, "optim_create: not implemented yet");
}

void optim_free(optim *o) { (void)o; }
void optim_step(optim *o, net *n, double lr_now) { (void)o; (void)n; (void)lr_now; }
int64_t optim_steps(const optim *o) { (void)o; return 0; }
double optim_clip_global_norm(net *n, double max_norm) { (void)n; (void)max_norm; return 0.0; }
double optim_param_grad_norm(net *n, int param) { (void)n; (void)param; return 0.0; }

double optim_schedule_lr(optim_schedule s, double base, int64_t step, int64_t total_steps,
                         int64_t step_size, double gamma)
{
    (void)s; (void)step; (void)total_steps; (void)step_size; (void)gamma;
    return base;
}
