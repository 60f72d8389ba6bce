/*
 * fast_running.c — running statistics for fast/: one update per training
 * batch over C numbers (bnlab.h, bn_running_rule).
 *
 * This is bookkeeping over C values, not a pass over the data, so there is
 * nothing to make fast: fast/ runs ref's update through the float switch
 * (widened to double, rounded back to float once, all outputs or none). The
 * conventions (PyTorch, Keras, cumulative) then live in one place,
 * ref/running.c, and fast/ cannot drift from them.
 */
#include "bn_internal.h"

int bn_running_update_fast(float *running_mean, float *running_var,
                           size_t *num_batches, const float *mean,
                           const float *var_biased, size_t C, size_t m,
                           bn_running_rule rule, double momentum)
{
    return bn_running_update(BN_IMPL_REF, running_mean, running_var, num_batches, mean,
                             var_biased, C, m, rule, momentum);
}
