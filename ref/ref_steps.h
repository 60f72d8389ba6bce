/*
 * ref_steps.h — the steps of Algorithm 1, one function each (forward.c),
 * shared inside ref/ by the backward, fused-ReLU and inference code. Each
 * works on one channel's mini-batch of m contiguous values.
 */
#ifndef REF_STEPS_H
#define REF_STEPS_H

#include <stddef.h>

double bn_mean_B(const double *x, size_t m);
double bn_var_biased_B(const double *x, size_t m, double mu_B);
void bn_normalize(double *xhat, const double *x, size_t m, double mu_B,
                  double sigma2_B, double eps);
void bn_scale_and_shift(double *y, const double *xhat, size_t m, double gamma,
                        double beta);
/* BN_EDOM unless the statistics of set `c` (unit: "channel", "set") are
 * finite and sigma2 + eps is a normal positive number. */
int bn_check_stats(const char *unit, size_t c, double mu_B, double sigma2_B,
                   double eps);

#endif
