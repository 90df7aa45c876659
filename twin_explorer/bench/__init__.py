"""Speed benchmarks behind ``twin-explorer bench``: the engine at the published size (:mod:`.engine`), FLOPs counted
from the architecture (:mod:`.flops`), reduced precision against float32 (:mod:`.precision`) and the GPU path with
CUDA-graph buckets (:mod:`.gpu`). Each prints its numbers and ratios measured in one run."""

from .engine import run_engine_bench
from .flops import network_flops

__all__ = ["network_flops", "run_engine_bench"]
