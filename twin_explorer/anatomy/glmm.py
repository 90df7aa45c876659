"""A Poisson mixed model with one random intercept per group, fitted by maximum likelihood.

    y_ij ~ Poisson(exp(x_ij·β + offset_ij + u_i)),   u_i ~ N(0, σ²)

This is the model the MICrONS functional-connectomics analysis fits with R's glmmTMB (Poisson, log link, an offset
of log co-travel length, a random intercept per presynaptic neuron), written with numpy/scipy so it needs no R:
each group's integral over u_i is one-dimensional and is computed by adaptive Gauss–Hermite quadrature (the
Laplace approximation glmmTMB uses is its one-node case). Wald standard errors come from the numerical Hessian
of the marginal log-likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

_NODES, _WEIGHTS = np.polynomial.hermite.hermgauss(9)
_LOG_SIGMA_BOUNDS = (-8.0, 3.0)


@dataclass
class MixedPoissonFit:
    """Fixed effects (``coefficients``: estimate, se, z, p_value, ci_low, ci_high per term, on the scale of the
    covariates as given), the random-intercept SD and the fit diagnostics."""

    coefficients: pd.DataFrame
    random_effect_sd: float
    log_likelihood: float
    n_obs: int
    n_groups: int
    converged: bool
    confidence: float


def _group_terms(u: np.ndarray, total: np.ndarray, scale: np.ndarray, sigma: float) -> np.ndarray:
    """h(u) = Y·u − A·e^u − u²/(2σ²) per group (Y = summed counts, A = summed expected counts at u = 0)."""
    return total * u - scale * np.exp(u) - u ** 2 / (2 * sigma ** 2)


def marginal_log_likelihood(theta: np.ndarray, X: np.ndarray, y: np.ndarray, offset: np.ndarray,
                            groups: np.ndarray, n_groups: int, gradient: bool = False) -> float | tuple:
    """log L(β, log σ) with the random intercepts integrated out (adaptive Gauss–Hermite, 9 nodes); with
    ``gradient`` also its gradient (the posterior expectations of e^u and u² at the quadrature nodes)."""
    ll, grad, _ = _log_likelihood(theta, X, y, offset, groups, n_groups, np.zeros(n_groups))
    return (ll, grad) if gradient else ll


def _log_likelihood(theta: np.ndarray, X: np.ndarray, y: np.ndarray, offset: np.ndarray, groups: np.ndarray,
                    n_groups: int, u_start: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(log L, gradient, modes of the random intercepts); the Newton search for the modes starts at u_start."""
    beta, sigma = theta[:-1], float(np.exp(np.clip(theta[-1], *_LOG_SIGMA_BOUNDS)))
    eta = X @ beta + offset
    mu0 = np.exp(eta)
    total = np.bincount(groups, weights=y, minlength=n_groups)
    scale = np.bincount(groups, weights=mu0, minlength=n_groups)
    # mode of each group's integrand: damped Newton on a concave function of one variable
    u = u_start.copy()
    for _ in range(60):
        grad = total - scale * np.exp(u) - u / sigma ** 2
        hess = -scale * np.exp(u) - 1 / sigma ** 2
        step = np.clip(-grad / hess, -2.0, 2.0)
        u += step
        if np.max(np.abs(step)) < 1e-10:
            break
    s = 1 / np.sqrt(scale * np.exp(u) + 1 / sigma ** 2)
    nodes = u[:, None] + np.sqrt(2) * s[:, None] * _NODES[None, :]
    log_terms = _group_terms(nodes, total[:, None], scale[:, None], sigma) + _NODES[None, :] ** 2 \
        + np.log(_WEIGHTS)[None, :]
    log_int = special.logsumexp(log_terms, axis=1)
    ll = float(np.sum(y * eta - special.gammaln(y + 1))
               + (log_int + np.log(np.sqrt(2) * s) - np.log(sigma * np.sqrt(2 * np.pi))).sum())
    post = np.exp(log_terms - log_int[:, None])  # posterior weights of the nodes, per group
    e_exp_u = (post * np.exp(nodes)).sum(axis=1)
    e_u2 = (post * nodes ** 2).sum(axis=1)
    g_beta = X.T @ (y - mu0 * e_exp_u[groups])
    inside = _LOG_SIGMA_BOUNDS[0] < theta[-1] < _LOG_SIGMA_BOUNDS[1]
    g_log_sigma = float(np.sum(e_u2 / sigma ** 2 - 1)) if inside else 0.0  # flat beyond the clip
    return ll, np.r_[g_beta, g_log_sigma], u


