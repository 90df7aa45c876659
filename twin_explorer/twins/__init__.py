"""Where twins come from: the registry (:func:`load_twin`), trained twins on disk (the demo twin's format), the
published MICrONS bundle (and full-size random stand-ins for it), and the synthetic mouse as a twin (with the
ground truth behind twins trained on it)."""

from .demo import demo_available, demo_dir, load_demo_twin, load_network, read_metadata, save_network
from .fullsize import PUBLISHED_UNITS, bundle_manifest, make_bundle
from .microns import BundleError, available_scans, download_microns, load_microns, scan_unit_counts
from .registry import TWIN_NAMES, load_twin
from .synthetic_mouse import mouse_key, trained_mouse, truth_provider

__all__ = ["PUBLISHED_UNITS", "TWIN_NAMES", "BundleError", "available_scans", "bundle_manifest", "demo_available",
           "demo_dir", "download_microns", "load_demo_twin", "load_microns", "load_network", "load_twin", "make_bundle",
           "mouse_key", "read_metadata", "save_network", "scan_unit_counts", "trained_mouse", "truth_provider"]
