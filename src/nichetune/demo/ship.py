"""Demo part 3: ship. Export the drug-review classifier (merged, int8, ONNX) and the FOLDOC model (merged,
int8, GGUF), each checked for parity with its run; register them, alias a champion, promote a second version and
roll it back; write model cards. The demo's registry is its own: rebuilt on every run."""

from __future__ import annotations

import shutil
from pathlib import Path

from .steps import SKIPPED, Steps

STEPS = 3
DRUG = ("drug-reviews-recommended", ("merged", "int8", "onnx"))
JARGON = ("foldoc-sft-lora", ("merged", "int8", "gguf"))


def _export_or_reuse(run_dir: Path, fmt: str, out: Path, *, fresh: bool, rows: int | None, tolerance: float,
                     say) -> dict:
    """An export of ``run_dir``, reused when ``out`` holds one of this very run (its manifest's sha256)."""
    from ..errors import NichetuneError
    from ..export.export import export_run, read_export
    from ..hashing import sha256_file
    from ..run.paths import RunPaths

    if not fresh and out.is_dir():
        try:
            manifest = read_export(out)
            if manifest["source"]["run_manifest_sha256"] == sha256_file(RunPaths(run_dir).manifest) \
                    and manifest["format"] == fmt:
                say(f"  reusing {out} (exported from this run; --fresh exports again)")
                return manifest
        except NichetuneError:
            pass
    return export_run(run_dir, fmt, out, rows=rows, tolerance=tolerance, force=True, progress=None)


def _export_all(run_dir: Path, formats: tuple[str, ...], folder: Path, *, fresh: bool, rows: int | None,
                tolerance: float, say) -> dict:
    from ..errors import NichetuneError

    exports = {}
    for fmt in formats:
        out = folder / f"{run_dir.name}-{fmt}"
        manifest = _export_or_reuse(run_dir, fmt, out, fresh=fresh, rows=rows, tolerance=tolerance, say=say)
        p = manifest["parity"]
        say(f"  {fmt}: parity {p['status']}, {p['metric']} {p['export']:.4f} ({100 * p['change']:+.2f} points, "
            f"95% CI {100 * p['ci_low']:+.2f} to {100 * p['ci_high']:+.2f}), max logit difference "
            f"{p['max_logit_diff']:.1e}, {p['disk_mb']:.0f} MB, p50 {p['p50_ms']:.1f} ms")
        exports[fmt] = {"path": str(out), **p}
    failed = [f for f, p in exports.items() if p["status"] != "passed"]
    if failed:
        raise NichetuneError(f"exports failed parity: {', '.join(failed)} (reports in {folder})",
                             hint="a failed export is kept for inspection and never registered")
    return exports


def _registry(out: Path, drug: dict, jargon: dict, say) -> dict:
    from ..atomic import atomic_write_text
    from ..registry import Registry
    from ..registry.card import card_html, card_markdown

    root = out / "registry"
    if root.exists():
        shutil.rmtree(root)  # the demo's own registry, rebuilt so its history reads the same every run
    registry = Registry(root)
    try:
        registry.register(drug["onnx"]["path"], "drug-reviews",
                          note="Sort drug reviews into negative, neutral and positive for pharmacovigilance triage; "
                               "a person reads every negative review.")
        registry.set_alias("drug-reviews@1", "champion", why="ONNX export: parity passed, fastest on CPU")
        registry.register(drug["int8"]["path"], "drug-reviews")
        registry.set_alias("drug-reviews@2", "champion", why="promote the int8 export: smaller")
        registry.rollback("drug-reviews", "champion", why="roll back: the ONNX export is faster on this CPU")
        registry.register(jargon["merged"]["path"], "foldoc-jargon",
                          note="Explain computing terms in FOLDOC's style; answers can invent facts, so a person "
                               "checks them.")
        registry.set_alias("foldoc-jargon@1", "champion", why="first release")
        cards = {}
        for ref in ("drug-reviews@champion", "foldoc-jargon@champion"):
            row = registry.resolve(ref)
            base = out / "cards" / f"{row['name']}-{row['version']}"
            atomic_write_text(base.with_suffix(".md"), card_markdown(row))
            atomic_write_text(base.with_suffix(".html"), card_html(row))
            cards[ref] = str(base.with_suffix(".html"))
            problems = registry.verify(ref)
            say(f"  {ref} = {row['name']}@{row['version']} ({row['kind']} {row['format']}), "
                f"sha256 {'verified' if not problems else 'FAILED: ' + '; '.join(problems)}; card {cards[ref]}")
        history = registry.history("drug-reviews")
        for e in history:
            say(f"  history: champion {e['from_version'] or '-'} -> {e['to_version']} ({e['action']}): {e['why']}")
        return {"root": str(root), "cards": cards, "history": history, "models": registry.list()}
    finally:
        registry.close()


def run_ship(steps: Steps, out: Path, budget, medical: dict, jargon: dict, *, fresh: bool) -> dict:
    folder = out / "exports"
    drug_run, jargon_run = out / "runs" / DRUG[0], out / "runs" / JARGON[0]
    drug_needed = medical.get("runs", {}).get(DRUG[0], SKIPPED)
    jargon_needed = jargon.get("runs", {}).get(JARGON[0], SKIPPED)

    tolerance = budget.parity_tolerance
    flag = f" --tolerance {tolerance:g}" if tolerance != 0.5 else ""

    def commands(run_dir: Path, formats) -> str:
        return " && ".join(f"nichetune export {run_dir} --to {f} --out {folder / f'{run_dir.name}-{f}'}{flag}"
                           for f in formats)

    drug = steps.run("export the recommended classifier: merged, int8 and ONNX, each checked for parity",
                     lambda: _export_all(drug_run, DRUG[1], folder, fresh=fresh, rows=None, tolerance=tolerance,
                                                 say=steps.say),
                     needs=(drug_needed,), command=commands(drug_run, DRUG[1]))
    rows = budget.parity_rows
    jar = steps.run("export the FOLDOC model: merged, int8 and GGUF, each checked for parity (and greedy answers)",
                    lambda: _export_all(jargon_run, JARGON[1], folder, fresh=fresh, rows=rows, tolerance=tolerance,
                                               say=steps.say),
                    needs=(jargon_needed,), command=commands(jargon_run, JARGON[1]) + f" --rows {rows}")
    reg = out / "registry"
    registry = steps.run(
        "register both, alias champion, promote a second version and roll it back; model cards",
        lambda: _registry(out, drug, jar, steps.say), needs=(drug, jar),
        command=" && ".join([
            f"nichetune registry register {folder / f'{DRUG[0]}-onnx'} --name drug-reviews --root {reg}",
            f"nichetune registry alias drug-reviews@1 champion --root {reg}",
            f"nichetune registry register {folder / f'{DRUG[0]}-int8'} --name drug-reviews --root {reg}",
            f"nichetune registry promote drug-reviews@2 --root {reg}",
            f"nichetune registry rollback drug-reviews --root {reg}",
            f"nichetune registry history drug-reviews --root {reg}",
            f"nichetune registry card drug-reviews@champion --html --root {reg}"]))
    return {"exports": {"drug-reviews": drug, "foldoc": jar}, "registry": registry}
