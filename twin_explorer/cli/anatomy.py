"""Anatomy commands: build the offline sample, follow one unit to its neuron (chain + Neuroglancer link), and
export real MICrONS anatomy from CAVE (``twin-explorer anatomy export``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .lazy import load


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Real MICrONS anatomy from CAVE (needs the 'microns' extra, i.e. caveclient).",
                        no_args_is_help=True)
    app.add_typer(group, name="anatomy")

    @group.command("export")
    def anatomy_export(
        version: int = typer.Option(..., help="materialization version to pin (e.g. 1300); all root ids are of it"),
        scans: str = typer.Option(..., help="scans whose coregistered units to export, e.g. 8-5,9-3"),
        out: Path = typer.Option(..., help="output anatomy folder (rerun the same command to resume)"),
        datastack: str = typer.Option("minnie65_public", help="CAVE datastack"),
        skeletons: bool = typer.Option(True, help="download skeletons from the skeleton service"),
        include_auto: bool = typer.Option(False, help="also the automatic coregistration table"),
        progress: bool = typer.Option(True, help="show a progress bar"),
    ) -> None:
        """Export tables, skeletons and synapses of the coregistered neurons of SCANS at VERSION into OUT."""
        cave = load("anatomy", "cave")
        export_anatomy, parse_scans = load("anatomy.export", "export_anatomy", "parse_scans")

        try:
            parse_scans(scans)
            client = cave.cave_client(datastack, version=version)
            manifest = export_anatomy(client, out, version, scans, datastack=datastack, skeletons=skeletons,
                                      include_auto=include_auto, progress=progress)
        except (ValueError, ImportError) as exc:
            raise typer.BadParameter(str(exc)) from None
        c = manifest["counts"]
        typer.echo(f"exported {c['neurons']} neurons ({c['skeletons']} skeletons, {c['synapses']} synapses, "
                   f"{c['partner_nuclei']} partner nuclei) of {datastack} v{version} to {out}")

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

        generate_sample = load("anatomy.sample", "generate_sample")

        if units is not None:
            if not units.exists():
                raise typer.BadParameter(f"units file not found: {units}")
            table = pd.read_csv(units).set_index("readout_id")
            tuning, source = None, str(units)
        else:
            SyntheticMouse = load("synthetic", "SyntheticMouse")

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
        Anatomy = load("anatomy", "Anatomy")
        neuroglancer_link_for_neuron = load("anatomy.neuroglancer", "neuroglancer_link_for_neuron")
        SyntheticMouse = load("synthetic", "SyntheticMouse")

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
            try:
                link = neuroglancer_link_for_neuron(anatomy, int(chain["nucleus_id"]))
            except ValueError as exc:  # e.g. the synthetic sample: no real EM ids to show
                link = f"none ({exc})"
            typer.echo(f"{'neuroglancer':>14}: {link}")
