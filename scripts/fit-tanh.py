#!/usr/bin/env python3
"""How the kernels' tanh coefficients (CKernels/elementwise.inc, vtanh) were fitted.

tanh(x) ≈ x·P(t)/Q(t), t = x², P of degree 7 and Q of degree 3 with Q(0) = 1, on [0, 9] (beyond
9, tanh rounds to ±1 in Float32). Starts from a linearized least-squares fit, then moves toward
the minimax of the relative error by successive linear programs on the correction (its rows
scaled to O(1), so the solver's tolerances do not swamp errors of 1e-8). Prints the coefficients
and the error in exact arithmetic (1.1e-8 relative); the Float32 error, which rounding sets
(3.1e-7 with FMA), is checked on every path by BSVITests/ElementaryFunctionTests.
Needs numpy and scipy:  python3 scripts/fit-tanh.py [ITERATIONS]   (default 200, ~1 minute)
"""
import sys

if len(sys.argv) > 2 or (len(sys.argv) == 2 and not sys.argv[1].isdigit()):
    print("fit-tanh.py: ITERATIONS must be a non-negative integer "
          "(usage: python3 scripts/fit-tanh.py [ITERATIONS], default 200)", file=sys.stderr)
    sys.exit(64)
try:
    import numpy as np
    from scipy.optimize import linprog
except ImportError as error:
    print(f"fit-tanh.py: {error}; install them with: python3 -m pip install numpy scipy", file=sys.stderr)
    sys.exit(69)

C, NP, NQ = 9.0, 8, 4  # interval end; number of coefficients of P and of Q
iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 200
u = np.cos(np.linspace(np.pi, 0, 4000)) * 0.5 + 0.5
x = np.unique(np.concatenate([u * C, np.linspace(0, C, 4000)]))
x = x[x > 0]
f = np.tanh(x)
s = (x / C) ** 2  # scaled t, in [0, 1]
VP = np.vstack([x * s**i for i in range(NP)]).T
VQ = np.vstack([s**i for i in range(NQ)]).T


def relative_error(p, q):
    return ((VP @ p) / (VQ @ q) - f) / f


# x·P − f·Q = 0 in the least-squares sense, Q(0) = 1.
start = np.linalg.lstsq(np.hstack([VP, -(f[:, None] * VQ[:, 1:])]), f, rcond=None)[0]
p, q = start[:NP], np.concatenate([[1.0], start[NP:]])
for _ in range(iterations):
    e = relative_error(p, q)
    level = np.max(np.abs(e))
    Qv = VQ @ q
    R = (VP @ p) / Qv
    # e(p + Δp, q + Δq) ≈ e + (VP·Δp − R·VQ·Δq) / (Q·f); Δ = level·v, minimize max |·| over v.
    J = np.hstack([VP / Qv[:, None], -(R / Qv)[:, None] * VQ[:, 1:]]) / f[:, None]
    scale = np.max(np.abs(J), axis=0)
    n = J.shape[1]
    rows = np.vstack([np.hstack([J / scale, -np.ones((len(x), 1))]), np.hstack([-J / scale, -np.ones((len(x), 1))])])
    bound = np.concatenate([-e / level, e / level])
    cost = np.zeros(n + 1)
    cost[-1] = 1
    lp = linprog(cost, A_ub=rows, b_ub=bound, bounds=[(-1, 1)] * n + [(0, None)], method="highs")
    if lp.status != 0:
        print(f"fit-tanh.py: the linear program stopped ({lp.message}); keeping the last fit", file=sys.stderr)
        break
    d = lp.x[:n] / scale * level
    dp, dq = d[:NP], np.concatenate([[0.0], d[NP:]])  # Q(0) stays 1
    best, a = min((np.max(np.abs(relative_error(p + a * dp, q + a * dq))), a) for a in (1.0, 0.5, 0.25, 0.1))
    if best >= level:
        break
    p, q = p + a * dp, q + a * dq

P = [p[i] / C ** (2 * i) for i in range(NP)]
Q = [q[i] / C ** (2 * i) for i in range(NQ)]
xx = np.linspace(1e-6, C, 400_001)
approx = xx * np.polyval(P[::-1], xx * xx) / np.polyval(Q[::-1], xx * xx)
print(f"relative error in exact arithmetic: {np.max(np.abs(approx / np.tanh(xx) - 1)):.3g}")
print("P (x⁰ … x¹⁴):", ", ".join(f"{v:.9g}" for v in P))
print("Q (x⁰ … x⁶): ", ", ".join(f"{v:.9g}" for v in Q))
