#!/usr/bin/env node
// check_tfjs.js - runs the bnlab conformance vectors through TensorFlow.js:
// the Keras layer tf.layers.batchNormalization on the pure-JS CPU backend,
// forward in training and inference mode, its moving statistics, and every
// gradient through tf.variableGrads (tf.grad's form for a layer's weights).
//
// What the layer can express: float32 only (tfjs has no float64); moving
// statistics by the Keras rule only (momentum on the old value, biased
// variance). NCHW uses axis 1, NHWC and (N, D) axis -1. The batch mean and
// biased variance of a training forward are read from the moving statistics
// after one update with momentum 0 from zeros (exactly the batch's: 0 - (0 - b) = b).
// Each comparison uses the vector's tolerance; every mismatch must match a
// known deviation (see deviation() and docs/conformance.md) or the run fails.
//
// Run: make check-tfjs   (or: node data/consumers/tfjs/check_tfjs.js data)
'use strict';
const fs = require('fs');
const path = require('path');

// tfjs greets Node users on stderr with advice to install tfjs-node: the
// pure-JS CPU backend is what this check is for, so keep the greeting out.
const warn = console.warn;
console.warn = () => {};
const tf = require('@tensorflow/tfjs');
console.warn = warn;

const FILES = ['forward_train.json', 'forward_train_relu.json', 'backward_train.json',
  'backward_train_relu.json', 'running_stats.json', 'forward_infer.json', 'backward_infer.json'];

const num = (v) => (typeof v === 'string' ? { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity }[v] : v);
const arr = (v) => v.map(num);

function tensorShape(g) {
  const { N, C, H, W } = g.shape;
  if (H === 1 && W === 1) return { shape: [N, C], axis: -1 };     // (N, D) in either layout
  return g.layout === 'NHWC' ? { shape: [N, H, W, C], axis: -1 } : { shape: [N, C, H, W], axis: 1 };
}

// A batch-normalization layer over the case's shape, weights set.
function makeLayer(g, { gamma, beta, mean, variance, momentum }) {
  const { shape, axis } = tensorShape(g);
  const C = g.shape.C;
  const layer = tf.layers.batchNormalization({ axis, epsilon: g.eps, momentum: momentum ?? 0 });
  layer.build(shape);
  // affine = false is gamma = 1, beta = 0 (center/scale false crash in training, see deviations)
  layer.setWeights([tf.tensor1d(gamma ?? new Array(C).fill(1)), tf.tensor1d(beta ?? new Array(C).fill(0)),
    tf.tensor1d(mean ?? new Array(C).fill(0)), tf.tensor1d(variance ?? new Array(C).fill(0))]);
  return { layer, shape };
}

const values = (t) => Array.from(t.dataSync());
let variableCount = 0;

function forwardTrain(g, t) {
  const i = t.inputs;
  const { layer, shape } = makeLayer(g, { gamma: i.gamma, beta: i.beta, momentum: 0 });
  let y = layer.apply(tf.tensor(arr(i.x), shape), { training: true });
  if (g.activation === 'relu') y = tf.relu(y);
  const w = layer.getWeights();
  return { y: values(y), mean: values(w[2]), varBiased: values(w[3]) };
}

function backward(g, t, training) {
  const i = t.inputs;
  const { layer, shape } = makeLayer(g, { gamma: i.gamma, beta: i.beta, mean: i.mean, variance: i.var });
  const x = tf.variable(tf.tensor(arr(i.x), shape), true, `x${++variableCount}`);
  const dy = tf.tensor(arr(i.dy), shape);
  const f = () => {
    let y = layer.apply(x, { training });
    if (g.activation === 'relu') y = tf.relu(y);
    return tf.sum(tf.mul(y, dy));   // d/dy of sum(y * dy) is dy: the upstream gradient
  };
  const { grads } = tf.variableGrads(f, [x, ...layer.trainableWeights.map((w) => w.val)]);
  const out = { dx: values(grads[x.name]) };
  if (g.affine) {
    out.dgamma = values(grads[layer.trainableWeights[0].val.name]);
    out.dbeta = values(grads[layer.trainableWeights[1].val.name]);
  }
  x.dispose();
  return out;
}

function forwardInfer(g, t) {
  const i = t.inputs;
  const { layer, shape } = makeLayer(g, { gamma: i.gamma, beta: i.beta, mean: i.mean, variance: i.var });
  return { y: values(layer.apply(tf.tensor(arr(i.x), shape), { training: false })) };
}

