"""``nichetune classify MODEL_OR_RUN "text"``: label probabilities for a quick check."""

from __future__ import annotations

from .output import add_safety_flags, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "classify", help="classify texts with a trained classifier or zero-shot with --labels",
        description="A model or run with a classification head uses its own labels; an evaluated classifier run "
        "answers with temperature-scaled probabilities, its conformal prediction set and whether to abstain. "
        "A base causal LM scores each --labels entry by likelihood; a bare encoder compares embeddings.")
    p.add_argument("model", help="run directory, model folder, embedded name or hub id")
    p.add_argument("texts", nargs="+", help="one or more texts")
    p.add_argument("--labels", help="comma-separated candidate labels (needed for base models)")
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-calibrate", action="store_true",
                   help="causal LMs: use raw label likelihoods, without removing the label prior")
    p.add_argument("--log", metavar="LOG", help="append each answer to a prediction log (SQLite file or database "
                                                "URL), as the server does, for `nichetune monitor`")
    p.add_argument("--log-pii", choices=["mask", "keep"], default="mask", help="mask PII in logged texts (default)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_safety_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..infer.classify import classify

    labels = [s.strip() for s in args.labels.split(",") if s.strip()] if args.labels else None
    import time

    started = time.perf_counter()
    preds = classify(args.model, args.texts, labels=labels, dtype=args.dtype, device=args.device,
                     calibrate=not args.no_calibrate,
                     allow_pickle=args.allow_pickle, trust_remote_code=args.trust_remote_code)
    if args.log:
        _log(args, preds, 1000 * (time.perf_counter() - started))
    if args.json:
        print_json([{"text": t, "label": p.label, "scores": p.scores, "method": p.method,
                     "prediction_set": p.prediction_set, "abstain": p.abstain, "abstain_reason": p.abstain_reason}
                    for t, p in zip(args.texts, preds, strict=True)])
        return 0
    for text, pred in zip(args.texts, preds, strict=True):
        shown = text if len(text) <= 70 else text[:67] + "..."
        scores = "  ".join(f"{k}={v:.3f}" for k, v in pred.scores.items())
        judged = "" if pred.prediction_set is None else (
            f"\tset={{{','.join(pred.prediction_set)}}}" + ("\tABSTAIN" if pred.abstain else ""))
        print(f"{pred.label}\t{scores}{judged}\t[{pred.method}]\t{shown}")
    return 0


def _log(args, preds, latency_ms: float) -> None:
    import uuid
    from pathlib import Path

    from ..prediction_log import PredictionLog

    log = PredictionLog(args.log, mask_pii=args.log_pii == "mask")
    items = [{"text": t, "label": p.label, "confidence": p.scores[p.label], "probabilities": p.scores,
              "prediction_set": p.prediction_set, "abstain": p.abstain, "version": f"cli:{Path(args.model).name}"}
             for t, p in zip(args.texts, preds, strict=True)]
    log.write(request_id=uuid.uuid4().hex, model=Path(args.model).name, route="cli:classify", status=200,
              latency_ms=latency_ms, request={"input": args.texts}, response=[{"label": p.label} for p in preds],
              items=items)
    log.close()
