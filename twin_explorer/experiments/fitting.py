"""Per-unit curve fits, all on one batched Levenberg–Marquardt solver: a population fits in one vectorised go.

:func:`batched_lm` solves many independent small least-squares problems at once (box bounds by clipping);
:func:`best_of_starts` runs it from several starting points and keeps each unit's best. The log-Gaussian
(SF/TF preference), Naka–Rushton (contrast response) and bi-von-Mises (direction tuning) fits live here; the 2-D
Gaussian (receptive field) model lives with its experiment and calls the same solver.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Model = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``model(p [U, K]) -> (f [U, M], J [U, M, K])``: predictions and their Jacobian for every unit."""

LOG_GAUSSIAN_KEYS = ("pref", "sigma_oct", "amplitude", "baseline", "r2")
NAKA_RUSHTON_KEYS = ("r0", "rmax", "c50", "n", "r2")


def batched_lm(model: Model, y: np.ndarray, p0: np.ndarray, lo: Sequence[float], hi: Sequence[float],
               n_iter: int = 60, weights: np.ndarray | None = None, rtol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg–Marquardt for many independent small least-squares fits at once, with box bounds by clipping.

    ``model(p [U, K]) -> (f [U, M], J [U, M, K])``; ``y`` [U, M] targets (NaN entries ignored); ``p0`` [U, K].
    Returns (p [U, K], sse [U]). A unit stops iterating once an accepted step lowers its cost by less than
    ``rtol`` (relative) or its damping reaches the ceiling; most units converge in a few steps, so the rest
    iterate on a shrinking set.
    """
    lo_a, hi_a = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    y = np.asarray(y, dtype=float)
    w = np.isfinite(y).astype(float) if weights is None else np.asarray(weights, dtype=float) * np.isfinite(y)
    y0 = np.nan_to_num(y)
    p = np.clip(np.asarray(p0, dtype=float), lo_a, hi_a)
    f, J = model(p)
    r = (f - y0) * w
    cost = (r**2).sum(1)
    out_p, out_cost = p.copy(), cost.copy()
    lam = np.full(len(p), 1e-2)
    eye = np.eye(p.shape[1])
    # The working arrays hold the units still iterating, row i being unit units[i]; a unit that converges is written
    # out and dropped from them (gathering the active rows from full-size arrays and scattering them back at every
    # iteration was half of the solver's own time).
    units = np.arange(len(p))
    for _ in range(int(n_iter)):
        if units.size == 0:
            break
        Jw = J * w[..., None]
        Jt = Jw.transpose(0, 2, 1)
        JtJ = Jt @ Jw  # batched matmul: numpy's einsum does not use BLAS here and was a quarter of a fit
        g = (Jt @ r[..., None])[..., 0]
        A = JtJ + lam[:, None, None] * (JtJ * eye + 1e-12 * eye)
        try:
            step = -np.linalg.solve(A, g[..., None])[..., 0]
        except np.linalg.LinAlgError:  # some unit's system is singular: pseudo-inverse for all
            step = -np.einsum("ukl,ul->uk", np.linalg.pinv(A), g)
        step = np.nan_to_num(step)
        p_new = np.clip(p + step, lo_a, hi_a)
        f_new, J_new = model(p_new)
        r_new = (f_new - y0) * w
        cost_new = (r_new**2).sum(1)
        better = np.isfinite(cost_new) & (cost_new < cost)
        old = cost
        p = np.where(better[:, None], p_new, p)
        J = np.where(better[:, None, None], J_new, J)
        r = np.where(better[:, None], r_new, r)
        cost = np.where(better, cost_new, cost)
        lam = np.where(better, lam / 3, lam * 4).clip(1e-9, 1e9)
        done = (better & (old - cost_new <= rtol * old)) | (lam >= 1e9) | (cost == 0)
        if done.any():
            out_p[units[done]], out_cost[units[done]] = p[done], cost[done]
            keep = ~done
            units, p, J, r, w, y0, cost, lam = (a[keep] for a in (units, p, J, r, w, y0, cost, lam))
    out_p[units], out_cost[units] = p, cost
    return out_p, out_cost


def best_of_starts(model: Model, y: np.ndarray, starts: Sequence[np.ndarray], lo: Sequence[float],
                   hi: Sequence[float], **lm: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`batched_lm` from every starting point in ``starts`` (each [U, K]); each unit keeps its lowest cost."""
    best_p, best_c = None, None
    for p0 in starts:
        p, cost = batched_lm(model, y, p0, lo, hi, **lm)
        if best_p is None:
            best_p, best_c = p, cost
        else:
            better = cost < best_c
            best_p = np.where(better[:, None], p, best_p)
            best_c = np.where(better, cost, best_c)
    return best_p, best_c


def _fittable(curves: np.ndarray) -> np.ndarray:
    return np.all(np.isfinite(curves), axis=1) & (np.ptp(curves, axis=1) > 0)


def _r2(sse: np.ndarray, y: np.ndarray) -> np.ndarray:
    ss_tot = ((y - y.mean(1, keepdims=True)) ** 2).sum(1)
    return 1 - sse / np.where(ss_tot > 0, ss_tot, np.nan)


# --- log-Gaussian (SF / TF preference) -----------------------------------------------------------------------

def _log_gaussian_model(x: np.ndarray) -> Model:
    def model(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x0, s, a, b = (p[:, i:i + 1] for i in range(4))
        d = x[None] - x0
        e = np.exp(-d**2 / (2 * s**2))
        J = np.stack([a * e * d / s**2, a * e * d**2 / s**3, e, np.ones_like(e)], -1)
        return b + a * e, J
    return model


def fit_log_gaussian_many(values: np.ndarray, curves: np.ndarray) -> dict[str, np.ndarray]:
    """Fit b + A·exp(−(log2 v − log2 v0)²/(2σ²)) to every row of curves [U, V], v0 inside the tested range,
    σ in [0.2, 10] octaves, A ≥ 0; starts at the argmax with σ ∈ {0.7, 1.5, 3}. Returns arrays pref (v0),
    sigma_oct, amplitude, baseline, r2 (NaN for flat or non-finite curves)."""
    x = np.log2(np.asarray(values, dtype=float))
    y = np.atleast_2d(np.asarray(curves, dtype=float))
    out = {k: np.full(len(y), np.nan) for k in LOG_GAUSSIAN_KEYS}
    ok = _fittable(y)
    if not ok.any():
        return out
    yy = y[ok]
    span = np.ptp(yy, axis=1)[:, None]
    z = yy / span  # one damping suits every unit when each curve spans 1
    lo, hi = [x.min(), 0.2, 0, -np.inf], [x.max(), 10, np.inf, np.inf]
    x_peak = x[np.argmax(z, axis=1)]
    starts = [np.c_[x_peak, np.full(len(z), s0), np.ones(len(z)), z.min(1)] for s0 in (0.7, 1.5, 3.0)]
    p, sse = best_of_starts(_log_gaussian_model(x), z, starts, lo, hi, n_iter=200, rtol=1e-10)
    vals = {"pref": 2 ** p[:, 0], "sigma_oct": p[:, 1], "amplitude": p[:, 2] * span[:, 0],
            "baseline": p[:, 3] * span[:, 0], "r2": _r2(sse, z)}
    for k, v in vals.items():
        out[k][ok] = v
    return out


def fit_log_gaussian(values: np.ndarray, curve: np.ndarray) -> dict[str, float]:
    """One curve's log-Gaussian fit (see :func:`fit_log_gaussian_many`): pref, sigma_oct, amplitude, baseline, r2."""
    return {k: float(v[0]) for k, v in fit_log_gaussian_many(values, np.asarray(curve, dtype=float)[None]).items()}


# --- Naka–Rushton (contrast response) ------------------------------------------------------------------------

def naka_rushton(c: np.ndarray, r0: float, rmax: float, c50: float, n: float) -> np.ndarray:
    """R(c) = R0 + Rmax·cⁿ/(cⁿ + c50ⁿ)."""
    c = np.asarray(c, dtype=float)
    return r0 + rmax * c**n / (c**n + c50**n)


def _naka_rushton_model(c: np.ndarray) -> Model:
    log_c = np.log(c)[None]

    def model(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r0, rmax, c50, n = (p[:, i:i + 1] for i in range(4))
        g = 1.0 / (1.0 + np.exp(n * (np.log(c50) - log_c)))  # cⁿ/(cⁿ + c50ⁿ) without overflow
        slope = rmax * g * (1 - g)
        J = np.stack([np.ones_like(g), g, -slope * n / c50, slope * (log_c - np.log(c50))], -1)
        return r0 + rmax * g, J
    return model


def fit_naka_rushton_many(contrasts: np.ndarray, curves: np.ndarray) -> dict[str, np.ndarray]:
    """Naka–Rushton fits of every row of curves [U, C] (c50 in [0.005, 2], n in [0.3, 8]; starts c50 ∈ {0.1,
    0.3, 0.6} × n ∈ {1.5, 3}). Returns arrays r0, rmax, c50, n, r2 (NaN for flat or non-finite curves)."""
    c = np.asarray(contrasts, dtype=float)
    if np.any(c <= 0):
        raise ValueError(f"contrasts must all be > 0 for a Naka–Rushton fit, got {c.tolist()}")
    y = np.atleast_2d(np.asarray(curves, dtype=float))
    out = {k: np.full(len(y), np.nan) for k in NAKA_RUSHTON_KEYS}
    ok = _fittable(y)
    if not ok.any():
        return out
    yy = y[ok]
    span = np.ptp(yy, axis=1)[:, None]
    z = yy / span
    lo, hi = [-np.inf, -np.inf, 0.005, 0.3], [np.inf, np.inf, 2.0, 8.0]
    ones = np.ones(len(z))
    starts = [np.c_[z[:, 0], z[:, -1] - z[:, 0], c50 * ones, n * ones] for c50 in (0.1, 0.3, 0.6) for n in (1.5, 3.0)]
    p, sse = best_of_starts(_naka_rushton_model(c), z, starts, lo, hi, n_iter=200, rtol=1e-10)
    vals = {"r0": p[:, 0] * span[:, 0], "rmax": p[:, 1] * span[:, 0], "c50": p[:, 2], "n": p[:, 3],
            "r2": _r2(sse, z)}
    for k, v in vals.items():
        out[k][ok] = v
    return out


def fit_naka_rushton(contrasts: np.ndarray, curve: np.ndarray) -> dict[str, float]:
    """One curve's Naka–Rushton fit (see :func:`fit_naka_rushton_many`): r0, rmax, c50, n, r2."""
    return {k: float(v[0]) for k, v in fit_naka_rushton_many(contrasts, np.asarray(curve, dtype=float)[None]).items()}


# --- bi-von-Mises (direction tuning) -------------------------------------------------------------------------

def bivonmises(theta_rad: np.ndarray, mu: float, kappa: float, phi: float, amplitude: float,
               baseline: float) -> np.ndarray:
    """The pipeline's bi-von-Mises: φ·A·e^{κ(cos(θ−μ)−1)} + (1−φ)·A·e^{κ(cos(θ+π−μ)−1)} + baseline."""
    th = np.asarray(theta_rad, dtype=float)
    return (phi * amplitude * np.exp(kappa * (np.cos(th - mu) - 1))
            + (1 - phi) * amplitude * np.exp(kappa * (np.cos(th + np.pi - mu) - 1)) + baseline)


_FIT_KEYS = ("mu", "kappa", "phi", "amplitude", "baseline", "r2")
KAPPA_MAX = 60.0


def _bvm_model(th: np.ndarray):
    def model(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, kappa, phi, amp, base = (p[:, i:i + 1] for i in range(5))
        c = np.cos(th[None] - mu)
        s = np.sin(th[None] - mu)
        e1 = np.exp(kappa * (c - 1))
        e2 = np.exp(kappa * (-c - 1))
        mix = phi * e1 + (1 - phi) * e2
        f = amp * mix + base
        J = np.stack([amp * kappa * s * (phi * e1 - (1 - phi) * e2),
                      amp * (phi * e1 * (c - 1) + (1 - phi) * e2 * (-c - 1)),
                      amp * (e1 - e2), mix, np.ones_like(f)], -1)
        return f, J
    return model


def fit_bivonmises_many(curves: np.ndarray, directions_deg: np.ndarray) -> dict[str, np.ndarray]:
    """Bi-von-Mises fits of every row of curves [U, D] at once. Each unit starts from the best point of a grid
    over (μ every 5°, κ, φ ∈ {0.5, 0.75, 1}) with amplitude and baseline solved linearly, then Levenberg–Marquardt with
    the bounds κ ∈ [0, 60], φ ∈ [0, 1], A, b ≥ 0. Returns arrays mu (deg, peak with weight ≥ 0.5), kappa, phi,
    amplitude, baseline, r2."""
    y = np.atleast_2d(np.asarray(curves, dtype=float))
    th = np.radians(np.asarray(directions_deg, dtype=float))
    if y.shape[1] != th.size or th.size < 5:
        raise ValueError(f"need one value per direction (≥ 5 directions), got curves {y.shape} for {th.size} directions")
    U = len(y)
    out = {k: np.full(U, np.nan) for k in _FIT_KEYS}
    ok = np.all(np.isfinite(y), axis=1) & (np.ptp(y, axis=1) > 0)
    if not ok.any():
        return out
    yy = y[ok]
    # grid start: basis curves E [C, D]; A, b by least squares per (unit, candidate)
    mus = np.radians(np.arange(0, 360, 5.0))
    kappas = np.array([0.3, 0.7, 1.5, 3, 6, 12, 25, 50])
    phis = np.linspace(0.5, 1, 3)
    M, K, P = np.meshgrid(mus, kappas, phis, indexing="ij")
    M, K, P = M.ravel(), K.ravel(), P.ravel()
    E = (P[:, None] * np.exp(K[:, None] * (np.cos(th[None] - M[:, None]) - 1))
         + (1 - P[:, None]) * np.exp(K[:, None] * (np.cos(th[None] + np.pi - M[:, None]) - 1)))
    Ec = E - E.mean(1, keepdims=True)
    yc = yy - yy.mean(1, keepdims=True)
    # With A and b fitted freely, a candidate leaves sse = |yc|² − (yc·Ec)²/|Ec|², so the best candidate (A ≥ 0) is the
    # one whose unit-norm centred curve has the largest positive projection: one [U, D] × [D, C] product and an
    # argmax (float32: the grid only picks a starting point). Computing each candidate's clipped A, b and sse over
    # [U, C] arrays instead took 0.3 s of a 1 s fit at 10,000 units; b ≥ 0 is left to Levenberg–Marquardt.
    norm = np.sqrt((Ec**2).sum(1))
    best = np.argmax(yc.astype(np.float32) @ (Ec / norm[:, None]).T.astype(np.float32), axis=1)
    A = np.clip(np.einsum("ud,ud->u", yc, Ec[best]) / norm[best] ** 2, 0, None)
    b = np.clip(yy.mean(1) - A * E[best].mean(1), 0, None)
    p0 = np.c_[M[best], K[best], P[best], A, b]
    p, cost = batched_lm(_bvm_model(th), yy, p0, [-np.inf, 0, 0, 0, 0], [np.inf, KAPPA_MAX, 1, np.inf, np.inf])
    mu, kappa, phi, amp, base = p.T
    swap = phi < 0.5  # report the peak that carries the larger weight
    mu = np.where(swap, mu + np.pi, mu)
    phi = np.where(swap, 1 - phi, phi)
    ss_tot = (yc**2).sum(1)
    vals = {"mu": np.mod(np.degrees(mu), 360), "kappa": kappa, "phi": phi, "amplitude": amp, "baseline": base,
            "r2": 1 - cost / np.where(ss_tot > 0, ss_tot, np.nan)}
    for k, v in vals.items():
        out[k][ok] = v
    return out


def fit_bivonmises(curve: np.ndarray, directions_deg: np.ndarray) -> dict[str, float]:
    """Bi-von-Mises fit of one tuning curve (see :func:`fit_bivonmises_many`): mu (deg), kappa, phi ≥ 0.5,
    amplitude, baseline, r2."""
    y = np.asarray(curve, dtype=float)
    if y.ndim != 1 or y.shape != np.shape(directions_deg) or y.size < 5:
        raise ValueError(f"need a 1-D curve with one value per direction (≥ 5), got {y.shape} vs "
                         f"{np.shape(directions_deg)}")
    return {k: float(v[0]) for k, v in fit_bivonmises_many(y[None], directions_deg).items()}
