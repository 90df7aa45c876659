"""Anatomy commands: build the offline sample, and follow one unit to its neuron (chain + Neuroglancer link)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("anatomy-sample")
    def anatomy_sample(
        out: Path = typer.Option(Path("assets/anatomy"), help="output folder"),
        seed: int = typer.Option(0, help="random seed of the sample"),
        units: Optional[Path] = typer.Option(None, help="units CSV (readout_id, session, scan_idx, unit_id, ...); "
                                                        "default: the synthetic mouse's units and true tuning"),
        mouse_seed: int = typer.Option(0, help="seed of the synthetic mouse whose units are used"),
        n_skeletons: int = typer.Option(30, help="neurons with an SWC skeleton"),
    ) -> None:
        """Generate the synthetic MICrONS-like anatomy sample linked to a twin's units."""
        import pandas as pd

        from ..anatomy.sample import generate_sample

        if units is not None:
            if not units.exists():
                raise typer.BadParameter(f"units file not found: {units}")
            table = pd.read_csv(units).set_index("readout_id")
            tuning, source = None, str(units)
        else:
            from ..synthetic import SyntheticMouse

            mouse = SyntheticMouse(seed=mouse_seed)
            table, tuning, source = mouse.units, mouse.truth(), f"SyntheticMouse(seed={mouse_seed})"
        path = generate_sample(table, tuning, out, seed=seed, n_skeletons=n_skeletons, source=source)
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        typer.echo(f"wrote anatomy sample for {len(table)} units to {path} ({size / 1e6:.1f} MB)")

    @app.command("anatomy-unit")
    def anatomy_unit(
        readout_id: int = typer.Argument(..., help="readout id of the unit"),
        folder: Optional[Path] = typer.Option(None, help="anatomy folder (default: the shipped sample)"),
        mouse_seed: int = typer.Option(0, help="seed of the synthetic mouse whose units are linked"),
    ) -> None:
        """Print the link chain of one unit (coregistration, nucleus, cell type, area) and a Neuroglancer link."""
        from ..anatomy import Anatomy, neuroglancer_link
        from ..synthetic import SyntheticMouse

        anatomy = Anatomy(folder) if folder else Anatomy.sample()
        try:
            chain = anatomy.neuron_of_unit(SyntheticMouse(seed=mouse_seed).units, readout_id)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        for key in ("readout_id", "session", "scan_idx", "unit_id", "match", "n_matches", "nucleus_id", "pt_root_id",
                    "residual", "score", "coreg_source", "cell_type", "area", "layer", "depth_um", "has_skeleton"):
            if key in chain:
                typer.echo(f"{key:>14}: {chain[key]}")
        if chain["match"] != "none":
            nid = int(chain["nucleus_id"])
            syn = anatomy.synapses(nid)
            typer.echo(f"{'neuroglancer':>14}: {neuroglancer_link([int(chain['pt_root_id'])], syn)}")
