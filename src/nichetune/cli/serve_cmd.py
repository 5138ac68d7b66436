"""``nichetune serve TARGET... [--host 127.0.0.1 --port 8000 --api-keys FILE]``: the OpenAI-compatible server."""

from __future__ import annotations

import sys

DESCRIPTION = (
    "Serve runs, exports and registry versions over HTTP: /v1/chat/completions (SSE streaming), /v1/completions, "
    "/v1/models, /v1/embeddings (encoders) and /v1/classify (temperature-scaled probabilities, the conformal "
    "prediction set, abstain). TARGET is a run directory, an export folder, a registry NAME@ALIAS or a model, "
    "optionally named NAME=TARGET; adapter runs on the same base share one copy of it. Every route but /health "
    "needs a key from --api-keys (create one with `nichetune keys create FILE --name NAME`). Under a process "
    "manager (systemd, supervisord, a container), run this command in the foreground: it stops gracefully on "
    "SIGTERM, letting running requests finish.")


def register(sub) -> None:
    from ..serve.config import ServeConfig

    d = ServeConfig.model_fields
    p = sub.add_parser("serve", help="serve models over an OpenAI-compatible HTTP API with API keys",
                       description=DESCRIPTION)
    p.add_argument("targets", nargs="+", metavar="TARGET", help="[NAME=]run dir | export folder | NAME@ALIAS | model")
    p.add_argument("--api-keys", required=True, help="key file written by `nichetune keys create`")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    p.add_argument("--public", action="store_true", help="allow a --host beyond loopback")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="server processes (each loads its own models)")
    p.add_argument("--registry", help="registry folder for NAME@ALIAS targets (default $NICHETUNE_REGISTRY or "
                                      "./registry)")
    p.add_argument("--memory-budget-mb", type=int, default=None,
                   help="parameter memory for loaded models; idle ones are evicted least-recently-used "
                        "(default: half the machine's memory)")
    p.add_argument("--concurrency", type=int, default=d["concurrency"].default,
                   help="model requests at once; more get 429 (default %(default)s)")
    p.add_argument("--timeout", type=float, default=d["timeout_s"].default, help="seconds per request (504)")
    p.add_argument("--max-tokens", type=int, default=d["max_tokens"].default, help="cap on max_tokens (422)")
    p.add_argument("--max-body-bytes", type=int, default=d["max_body_bytes"].default, help="body cap (413)")
    p.add_argument("--max-inputs", type=int, default=d["max_inputs"].default, help="texts per classify/embeddings")
    p.add_argument("--batch-size", type=int, default=d["batch_size"].default, help="texts per micro-batch")
    p.add_argument("--batch-streams", type=int, default=d["max_streams_per_batch"].default,
                   help="sequences decoded together per generate call (default %(default)s)")
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16"], default="auto",
                   help="generators' dtype (auto: bf16 where the CPU has it); classifiers run in fp32")
    p.add_argument("--runtime", choices=["auto", "torch", "onnx"], default="auto",
                   help="classifiers loaded alone run in onnxruntime when it matches torch on probe texts (auto, "
                        "onnx), or in torch")
    p.add_argument("--prediction-log", default=d["prediction_log"].default,
                   help="SQLite file or SQLAlchemy URL for requests and answers (default %(default)s)")
    p.add_argument("--no-prediction-log", action="store_true", help="log no requests or answers")
    p.add_argument("--log-pii", choices=["mask", "keep"], default="mask",
                   help="mask PII in logged texts (default) or keep them as sent")
    p.add_argument("--index", action="append", default=[], metavar="NAME=DIR",
                   help="a retrieval index (nichetune index build) chat requests can name in 'retrieval'")
    p.add_argument("--retrieve", action="append", default=[], metavar="MODEL=INDEX",
                   help="answer MODEL's chat requests from the index named INDEX (an --index) unless a request names "
                        "its own")
    p.add_argument("--experiment", action="append", default=[], metavar="NAME=ARM:WEIGHT,ARM:WEIGHT",
                   help="an A/B test: classify requests to NAME are answered by one of the arms (served classifiers), "
                        "assigned by a sticky hash of the request's 'user' (add ',salt=S' to reshuffle)")
    p.add_argument("--shadow", action="append", default=[], metavar="MODEL=CHALLENGER",
                   help="CHALLENGER classifies MODEL's texts in the background; its answers are logged, never "
                        "returned")
    p.add_argument("--preload", action="store_true", help="load every target at startup, not on first use")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..serve.app import check_host, serve
    from ..serve.config import ServeConfig

    values = dict(targets=args.targets, api_keys=args.api_keys, registry=args.registry, host=args.host,
                  port=args.port, workers=args.workers, concurrency=args.concurrency, timeout_s=args.timeout,
                  max_tokens=args.max_tokens, max_body_bytes=args.max_body_bytes, max_inputs=args.max_inputs,
                  batch_size=args.batch_size, max_streams_per_batch=args.batch_streams, dtype=args.dtype,
                  runtime=args.runtime, log_pii=args.log_pii, preload=args.preload,
                  prediction_log=None if args.no_prediction_log else args.prediction_log)
    values["indexes"] = _pairs("--index", args.index, "NAME=DIR", "--index foldoc=foldoc-index")
    values["retrieve"] = _pairs("--retrieve", args.retrieve, "MODEL=INDEX", "--retrieve jargon=foldoc")
    values["shadows"] = _pairs("--shadow", args.shadow, "MODEL=CHALLENGER", "--shadow reviews=reviews-v2")
    values["experiments"] = dict(_experiment(spec) for spec in args.experiment)
    if args.memory_budget_mb is not None:
        values["memory_budget_mb"] = args.memory_budget_mb
    config = ServeConfig(**values)
    check_host(config, args.public)
    print(f"nichetune serving {len(config.targets)} target(s) on http://{config.host}:{config.port}/v1 "
          "(Ctrl-C stops)", file=sys.stderr)
    serve(config)
    return 0


def _pairs(flag: str, specs: list[str], shape: str, example: str) -> dict[str, str]:
    from ..errors import NichetuneError

    bad = [spec for spec in specs if "=" not in spec]
    if bad:
        raise NichetuneError(f"{flag} {bad[0]}: give {shape}", hint=f"e.g. {example}")
    return dict(spec.split("=", 1) for spec in specs)


def _experiment(spec: str):
    from ..errors import NichetuneError
    from ..serve.experiments import parse_experiment

    try:
        return parse_experiment(spec)
    except ValueError as exc:
        raise NichetuneError(str(exc).splitlines()[0], hint="e.g. --experiment reviews=champion:0.5,challenger:0.5") \
            from exc