function runningStats(g, t) {
  const i = t.inputs;
  const { layer, shape } = makeLayer(g, { mean: i.runningMean, variance: i.runningVar, momentum: g.momentum });
  const runningMean = [];
  const runningVar = [];
  for (const batch of i.batches) {
    layer.apply(tf.tensor(arr(batch), shape), { training: true });
    const w = layer.getWeights();
    runningMean.push(...values(w[2]));
    runningVar.push(...values(w[3]));
  }
  return { runningMean, runningVar };
}

const RUN = {
  BnForwardTrain: forwardTrain,
  BnBackwardTrain: (g, t) => backward(g, t, true),
  BnForwardInfer: forwardInfer,
  BnBackwardInfer: (g, t) => backward(g, t, false),
  BnRunningStats: runningStats,
};

function notExpressible(g) {
  if (g.dtype === 'fp64') return 'fp64: TensorFlow.js has no float64 dtype';
  if (g.type === 'BnRunningStats' && g.rule !== 'momentumOldBiased') {
    return 'running rule ' + g.rule + ': the Keras layer only keeps momentum-on-the-old-value ' +
      'averages of the biased variance (no unbiased, cumulative or population statistics)';
  }
  return null;
}

// Outputs the layer does not expose: not compared (the case still runs).
const NOT_EXPOSED = { invstd: 'the layer keeps no 1/sqrt(var + eps) (mean and variance are checked)' };

function compare(t, got) {
  const bad = [];
  for (const [name, want0] of Object.entries(t.expected)) {
    if (NOT_EXPOSED[name]) continue;
    const want = arr(Array.isArray(want0[0]) ? want0.flat() : want0);
    const g = got[name];
    const tol = t.tolerance[name];
    if (!g || g.length !== want.length) { bad.push(`${name}: missing or wrong length`); continue; }
    for (let k = 0; k < want.length; k++) {
      if (!(Math.abs(g[k] - want[k]) <= tol.atol + tol.rtol * Math.abs(want[k]))) {
        bad.push(`${name}[${k}] got ${g[k]} want ${want[k]} (tolerance ${tol.atol} + ${tol.rtol}*|want|)`);
        break;
      }
    }
  }
  return bad;
}

// What tfjs's CPU FusedBatchNorm kernel computes: it walks mean, variance,
// scale and offset cyclically along the flat index (outVals[i] uses element
// i mod C of each), i.e. it assumes the channel is the innermost axis,
// whatever shape the statistics have. Returns whether y is exactly that.
function channelLastMisindexing(g, t, got) {
  const i = t.inputs;
  const C = g.shape.C;
  const mean = got.mean || arr(i.mean);
  const variance = got.varBiased || arr(i.var);
  const x = arr(i.x);
  for (let k = 0; k < x.length; k++) {
    const c = k % C;
    const gamma = i.gamma ? num(i.gamma[c]) : 1;
    const beta = i.beta ? num(i.beta[c]) : 0;
    let y = beta + ((x[k] - mean[c]) * gamma) / Math.sqrt(variance[c] + g.eps);
    if (g.activation === 'relu') y = Math.max(0, y);
    if (!(Math.abs(got.y[k] - y) <= 1e-5 * (1 + Math.abs(y)))) return false;
  }
  return true;
}

// The cause of a mismatch, demonstrated by what the framework returned, or null.
function deviation(g, t, got, error) {
  const flags = new Set(t.flags);
  const spatialNCHW = g.layout === 'NCHW' && g.shape.H * g.shape.W > 1;
  if (spatialNCHW && error === null && got.y && channelLastMisindexing(g, t, got)) {
    return 'axis = 1 (NCHW): the CPU FusedBatchNorm kernel applies mean, variance, gamma and beta ' +
      'cyclically along the flat index (channel-last) and ignores the [1,C,1,1] shape the layer ' +
      'reshapes them to: y equals exactly that mis-indexed result';
  }
  if (spatialNCHW && error !== null && /must match the product of shape 1,\d+,1,1/.test(error)) {
    return 'axis = 1 (NCHW): the FusedBatchNorm gradient reduces over the batch only for rank-1 ' +
      'statistics; with the layer\'s rank-4 [1,C,1,1] statistics it throws "Size(...) must match ' +
      'the product of shape 1,C,1,1"';
  }
  if (t.result === 'invalid' && error === null) {
    const all = Object.values(got).flat();
    const finite = all.every(Number.isFinite);
    const what = finite ? 'returns finite numbers' : 'returns NaN/Inf';
    if (flags.has('SingleValuePerChannel')) {
      const yIsBeta = got.y && got.y.every((v, k) => v === num(t.inputs.beta[k % g.shape.C]));
      return `m' = 1 in training is not rejected: variance 0, ${yIsBeta ? 'y = beta' : what}`;
    }
    if (flags.has('NaNInput') || flags.has('InfInput') || flags.has('NonFiniteParameter')) {
      return `no check for NaN/Inf in the data or parameters: ${what}`;
    }
    if (flags.has('NegativeEps')) return `no check that eps >= 0: ${what}`;
    if (flags.has('ZeroVarianceZeroEps') || flags.has('NegativeVariance')) return `no check that var + eps > 0: ${what}`;
    if (flags.has('MomentumOutOfRange')) return `no check that momentum is in [0, 1]: ${what}`;
    if (flags.has('Overflow')) return `the binary32 variance overflows without an error: ${what}`;
  }
  return null;
}

