"""The MICrONS foundation-model network in pure torch (perspective, modulation, feedforward, recurrent, readout)."""

from .network import Network, NetworkConfig, NetworkState

__all__ = ["Network", "NetworkConfig", "NetworkState"]
