"""The whole network: perspective -> feedforward -> CvT-LSTM (with modulation) -> readout -> exp.

:class:`NetworkConfig` describes the architecture; ``NetworkConfig.microns(units)`` is the published
one, smaller configurations (fewer streams/channels) build the demo twin with the same classes.
``Network.run`` processes a chunk of frames of N videos and returns the carried state, so a long
video can be fed in chunks, or frame by frame, with identical results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from .feedforward import Feedforward
from .layers import freeze_weights, memory_layout
from .modulation import Modulation
from .perspective import Perspective
from .readout import Readout
from .recurrent import CvtLstm


@dataclass(frozen=True)
class NetworkConfig:
    units: int
    streams: int = 4
    retina_shape: tuple[int, int] = (128, 192)
    retina_degrees: float = 75.0  # eccentricity of the retina's left/right edge (spec 3.2: 75°)
    perspective_features: int = 16
    perspective_layers: int = 3
    modulation_features: int = 16
    ff_channels: tuple[int, ...] = (32, 64, 128)
    ff_groups: tuple[int, ...] = (1, 2, 4)
    ff_pools: tuple[int, ...] = (2, 2, 1)
    input_kernel: int = 6
    input_stride: int = 2
    ff_out: int = 128
    rec_input: int = 256
    rec_hidden: int = 256
    rec_common: int = 512
    rec_groups: int = 8
    rec_kernel: int = 3
    rec_out: int = 128
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def microns(cls, units: int) -> "NetworkConfig":
        """The published MICrONS configuration."""
        return cls(units=units)

    def __post_init__(self):
        if int(self.units) != self.units or self.units < 1:
            raise ValueError(f"units must be a positive integer, got {self.units!r}")
        if not (len(self.ff_channels) == len(self.ff_groups) == len(self.ff_pools)):
            raise ValueError("ff_channels, ff_groups and ff_pools must have the same length")

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "NetworkConfig":
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**d)


class Core(nn.Module):
    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        self.feedforward = Feedforward(cfg.streams, cfg.ff_channels, cfg.ff_groups, cfg.ff_pools,
                                       cfg.input_kernel, cfg.input_stride, cfg.ff_out)
        self.recurrent = CvtLstm(cfg.streams, cfg.ff_out, cfg.modulation_features, cfg.rec_input,
                                 cfg.rec_hidden, cfg.rec_common, cfg.rec_groups, cfg.rec_kernel, cfg.rec_out)


@dataclass
class NetworkState:
    """Everything carried from one frame to the next (cleared by starting from ``None``)."""

    feedforward: list | None = None
    modulation: tuple | None = None
    recurrent: tuple | None = None
    frames: int = 0

    def expand(self, n: int) -> "NetworkState":
        """The state of a one-video batch copied to n videos (each tensor keeps its memory layout)."""
        def copy(x):
            if x is None:
                return None
            if isinstance(x, (list, tuple)):
                return type(x)(copy(v) for v in x)
            if x.shape[0] != 1:
                raise ValueError(f"expand() needs the state of a single video, got batch {x.shape[0]}")
            return x.expand(n, *x.shape[1:]).contiguous(memory_format=memory_layout(x))

        return NetworkState(copy(self.feedforward), copy(self.modulation), copy(self.recurrent), self.frames)


class Network(nn.Module):
    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        self.config = cfg
        self.core = Core(cfg)  # registration order = state-dict order of the published files
        self.perspective = Perspective(cfg.retina_shape, cfg.perspective_features, cfg.perspective_layers,
                                       degrees=cfg.retina_degrees)
        self.modulation = Modulation(cfg.streams, cfg.modulation_features)
        self.readout = Readout(cfg.units, cfg.rec_out, cfg.streams)

    def freeze(self, frozen: bool = True) -> "Network":
        """Cache effective weights from now on (for inference with fixed parameters); ``False`` undoes it."""
        freeze_weights(self, frozen)
        return self

    # --- what the network says about itself (so nobody reads state-dict keys by name) --------------
    def readout_positions(self) -> np.ndarray:
        """Each readout's position on the core's grid: tanh(mu) computed in float64, [U, 2] (x, y in (−1, 1),
        y = −1 at the top of the retina)."""
        return np.tanh(self.readout.position.mu.detach().cpu().numpy().astype(float))

    @property
    def retina_degrees(self) -> float:
        """Field of view: eccentricity in degrees of the retina's left/right edge (75° in the published network)."""
        return float(self.config.retina_degrees)

    @property
    def retina_shape(self) -> tuple[int, int]:
        """Pixels (height, width) of the retina image the core sees."""
        return tuple(self.perspective.retina_shape)

    def monitor_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """(centre [3], rotation angles [3]) of the monitor in the eye's frame, as float64 arrays."""
        monitor = self.perspective.monitor
        return (monitor.center.detach().cpu().numpy().astype(float),
                monitor.angle.detach().cpu().numpy().astype(float))

    def eye_angles(self, perspective: tuple[float, float] | np.ndarray = (0.0, 0.0)) -> np.ndarray:
        """Eye rotation angles [3] (float64) the perspective module gives an eye position (x, y), default 0."""
        with torch.no_grad():
            p = torch.as_tensor(np.asarray(perspective, dtype=np.float32)).reshape(1, 2)
            p = p.to(self.perspective.monitor.center.device)
            return self.perspective.angles(p)[0].detach().cpu().numpy().astype(float)

    def retina(self, video: torch.Tensor, perspectives: torch.Tensor) -> torch.Tensor:
        """video [N, T, H, W] in pixel units 0–255 (float, or uint8: same result, faster) -> retina images
        [N, 1, T, h, w]."""
        n, t = video.shape[:2]
        if video.dtype == torch.uint8:
            frames = self.perspective.monitor_pixel.lookup(video).reshape(n * t, 1, *video.shape[2:])
            r = self.perspective(frames, perspectives.reshape(n * t, 2), gamma_applied=True)
        else:
            frames = (video / 255.0).reshape(n * t, 1, *video.shape[2:])
            r = self.perspective(frames, perspectives.reshape(n * t, 2))
        return r.view(n, t, *r.shape[1:]).transpose(1, 2)

    def run(self, video: torch.Tensor, perspectives: torch.Tensor, modulations: torch.Tensor,
            state: NetworkState | None = None, units: torch.Tensor | None = None,
            log: bool = False, retina: torch.Tensor | None = None) -> tuple[torch.Tensor, NetworkState]:
        """Process a chunk: video [N, T, H, W] (0–255, float or uint8), behaviour [N, T, 2] -> ([N, T, U], state).

        Returns rates (exp of the stream-mean log rate), or the log rates when ``log``. ``retina``: the chunk's
        retina images [N, 1, T, h, w] when the caller has them already (then ``video`` is only used for its shape).
        """
        state = state or NetworkState()
        n, t = video.shape[:2]
        if retina is None:
            retina = self.retina(video, perspectives)
        features, ff_state = self.core.feedforward(retina, state.feedforward)
        mu, mod_state = self.modulation(modulations, state.modulation)
        hidden, rec_state = self.core.recurrent(features, mu, state.recurrent)
        core = self.core.recurrent.output(hidden)  # [N, S·C, T, h, w]
        core = core.transpose(1, 2).reshape(n * t, *core.shape[1:2], *core.shape[3:])
        # the readout samples in float32 whatever precision the core ran in (grid_sample needs one dtype; a
        # reduced-precision log rate would also lose digits in exp)
        rho = self.readout(core.float(), units).view(n, t, -1)
        new_state = NetworkState(ff_state, mod_state, rec_state, state.frames + t)
        return (rho if log else torch.exp(rho)), new_state

    def forward(self, video: torch.Tensor, perspectives: torch.Tensor, modulations: torch.Tensor,
                units: torch.Tensor | None = None) -> torch.Tensor:
        """Responses [N, T, U] from zero state."""
        return self.run(video, perspectives, modulations, None, units)[0]
