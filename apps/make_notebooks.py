"""Write the teaching notebooks in apps/ (run: python apps/make_notebooks.py). Each runs end to end on the
explorer's default twin (the demo twin when present, else the synthetic mouse) in well under a minute."""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

SETUP = """import numpy as np
import panel as pn
import twin_explorer
from twin_explorer.ui import get_twin

pn.extension("tabulator", "plotly", "filedropper")  # filedropper: the designer's video upload
twin = get_twin()  # the demo twin when its files are present, else the synthetic mouse
print(twin.id, twin.n_units, "neurons")"""

NOTEBOOKS = {
    "01_first_experiment.ipynb": [
        ("md", "# 1 · A first in-silico experiment\n\nA *digital twin* predicts how thousands of neurons in mouse "
               "visual cortex respond to any video. Here we design a stimulus, show it to the twin and read out "
               "the predicted responses."),
        ("code", SETUP),
        ("md", "## Design a stimulus\nStimuli are `param` objects: every parameter has bounds and documentation."),
        ("code", "from twin_explorer.stimuli import DriftingGrating\n\n"
                 "grating = DriftingGrating(direction_deg=90, sf_cpd=0.04, tf_hz=2, duration_s=1.0)\n"
                 "frames = grating.render()\nprint(frames.shape, frames.dtype)\ngrating.epochs"),
        ("md", "## Show it to the twin\n`predict` takes uint8 frames [T, 144, 256] and returns responses [T, neurons]."),
        ("code", "responses = twin.predict(frames)\nprint(responses.shape)\n"
                 "best = np.argsort(responses.mean(0))[::-1][:5]\n"
                 "print('most driven neurons:', twin.units.index[best].tolist())"),
        ("md", "## The same, interactively\n`StimulusDesigner` is the explorer's first view; change a parameter "
               "and the heatmap and traces follow."),
        ("code", "from twin_explorer.ui import StimulusDesigner\n\n"
                 "designer = StimulusDesigner(twin)\n"
                 "designer.stimulus.direction_deg = 180  # what a slider would do\n"
                 "print(designer.n_updates, 'redraws;', designer.info.object)\ndesigner"),
        ("md", "Behaviour matters too: running and pupil size modulate responses."),
        ("code", "designer.state.running = 2.0\nds = designer.responses_dataset()\n"
                 "print(float(ds.response.mean()), ds.attrs['stimulus_family'])"),
    ],
    "02_tuning_and_receptive_fields.ipynb": [
        ("md", "# 2 · Tuning and receptive fields against the ground truth\n\nOn the synthetic mouse every neuron's "
               "true preferred direction and RF centre are known, so in-silico experiments can be checked."),
        ("code", SETUP),
        ("code", "from twin_explorer.ui import ExplorerState, TuningView, ReceptiveFieldView\n\n"
                 "state = ExplorerState(twin)\nstate.selection = [int(u) for u in twin.units.index[:12]]\n"
                 "tuning = TuningView(state=state, scope='selected neurons', directions=12, duration_s=1.0)\n"
                 "tuning.run(wait=True)\nds = tuning.result\nds[['pref_dir', 'osi', 'dsi', 'gosi']].to_dataframe().head()"),
        ("md", "## Compare with the ground truth\nPreferred directions are circular: compare angular differences."),
        ("code", "truth = twin.truth()  # None for a twin of a real mouse\nif truth is not None:\n"
                 "    ids = ds.unit.values\n"
                 "    err = (ds.pref_dir.values - truth.loc[ids, 'pref_dir_deg'].values + 180) % 360 - 180\n"
                 "    tuned = truth.loc[ids, 'gdsi'].values > 0.1\n"
                 "    print('median |error| of tuned neurons (deg):', np.median(np.abs(err[tuned])))\n"
                 "tuning"),
        ("md", "## Receptive fields from flashing dots"),
        ("code", "rfs = ReceptiveFieldView(state=state, scope='selected neurons', spacing_deg=15, dot_s=0.2)\n"
                 "rfs.run(wait=True)\nr = rfs.result.sel(polarity='on_off')\n"
                 "if truth is not None:\n"
                 "    ids = r.unit.values\n"
                 "    d = np.hypot(r.rf_az.values - truth.loc[ids, 'rf_az_deg'].values,\n"
                 "                 r.rf_el.values - truth.loc[ids, 'rf_el_deg'].values)\n"
                 "    print('median RF centre error (deg):', np.nanmedian(d))\nrfs"),
    ],
    "03_foundation_and_generalisation.ipynb": [
        ("md", "# 3 · Foundation versus individual twins, and out-of-domain generalisation\n\n"
               "The MICrONS *foundation* model learns one shared core from many mice; a new mouse only needs a small "
               "readout fitted on the frozen core. Two questions: does a twin trained on natural movies predict "
               "responses to stimuli it never saw (gratings, noise, Monet2, Trippy)? And does a foundation core "
               "beat an *individual* twin trained from scratch when a new mouse has only minutes of data?\n\n"
               "The demo twin was trained on natural-like video of the synthetic mouse, so here the true responses "
               "are known exactly. Results of the (slow) training experiments ship with the demo twin "
               "(`twin_explorer.paths.bundled('demo_twin')`)."),
        ("code", SETUP),
        ("md", "## The twin's accuracy, as shipped\nPer-unit correlation between prediction and held-out recordings "
               "(`cc_norm` corrects for the recording noise; the model card explains each number)."),
        ("code", "import json\nimport holoviews as hv\nimport pandas as pd\n"
                 "from twin_explorer.paths import bundled\n\n"
                 "DEMO_DIR = bundled('demo_twin')  # shipped with the package (assets/demo_twin in a checkout)\n"
                 "report = json.loads((DEMO_DIR / 'report.json').read_text()) if (DEMO_DIR / 'report.json').exists() "
                 "else None\n"
                 "if report is None:\n"
                 "    print('no demo twin report in', DEMO_DIR, '(train it with `twin-explorer train`)')\n"
                 "else:\n"
                 "    print('held-out natural clips, medians over units:', report['natural'])\n"
                 "    families = pd.DataFrame(report['families'])\n"
                 "    display(families)\n"
                 "cc = twin.units['cc_norm'] if 'cc_norm' in twin.units else None\n"
                 "if cc is not None:\n"
                 "    display(twin.units.groupby('area')['cc_norm'].median().rename('median cc_norm by area'))\n"
                 "    hist = hv.Histogram(np.histogram(cc.dropna(), bins=30)).opts(\n"
                 "        xlabel='cc_norm (held-out natural clips)', ylabel='units', title='Per-unit accuracy')\n"
                 "else:\n"
                 "    hist = None\nhist"),
        ("md", "## Out-of-domain generalisation, live\nShow the twin and the synthetic mouse it was trained on the "
               "same new videos (4 s each) and correlate the twin's prediction with the mouse's *noise-free* "
               "response, neuron by neuron. The first second (burn-in) is skipped."),
        ("code", "from twin_explorer.stimuli import DriftingGrating, Monet2, SparseNoise, Trippy\n"
                 "from twin_explorer.stimuli.natural import make_natural_video\n"
                 "from twin_explorer.synthetic import SyntheticMouse\n\n"
                 "spec = twin.metadata.trained_on or {}  # the synthetic mouse the twin was trained on\n"
                 "mouse = twin if twin.metadata.kind == 'synthetic' else SyntheticMouse(\n"
                 "    seed=spec.get('mouse_seed', 0), n_neurons=spec.get('n_neurons', 1000))\n"
                 "units = [int(u) for u in twin.units.index]\n"
                 "T = 120  # 4 s at 30 Hz\n"
                 "videos = {\n"
                 "    'natural (in domain)': make_natural_video(T, seed=123),\n"
                 "    'drifting grating': DriftingGrating(direction_deg=45, sf_cpd=0.04, tf_hz=2, duration_s=4).render()[:T],\n"
                 "    'sparse noise': SparseNoise(duration_s=4, seed=1).render()[:T],\n"
                 "    'Monet2': Monet2(duration_s=4, seed=1).render()[:T],\n"
                 "    'Trippy': Trippy(duration_s=4, seed=1).render()[:T],\n"
                 "}\n\n"
                 "def per_unit_cc(a, b):\n"
                 "    a = (a - a.mean(0)) / (a.std(0) + 1e-9)\n"
                 "    b = (b - b.mean(0)) / (b.std(0) + 1e-9)\n"
                 "    return (a * b).mean(0)\n\n"
                 "rows = []\n"
                 "for name, video in videos.items():\n"
                 "    pred = twin.predict(video)[30:]\n"
                 "    true = mouse.predict(video, units=units)[30:]\n"
                 "    rows.append({'stimulus': name, 'median CC vs truth': float(np.median(per_unit_cc(pred, true)))})\n"
                 "ood = pd.DataFrame(rows)\n"
                 "if mouse is twin:\n"
                 "    print('this twin IS the synthetic mouse, so every CC is 1; run with the demo twin present')\n"
                 "hv.Bars(ood, 'stimulus', 'median CC vs truth').opts(ylim=(0, 1), width=600, xrotation=20,\n"
                 "                                                    title='Twin vs ground truth on new stimuli')"),
        ("md", "## Foundation core versus individual twins\nA second synthetic mouse (other neurons). *Foundation*: "
               "the demo twin's core frozen, only a readout fitted on the new mouse's data. *From scratch*: the same "
               "architecture trained end to end on the same data. Accuracy on held-out clips against minutes of "
               "data (computed by `twin-explorer adapt`, shipped as the demo twin's `adaptation.csv`)."),
        ("code", "path = DEMO_DIR / 'adaptation.csv'\n"
                 "if path.exists():\n"
                 "    from twin_explorer.training.adapt import plot_adaptation\n"
                 "    adaptation = pd.read_csv(path)\n"
                 "    display(adaptation.pivot(index='minutes', columns='model', values='cc_norm').round(3))\n"
                 "    plot = plot_adaptation(adaptation)\n"
                 "else:\n"
                 "    print('no adaptation results yet; run `twin-explorer adapt`')\n"
                 "    plot = None\nplot"),
        ("md", "**How to read these numbers.** In domain (natural video) sets the twin's ceiling. Out of domain, a "
               "family whose CC stays close to that ceiling drives features (orientation, motion, contrast) the "
               "twin learned from natural movies; a family far below it shows where the twin extrapolates. In the "
               "adaptation table, compare the two models at the smallest amounts of data: the paper's claim is that "
               "a frozen foundation core needs only a readout and so reaches a given accuracy with fewer minutes "
               "than an individual twin trained from scratch. Check whether this small demo reproduces it."),
    ],
    "04_function_to_morphology.ipynb": [
        ("md", "# 4 · From a neuron's function to its morphology and partners\n\nModel units are linked to EM "
               "neurons by coregistration.\n\n**The anatomy here is a synthetic sample — not MICrONS data.** The "
               "volume shipped with the package is generated for the synthetic mouse: its tables mimic the MICrONS "
               "layout, but its neurons, morphologies and synapses are made up and its ids match no real EM neuron "
               "(so it has no Neuroglancer link). To use the real volume, export a folder with `twin-explorer anatomy "
               "export` and pass it here: `get_anatomy(\"microns-v1300\")`, `AnatomyView(twin, anatomy=...)` or "
               "`TWIN_EXPLORER_ANATOMY=microns-v1300`."),
        ("code", SETUP),
        ("code", "from twin_explorer.ui.anatomy import anatomy_title, get_anatomy\n\n"
                 "anat = get_anatomy()  # a folder path here opens real MICrONS anatomy\n"
                 "print('anatomy:', anatomy_title(anat))\n"
                 "pop = anat.population(twin.units)\n"
                 "with_skeleton = pop[pop.nucleus_id.isin(anat.skeleton_ids)]\n"
                 "unit = int(with_skeleton.index[0])\nprint('neuron', unit, 'has a reconstructed morphology')\n"
                 "pop.loc[unit]"),
        ("md", "## Its function: the MEI\nThe most exciting image, optimised through the twin's gradients."),
        ("code", "from twin_explorer.ui import ExplorerState, MEIView, AnatomyView\n\n"
                 "state = ExplorerState(twin, unit=unit)\nmei = MEIView(state=state, steps=30)\nmei.run(wait=True)\n"
                 "print(mei.summary.object)\nmei"),
        ("md", "## Its morphology and synaptic partners"),
        ("code", "view = AnatomyView(state=state)\npartners = view.partners.value\n"
                 "print(len(partners), 'partner connections')\nview"),
    ],
}


def build(path: Path, cells: list[tuple[str, str]]) -> None:
    nb = nbf.v4.new_notebook()
    nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src) for kind, src in cells]
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating changes only what changed
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbf.write(nb, path)


if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        build(HERE / name, cells)
        print("wrote", HERE / name)
