"""Zero-shot with worded labels against bare label names, on the few-shot benchmark's samples.

    .venv/bin/python benchmarks/zero_shot_wording.py --datasets drug-reviews --seeds 0 1 2 3 4 5 6 7 8
    .venv/bin/python benchmarks/zero_shot_wording.py --datasets bbc-news --seeds 0 1

For each sample `few_shot.py` draws (k rows a label for training, 300 other rows for test), MiniLM classifies the test
rows by embedding similarity to each label's sentence: the bare name, and the template `infer.label_wording` chooses
on the training rows. Beside them, the few-shot fits' test macro-F1 from `results/few-shot-*.json` where that sample
was run (nichetune's recommended few-shot path and SetFit-style, on the same rows). No training: a sample costs
embedding its rows, seconds. Results: benchmarks/results/zero-shot-wording.json (and .md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from few_shot import draw  # this folder is on sys.path

from nichetune.quiet import quiet_libraries

HERE = Path(__file__).resolve().parent
FEW_SHOT_RESULTS = ("few-shot-recommended.json", "few-shot-recommended-more.json", "few-shot-bbc.json")


def _fits() -> dict[tuple[str, int], dict]:
    """The few-shot fits' test macro-F1 per (dataset, seed), from the recommended recipe's result files."""
    out = {}
    for name in FEW_SHOT_RESULTS:
        path = HERE / "results" / name
        for r in json.loads(path.read_text()) if path.exists() else []:
            out[(r["dataset"], r["seed"])] = {"nichetune few-shot": r["nichetune"]["macro_f1"]["value"],
                                              "SetFit-style": r["setfit-style"]["macro_f1"]["value"]}
    return out


def run_sample(name: str, k: int, seed: int, embed) -> dict:
    from nichetune.infer.label_wording import choose_wording, similarity_logits, worded
    from nichetune.stats.classification import classification_metrics

    rows = draw(name, k, seed)
    labels = sorted({r["label"] for part in rows.values() for r in part})
    y = np.array([labels.index(r["label"]) for r in rows["test"]])
    texts = embed([r["text"] for r in rows["test"]])
    wording = choose_wording(embed, rows["train"], labels)
    out = {"dataset": name, "seed": seed, "k": k, "template": wording.template, "train_scores": wording.scores}
    for key, template in (("bare names", "{}"), ("worded", wording.template)):
        pred = similarity_logits(texts, embed(list(worded(labels, template).values()))).argmax(1)
        m = classification_metrics(y, pred, labels)
        out[key] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
    return out


def markdown(results: list[dict], fits: dict) -> str:
    lines = ["| sample | chosen wording | bare names | worded | nichetune few-shot | SetFit-style |",
             "|---|---|---|---|---|---|"]
    for r in results:
        f = fits.get((r["dataset"], r["seed"]), {})
        cells = [f"{r[key]['macro_f1']:.3f}" for key in ("bare names", "worded")]
        cells += [f"{f[key]:.3f}" if key in f else "" for key in ("nichetune few-shot", "SetFit-style")]
        lines.append(f"| {r['dataset']} seed {r['seed']} | `{r['template']}` | " + " | ".join(cells) + " |")
    for name in sorted({r["dataset"] for r in results}):
        mine = [r for r in results if r["dataset"] == name]
        both = [fits[(name, r["seed"])] for r in mine if (name, r["seed"]) in fits]
        cells = [f"{np.mean([r[key]['macro_f1'] for r in mine]):.3f}" for key in ("bare names", "worded")]
        cells += [f"{np.mean([f[key] for f in both]):.3f}" if len(both) == len(mine) else ""
                  for key in ("nichetune few-shot", "SetFit-style")]
        lines.append(f"| {name} mean ({len(mine)} samples) | | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    quiet_libraries()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["drug-reviews", "bbc-news"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--out", default=str(HERE / "results" / "zero-shot-wording.json"))
    args = p.parse_args()
    from nichetune.infer.classify import sentence_vectors
    from nichetune.models.loading import load_encoder

    model, tokenizer = load_encoder(args.model)

    def embed(texts: list[str]) -> np.ndarray:
        return sentence_vectors(model, tokenizer, texts)[0]

    results = []
    for name in args.datasets:
        for seed in args.seeds:
            results.append(run_sample(name, args.k, seed, embed))
            r = results[-1]
            print(f"{name} seed {seed}: '{r['template']}' macro-F1 {r['worded']['macro_f1']:.3f}, "
                  f"bare names {r['bare names']['macro_f1']:.3f}", flush=True)
    out = Path(args.out)
    out.write_text(json.dumps(results, indent=1) + "\n")
    table = markdown(results, _fits())
    out.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
