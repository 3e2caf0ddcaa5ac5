#!/usr/bin/env python3
"""What bfloat16 decoder products would do to the evaluator's log p̂(x).

The evaluation's time is its decoder products (docs/benchmarks.md). AVX512_BF16's VDPBF16PS does
two multiply-adds a 32-bit lane where an FMA does one, so bfloat16 products are the one lever
left where even the FMA peak is too slow (the Zen 4's evaluation target). This script measures
what they would cost in accuracy before anyone builds them: log p̂(x) by importance sampling
(K samples from the encoder's q, as `bsvi-dist eval` with its default proposal) for the first N
examples of a split, three times on the same noise, the decoder's products
  f64   in float64 (the reference),
  f32   in float32 (what the kernels compute),
  bf16  with both factors of each product rounded to bfloat16 (to nearest, ties to even) and the
        sums in float32 (what VDPBF16PS computes, up to the order of the sums);
the encoder in float32; the activations (tanh, relu or softplus) and the likelihood in each
product's precision, biases added in it. Prints each estimate's mean, the per-example
differences' mean, standard deviation and extremes, and for scale the Monte Carlo error of the
float32 estimate itself (per example by the delta method, sqrt(1/ESS − 1/K), ESS = (Σw)²/Σw²;
its median and root mean square). `--json` prints one JSON object instead.

Usage: python3 scripts/bf16-eval-error.py CKPT.h5 [--data FILE.h5] [--split test] [--examples N]
       [--samples K] [--seed S] [--json]          (defaults: the checkpoint's data, test, 200,
                                                   5000, 1; about 0.4 s an example at K = 5000)
Needs numpy and h5py. Not used by the build; IntegrationTests/BF16EvalErrorScriptTests runs it.
"""
import argparse
import json
import sys
import time

try:
    import h5py
    import numpy as np
except ImportError as error:
    print(f"bf16-eval-error.py: {error}; install them with: python3 -m pip install numpy h5py", file=sys.stderr)
    sys.exit(69)


def to_bf16(a):
    """The nearest bfloat16 (ties to even), as float32. NaN and infinity do not occur here."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    u = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return u.view(np.float32)


def log_sum_exp(v):
    m = v.max()
    return m + np.log(np.exp(v - m).sum())


def softplus(a):
    return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))


ACTIVATIONS = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0), "softplus": softplus}


def forward(a, layers, activation, factor=lambda a: a):
    """The network's output for the rows of `a`: every layer but the last followed by `activation`;
    each product's two factors passed through `factor` first."""
    for j, (kernel, bias) in enumerate(layers):
        a = factor(a) @ factor(kernel) + bias.astype(a.dtype)
        if j < len(layers) - 1:
            a = activation(a)
    return a


def decoder_log_likelihood(x, z, layers, activation, mode):
    """log p(x|z) for each row of z, the products in `mode`'s precision."""
    dtype = np.float64 if mode == "f64" else np.float32
    factor = to_bf16 if mode == "bf16" else (lambda a: a.astype(dtype))
    logits = forward(z.astype(dtype), layers, activation, factor)
    return (x.astype(dtype) * logits - softplus(logits)).astype(np.float64).sum(1)


def fail(message, status):
    print(f"bf16-eval-error.py: {message}", file=sys.stderr)
    sys.exit(status)