function main() {
  if (process.argv[2] === '--help' || process.argv[2] === '-h') {
    console.log('usage: node check_tfjs.js [DATA_DIR]\nRuns the bnlab conformance vectors through the TensorFlow.js ' +
      'batchNormalization layer (CPU backend); see docs/conformance.md. Exit 1 on an unexplained mismatch.');
    return;
  }
  const folder = process.argv[2] || 'data';
  tf.setBackend('cpu');
  console.log(`check-tfjs: TensorFlow.js ${tf.version.tfjs}, backend ${tf.getBackend()}, node ${process.version}`);
  const totals = { run: 0, passed: 0, deviations: 0, unexplained: 0, notExpressible: 0 };
  const skipped = new Map();
  const causes = new Map();
  for (const fname of FILES) {
    const doc = JSON.parse(fs.readFileSync(path.join(folder, fname), 'utf8'));
    const n = { run: 0, passed: 0, deviations: 0, unexplained: 0, notExpressible: 0 };
    for (const g of doc.testGroups) {
      for (const t of g.tests) {
        const id = `${fname}:${t.tcId}`;
        const why = notExpressible(g);
        if (why) {
          if (!skipped.has(why)) skipped.set(why, []);
          skipped.get(why).push(id);
          n.notExpressible++;
          continue;
        }
        n.run++;
        let got = null;
        let error = null;
        try {
          got = tf.tidy(() => RUN[g.type](g, t));
        } catch (e) {
          error = String(e.message || e).split('\n')[0];
        }
        let bad;
        if (t.result === 'invalid') bad = error !== null ? [] : ['accepted'];
        else bad = error !== null ? [`threw: ${error}`] : compare(t, got);
        if (bad.length === 0) { n.passed++; continue; }
        const cause = deviation(g, t, got, error);
        if (cause) {
          n.deviations++;
          if (!causes.has(cause)) causes.set(cause, []);
          causes.get(cause).push(id);
        } else {
          n.unexplained++;
          console.log(`  UNEXPLAINED ${id} (${g.layout}, ${t.flags.join(', ')}): ${bad.join('; ')}`);
        }
      }
    }
    console.log(`  ${fname.padEnd(26)} run ${String(n.run).padStart(3)}, passed ${String(n.passed).padStart(3)}, ` +
      `deviations ${String(n.deviations).padStart(2)}, unexplained ${n.unexplained}, not expressible ${n.notExpressible}`);
    for (const k of Object.keys(totals)) totals[k] += n[k];
  }
  console.log('Not expressible in TensorFlow.js:');
  for (const [why, ids] of skipped) console.log(`  ${ids.length} cases: ${why}`);
  console.log('Outputs not exposed by the layer (not compared):');
  for (const [name, why] of Object.entries(NOT_EXPOSED)) console.log(`  ${name}: ${why}`);
  console.log('Deviations (TensorFlow.js behaviour, cause in docs/conformance.md):');
  for (const [why, ids] of causes) console.log(`  ${ids.length} cases: ${why}\n    ${ids.join(' ')}`);
  console.log(`check-tfjs: ${totals.run} run, ${totals.passed} passed, ${totals.deviations} deviations, ` +
    `${totals.unexplained} unexplained, ${totals.notExpressible} not expressible`);
  process.exitCode = totals.unexplained ? 1 : 0;
}

main();