def _hessian(grad_f, x: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Central-difference Hessian (from the gradient) over the coordinates in ``free``."""
    idx = np.flatnonzero(free)
    H = np.zeros((len(idx), len(idx)))
    for a, i in enumerate(idx):
        h = 1e-5 * (1 + abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        H[:, a] = (grad_f(up)[idx] - grad_f(down)[idx]) / (2 * h)
    return (H + H.T) / 2


def fit_mixed_poisson(data: pd.DataFrame, response: str, covariates: list[str], group: str,
                      offset: str | None = None, confidence: float = 0.95) -> MixedPoissonFit:
    """Fit ``response ~ 1 + covariates + offset(log(offset)) + (1 | group)`` (Poisson, log link).

    Covariates are standardised internally (for conditioning) and reported per unit of the covariate as given.
    Rows with a missing value in any used column are dropped; offsets must be positive.
    """
    cols = [response, *covariates, group] + ([offset] if offset else [])
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise ValueError(f"data lacks columns {missing}; it has {list(data.columns)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    d = data[cols].dropna()
    y = d[response].to_numpy(float)
    if np.any(y < 0) or np.any(y != np.round(y)):
        raise ValueError(f"{response} must hold non-negative counts")
    off = np.zeros(len(d))
    if offset:
        o = d[offset].to_numpy(float)
        if np.any(o <= 0):
            raise ValueError(f"{offset} (the exposure) must be positive in every row")
        off = np.log(o)
    codes, uniques = pd.factorize(d[group])
    if len(d) <= len(covariates) + 2 or len(uniques) < 2:
        raise ValueError(f"too little data: {len(d)} rows in {len(uniques)} groups for {len(covariates)} covariates")
    Z = d[covariates].to_numpy(float)
    mu, sd = Z.mean(axis=0), Z.std(axis=0)
    if np.any(sd == 0):
        raise ValueError(f"covariates {[c for c, s in zip(covariates, sd) if s == 0]} do not vary")
    X = np.column_stack([np.ones(len(d)), (Z - mu) / sd])

    modes = np.zeros(len(uniques))  # warm start: the modes move little between nearby evaluations

    def negll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, g, u = _log_likelihood(theta, X, y, off, codes, len(uniques), modes)
        modes[:] = np.where(np.isfinite(u), u, 0.0)
        return -ll, -g

    rate = max(y.sum(), 0.5) / np.exp(off).sum()
    theta0 = np.r_[np.log(rate), np.zeros(len(covariates)), np.log(0.5)]
    # log σ is clipped to _LOG_SIGMA_BOUNDS inside the likelihood (flat beyond), so plain BFGS needs no bounds
    res = optimize.minimize(negll, theta0, jac=True, method="BFGS", options={"maxiter": 500, "gtol": 1e-6})
    theta = res.x.copy()
    theta[-1] = np.clip(theta[-1], *_LOG_SIGMA_BOUNDS)
    free = np.ones(len(theta), bool)
    if not _LOG_SIGMA_BOUNDS[0] + 1e-3 < theta[-1] < _LOG_SIGMA_BOUNDS[1] - 1e-3:
        free[-1] = False  # σ at a bound: the β curvature alone (at σ → 0, that of the plain Poisson model)
    H = _hessian(lambda t: negll(t)[1], theta, free)
    if free[-1] and H[-1, -1] < 1e-8:  # σ practically unidentified (≈ 0): keep the β block
        H = H[:-1, :-1]
    try:
        cov = np.linalg.inv(H)
        se_std = np.sqrt(np.clip(np.diag(cov)[:len(covariates) + 1], 0, None))
    except np.linalg.LinAlgError:
        se_std = np.full(len(covariates) + 1, np.nan)
    # back to the covariates' own units
    est = theta[1:len(covariates) + 1] / sd
    se = se_std[1:] / sd
    z = est / se
    q = stats.norm.ppf(0.5 + confidence / 2)
    coef = pd.DataFrame({"term": covariates, "estimate": est, "se": se, "z": z,
                         "p_value": 2 * stats.norm.sf(np.abs(z)), "ci_low": est - q * se, "ci_high": est + q * se,
                         "covariate_sd": sd}).set_index("term")
    return MixedPoissonFit(coefficients=coef, random_effect_sd=float(np.exp(theta[-1])),
                           log_likelihood=float(-res.fun), n_obs=len(d), n_groups=len(uniques),
                           converged=bool(res.success), confidence=confidence)
