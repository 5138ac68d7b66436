"""Demo part 3: ship. Export the drug-review classifier (merged, ONNX, int8 ONNX) and the FOLDOC model (merged,
int8, GGUF), each checked for parity with its run; register them, alias a champion, promote a second version and
roll it back; write model cards. The demo's registry is its own: rebuilt on every run.

The int8 form is the one ``export``'s deploy plan picks for the model (onnxruntime's for an encoder classifier,
torchao's for a decoder), and a format this CPU lacks the kernels for is left out with the reason, as ``eval``'s
latency table does: torchao's int8 on a CPU without int8 dot-product instructions runs a reference kernel, and the
FOLDOC model's parity took 200 s of a 19-minute quick demo there (5.2 s a request) to show a format nobody should
serve on that machine."""

from __future__ import annotations

import shutil
from pathlib import Path

from .steps import SKIPPED, Steps

STEPS = 3
DRUG = ("drug-reviews-recommended", "classification", ("merged", "onnx", "int8"))
JARGON = ("foldoc-sft-lora", "causal", ("merged", "int8", "gguf"))


def formats_here(head: str, wanted: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
    """``(formats to make, {format left out: why})`` for a model with ``head``: ``int8`` becomes the first of the
    export plan's int8 forms that holds the head, and a format this machine cannot run fast is left out."""
    from ..export.plan import INT8_ORDER
    from ..export.registry import FORMATS

    made, left_out = [], {}
    for name in wanted:
        if name == "int8":
            name = next(n for n in INT8_ORDER if head in FORMATS[n].heads)
        if why := FORMATS[name].slow_here():
            left_out[name] = why
        else:
            made.append(name)
    return tuple(made), left_out


def _int8(exports: dict) -> str:
    """The int8 format among a model's formats (or its exports, keyed by format)."""
    return next(f for f in exports if "int8" in f)


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
        onnx, int8 = drug["onnx"], drug[_int8(drug)]
        registry.set_alias("drug-reviews@1", "champion",
                           why=f"ONNX export: parity passed, {onnx['p50_ms']:.0f} ms a review (p50)")
        registry.register(int8["path"], "drug-reviews")
        registry.set_alias("drug-reviews@2", "champion",
                           why=f"promote the int8 export: {int8['disk_mb']:.0f} MB against {onnx['disk_mb']:.0f} MB")
        registry.rollback("drug-reviews", "champion",
                          why=f"roll back: the ONNX export gives the evaluated run's own logits (largest difference "
                              f"{onnx['max_logit_diff']:.0e}, int8's {int8['max_logit_diff']:.0e})")
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

    def export_step(what: str, run_dir: Path, formats: tuple[str, ...], left_out: dict, needed, rows: int | None):
        def export():
            for name, why in left_out.items():
                steps.say(f"  no {name} export on this machine: {why}")
            return _export_all(run_dir, formats, folder, fresh=fresh, rows=rows, tolerance=tolerance, say=steps.say)

        exports = steps.run(f"export {what}: {', '.join(formats)}, each checked for parity", export, needs=(needed,),
                            command=commands(run_dir, formats) + (f" --rows {rows}" if rows else ""))
        return exports

    drug_formats, drug_left_out = formats_here(*DRUG[1:])
    jar_formats, jar_left_out = formats_here(*JARGON[1:])
    drug = export_step("the recommended classifier", drug_run, drug_formats, drug_left_out, drug_needed, None)
    jar = export_step("the FOLDOC model (greedy answers compared too)", jargon_run, jar_formats, jar_left_out,
                      jargon_needed, budget.parity_rows)
    reg = out / "registry"
    registry = steps.run(
        "register both, alias champion, promote a second version and roll it back; model cards",
        lambda: _registry(out, drug, jar, steps.say), needs=(drug, jar),
        command=" && ".join([
            f"nichetune registry register {folder / f'{DRUG[0]}-onnx'} --name drug-reviews --root {reg}",
            f"nichetune registry alias drug-reviews@1 champion --root {reg}",
            f"nichetune registry register {folder / f'{DRUG[0]}-{_int8(drug_formats)}'} --name drug-reviews "
            f"--root {reg}",
            f"nichetune registry promote drug-reviews@2 --root {reg}",
            f"nichetune registry rollback drug-reviews --root {reg}",
            f"nichetune registry history drug-reviews --root {reg}",
            f"nichetune registry card drug-reviews@champion --html --root {reg}"]))
    return {"exports": {"drug-reviews": drug, "foldoc": jar}, "registry": registry,
            "left_out": {"drug-reviews": drug_left_out, "foldoc": jar_left_out}}
