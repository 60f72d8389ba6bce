/*
 * recipes.h — the kinds of input data the generator makes (recipes.c).
 */
#ifndef BNV_RECIPES_H
#define BNV_RECIPES_H

#include "gen.h"

typedef enum {
    R_TYPICAL, R_NEG_GAMMA, R_OFFSET, R_LARGE_OFFSET, R_CONSTANT, R_TINY,
    R_HUGE, R_EXACT, R_RELU_NEG, R_RELU_POS
} recipe;

typedef enum { DY_RANDOM, DY_CONSTANT, DY_PROPORTIONAL } dy_kind;

/* x (shape s) of the recipe's kind; channel 0 is the special one where
 * only one channel is (constant channel). */
void make_x(gsl_rng *r, const gshape *s, recipe rc, double *x);
void make_params(gsl_rng *r, const gshape *s, recipe rc, double *gamma, double *beta);
/* dy: random, constant per channel, or k·(x - mean) (exact for R_EXACT x). */
void make_dy(gsl_rng *r, const gshape *s, dy_kind kind, const double *x, double *dy);
/* The flag and the comment of a recipe's test. */
const char *recipe_flag(recipe rc, const gshape *s);
const char *recipe_comment(recipe rc, const gshape *s);

#endif
