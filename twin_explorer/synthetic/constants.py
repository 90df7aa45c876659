"""Numbers of the synthetic mouse's generative model shared by the mouse, its true tuning and its recordings."""

KERNEL_FRAMES = 18  # temporal filter length (0.6 s); the onset transient of any stimulus lasts this long
# Version of the generative model (parameter distributions and stages). Caches of recordings and truth include it.
# 2: near-zero thresholds, higher amplitude and baseline, so that natural videos drive the neurons (std/mean ≈ 0.4).
MODEL_VERSION = 2
EYE_SHIFT_DEG = 3.0  # degrees of retinal image shift per standardised unit of eye position
