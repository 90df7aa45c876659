"""Where a network's readouts look: readout positions mapped through the network's own retina geometry and
perspective (eye rotation, monitor pose) to monitor degrees, an RF estimate that needs no stimulus."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from ..engine.contract import TwinLike
from ..monitor import DEFAULT_MONITOR, Monitor

__all__ = ["readout_rf", "readout_rf_from_network"]


def _rot(angles: np.ndarray) -> np.ndarray:
    """Rz·Ry·Rx for angles [..., 3] (spec 3.1) -> [..., 3, 3]."""
    ax, ay, az = np.moveaxis(np.asarray(angles, dtype=float), -1, 0)
    c, s = np.cos, np.sin
    one, zero = np.ones_like(ax), np.zeros_like(ax)
    rx = np.stack([one, zero, zero, zero, c(ax), -s(ax), zero, s(ax), c(ax)], -1).reshape(*ax.shape, 3, 3)
    ry = np.stack([c(ay), zero, s(ay), zero, one, zero, -s(ay), zero, c(ay)], -1).reshape(*ax.shape, 3, 3)
    rz = np.stack([c(az), -s(az), zero, s(az), c(az), zero, zero, zero, one], -1).reshape(*ax.shape, 3, 3)
    return (rz @ ry) @ rx


def readout_rf(positions: Any, *, eye_angles: Any = (0.0, 0.0, 0.0), monitor_center: Any = (0.0, 0.0, 0.5),
               monitor_angle: Any = (0.0, 0.0, 0.0), retina_shape: tuple[int, int] = (128, 192),
               max_eccentricity_deg: float = 75.0, monitor: Monitor = DEFAULT_MONITOR,
               frame_shape: tuple[int, int] = (144, 256), apply_tanh: bool = False) -> pd.DataFrame:
    """Map readout positions P = tanh(mu) (x, y in (−1, 1), y = −1 at the top) to monitor degrees.

    Follows the network's own geometry (spec §3, §13): retina direction with x = px, y = py·(H'/W')·(W'−1)/W'
    /((H'−1)/H'), eccentricity ``max_eccentricity_deg``·|(x, y)| (75° in the published network), rotated by the
    eye rotation Rz·Ry·Rx(eye_angles), intersected with the monitor plane (centre, rot(angle)) to isotropic monitor
    coordinates g, converted to the pixels the network samples (grid_sample, align_corners=False, with the spec's
    (W'−1)/W' factors), then to degrees with ``monitor``. Pass raw ``mu`` with ``apply_tanh=True``. Returns a DataFrame with az, el (deg), col, row (px)
    and on_monitor (False when the ray misses the screen)."""
    P = np.asarray(positions.detach().cpu().numpy() if hasattr(positions, "detach") else positions, dtype=float)
    if P.ndim == 1:
        P = P[None]
    if P.ndim != 2 or P.shape[1] != 2:
        raise ValueError(f"positions must be [U, 2] (x, y), got shape {P.shape}")
    if apply_tanh:
        P = np.tanh(P)
    Ho, Wo = retina_shape
    Hs, Ws = frame_shape
    x = P[:, 0]
    y = P[:, 1] * (Ho / Wo) * ((Wo - 1) / Wo) / ((Ho - 1) / Ho)
    ecc = np.clip(np.hypot(x, y) * np.radians(max_eccentricity_deg), 0, np.pi / 2)
    phi = np.arctan2(y, x)
    rays = np.stack([np.sin(ecc) * np.cos(phi), np.sin(ecc) * np.sin(phi), np.cos(ecc)], -1)
    rays = rays @ _rot(np.asarray(eye_angles, dtype=float)).T
    M = _rot(np.asarray(monitor_angle, dtype=float))
    X, Y, Z = M[:, 0], M[:, 1], M[:, 2]
    c = np.asarray(monitor_center, dtype=float)
    denom = rays @ Z
    t = (Z @ c) / np.maximum(denom, 1e-5)
    d = t[:, None] * rays - c
    gx, gy = d @ X, d @ Y
    s = Ws / (Ws - 1)
    nx = gx * s * (Wo - 1) / Wo
    ny = gy * (Ws / Hs) * s * (Ho - 1) / Ho
    col = (nx + 1) / 2 * Ws
    row = (ny + 1) / 2 * Hs
    # the network's frame is the monitor's frame: rescale pixel units if a non-default frame shape is used
    col = col * monitor.width_px / Ws
    row = row * monitor.height_px / Hs
    az, el = monitor.pixels_to_degrees(col, row)
    on = (denom > 1e-5) & (np.abs(nx) <= 1) & (np.abs(ny) <= 1)
    return pd.DataFrame({"az": az, "el": el, "col": col, "row": row, "on_monitor": on})


def readout_rf_from_network(network: TwinLike | Any, perspective: Any = (0.0, 0.0), monitor: Monitor = DEFAULT_MONITOR
                            ) -> pd.DataFrame:
    """:func:`readout_rf` for a torch fnn network (or a twin holding one as ``.network``): reads
    ``readout.position.mu`` and the perspective module's monitor pose and eye rotation at ``perspective``
    (default: the mean eye position, 0)."""
    net = getattr(network, "network", network)
    try:
        sd = net.state_dict()
    except AttributeError as exc:
        raise ValueError("network must be a torch module (or a twin with .network) with the fnn state dict") from exc
    needed = ("perspective.monitor.center", "perspective.monitor.angle")
    missing = [k for k in needed if k not in sd]
    if missing:
        raise ValueError(f"the network's state dict lacks {missing}; is it an fnn network?")
    persp = getattr(net, "perspective", None)
    eye = np.zeros(3)
    if persp is not None and hasattr(persp, "angles"):
        with torch.no_grad():
            p = torch.as_tensor(np.asarray(perspective, dtype=np.float32)).reshape(1, 2)
            eye = persp.angles(p)[0].detach().cpu().numpy().astype(float)
    grid = sd.get("perspective.retina.grid")
    retina_shape = tuple(grid.shape[:2]) if grid is not None else (128, 192)
    # the retina's field of view is the network's own (the demo twin's is narrower than the published ±75°)
    degrees = float(getattr(getattr(net, "config", None), "retina_degrees", 75.0))
    # the model answers where its readouts look (P = tanh(mu)) when it can; older networks are read by key
    ask = getattr(network, "readout_positions", None) or getattr(net, "readout_positions", None)
    if callable(ask):
        positions, raw = np.asarray(ask(), dtype=float), False
    elif "readout.position.mu" in sd:
        positions, raw = sd["readout.position.mu"], True
    else:
        raise ValueError("the network neither has readout_positions() nor a 'readout.position.mu' parameter; "
                         "is it an fnn network?")
    return readout_rf(positions, apply_tanh=raw, eye_angles=eye,
                      monitor_center=sd["perspective.monitor.center"].cpu().numpy(),
                      monitor_angle=sd["perspective.monitor.angle"].cpu().numpy(), retina_shape=retina_shape,
                      max_eccentricity_deg=degrees, monitor=monitor)