def main():
    parser = argparse.ArgumentParser(description="What bfloat16 decoder products would do to log p̂(x).")
    parser.add_argument("checkpoint")
    parser.add_argument("--data", help="dataset (default: the one the checkpoint was trained on)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.examples < 1 or args.samples < 1:
        fail(f"--examples and --samples must be positive (got {args.examples} and {args.samples})", 64)
    try:
        with h5py.File(args.checkpoint, "r") as f:
            name = f["model"].attrs["activation"]
            name = name.decode() if isinstance(name, bytes) else str(name)
            if name not in ACTIVATIONS:
                fail(f"{args.checkpoint}: unknown activation '{name}' (this script knows {', '.join(ACTIVATIONS)})", 65)
            activation = ACTIVATIONS[name]
            config = f["training"].attrs.get("config") if "training" in f else None
            config = json.loads(config.decode() if isinstance(config, bytes) else config) if config is not None else {}
            net = {part: [(f[f"model/{part}/dense_{i}/kernel"][()], f[f"model/{part}/dense_{i}/bias"][()])
                          for i in range(len([k for k in f[f"model/{part}"] if k.startswith("dense_")]))]
                   for part in ("encoder", "decoder")}
    except (OSError, KeyError) as error:
        fail(f"{args.checkpoint}: not a bsvi-dist checkpoint ({error}); pass a checkpoint file such as runs/…/final.h5", 66)
    data = args.data or config.get("files", {}).get("data_path")
    if not data:
        fail(f"{args.checkpoint} names no dataset; pass --data FILE.h5", 64)
    try:
        with h5py.File(data, "r") as f:
            x_all = f[args.split][: args.examples].astype(np.float32)
    except (OSError, KeyError) as error:
        fail(f"{data}: no split '{args.split}' to read ({error}); pass --data and --split of a prepared dataset", 66)

    d = net["decoder"][0][0].shape[0]
    rng = np.random.default_rng(args.seed)
    modes = ("f64", "f32", "bf16")
    estimates = {m: [] for m in modes}
    monte_carlo_sd = []
    started = time.time()
    for i, x in enumerate(x_all):
        h = forward(x, net["encoder"], activation)
        mu, log_variance = h[:d].astype(np.float64), h[d:].astype(np.float64)
        epsilon = rng.standard_normal((args.samples, d))
        z = mu + np.exp(0.5 * log_variance) * epsilon
        log_prior = -0.5 * (z * z).sum(1) - 0.5 * d * np.log(2 * np.pi)
        log_q = -0.5 * (epsilon * epsilon).sum(1) - 0.5 * log_variance.sum() - 0.5 * d * np.log(2 * np.pi)
        for m in modes:
            z_m = z if m == "f64" else z.astype(np.float32)
            log_weight = decoder_log_likelihood(x, z_m, net["decoder"], activation, m) + log_prior - log_q
            estimates[m].append(log_sum_exp(log_weight) - np.log(args.samples))
            if m == "f32":
                w = np.exp(log_weight - log_weight.max())
                monte_carlo_sd.append(np.sqrt(max((w * w).sum() / w.sum() ** 2 - 1 / args.samples, 0.0)))  # 1/ESS − 1/K
        if not args.json and (i + 1) % 100 == 0:
            print(f"  {i + 1}/{len(x_all)} examples, {time.time() - started:.0f} s", file=sys.stderr)

    e = {m: np.array(v) for m, v in estimates.items()}
    n = len(x_all)
    result = {"checkpoint": args.checkpoint, "data": data, "split": args.split, "examples": n,
              "samples": args.samples, "seed": args.seed,
              "mean_log_likelihood": {m: float(e[m].mean()) for m in modes},
              "monte_carlo_sd": {"median": float(np.median(monte_carlo_sd)),
                                 "rms": float(np.sqrt(np.mean(np.square(monte_carlo_sd))))}}
    for a, b in (("f32", "f64"), ("bf16", "f32"), ("bf16", "f64")):
        diff = e[a] - e[b]
        sd = float(diff.std(ddof=1)) if n > 1 else 0.0
        result[f"{a}_minus_{b}"] = {"mean": float(diff.mean()), "sd": sd, "se": sd / np.sqrt(n),
                                   "min": float(diff.min()), "max": float(diff.max())}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{n} examples of {data}:{args.split}, K = {args.samples}, seed {args.seed}")
    print("mean log p̂   " + "   ".join(f"{m} {result['mean_log_likelihood'][m]:.5f}" for m in modes))
    for key in ("f32_minus_f64", "bf16_minus_f32", "bf16_minus_f64"):
        r = result[key]
        print(f"{key.replace('_minus_', ' − '):11s}  per example: mean {r['mean']:+.5f} (SE {r['se']:.5f})  "
              f"SD {r['sd']:.5f}  min {r['min']:+.5f}  max {r['max']:+.5f}")
    mc = result["monte_carlo_sd"]
    print(f"for scale: the float32 estimate's own Monte Carlo SD per example, median {mc['median']:.5f}, "
          f"root mean square {mc['rms']:.5f}")


main()
