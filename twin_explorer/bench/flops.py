"""FLOPs of the network per frame, counted from its configuration (2 FLOPs per multiply-add).

torch's FLOP counter cannot see the convolutions the engine sends to oneDNN directly (``aten.mkldnn_convolution``
has no counting rule) nor fused attention kernels, so it undercounts the engine (2.9 instead of about 8.5 GFLOP a
frame at the published size). This counts every convolution, projection, attention product and readout from the
layer shapes of ``shared/spec/fnn-architecture.md`` sections 5-7; elementwise work (activations, pooling, the
perspective's resampling) is left out, as FLOP counters do.
"""

from __future__ import annotations

from ..model import NetworkConfig

DENSE_TAPS, DENSE_KERNEL = 3, 3  # the dense blocks' temporal taps and spatial kernel (spec 5)


def network_flops(cfg: NetworkConfig, units: int | None = None) -> dict[str, int]:
    """FLOPs of one frame of one video by part, plus ``"total"``; ``units`` defaults to the config's.

    Steady state (from the second frame on): the inter-group projection of the recurrent state is counted, which
    the first frame after a reset skips (its state is zero)."""
    units = cfg.units if units is None else units
    S = cfg.streams
    h, w = cfg.retina_shape[0] // cfg.input_stride, cfg.retina_shape[1] // cfg.input_stride
    parts = {"input conv": 2 * S * cfg.ff_channels[0] * cfg.input_kernel ** 2 * h * w}
    dense = projections = 0
    previous = None
    for c, g, pool in zip(cfg.ff_channels, cfg.ff_groups, cfg.ff_pools):
        if previous is not None:
            projections += 2 * S * c * previous * h * w
        per_group = c // g
        dense += 2 * (2 * S * c * per_group * DENSE_TAPS * DENSE_KERNEL ** 2 * h * w)  # convs.0 and convs.1
        dense += 2 * S * c * per_group * h * w  # skips.1 (1×1)
        previous = 3 * c
        h, w = h // pool, w // pool
    projections += 2 * S * cfg.ff_out * previous * h * w  # feedforward.out
    parts["dense blocks"], parts["ff projections"] = dense, projections
    P, G = h * w, cfg.rec_groups
    parts["recurrent conv"] = 2 * S * cfg.rec_common * ((cfg.rec_input + cfg.rec_hidden) // G) * cfg.rec_kernel ** 2 * P
    parts["recurrent projections"] = (
        2 * S * cfg.rec_input * cfg.rec_hidden * P  # inter-group (a dense matrix with zero diagonal blocks)
        + 2 * S * cfg.rec_input * cfg.ff_out * P  # P_F
        + 2 * S * cfg.rec_input * cfg.modulation_features  # P_μ (one vector per frame)
        + 3 * 2 * S * cfg.rec_common * (cfg.rec_common // G) * P  # q, k, v
        + 4 * 2 * S * cfg.rec_hidden * (2 * cfg.rec_common // G) * P  # gates i, f, g, o
        + 2 * S * cfg.rec_out * cfg.rec_hidden * P)  # out
    parts["attention"] = 2 * (2 * S * cfg.rec_common * P * P)  # q·k over all position pairs, then weights·v
    m = cfg.modulation_features
    parts["modulation"] = 2 * S * 2 * m + 4 * 2 * S * m * 2 * m  # input layer 2→16, four LSTM gates 32→16
    parts["readout"] = 2 * S * cfg.rec_out * units  # feature weights · sampled core output
    parts["total"] = sum(parts.values())
    return parts
