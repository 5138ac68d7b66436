"""``nichetune models list|show|prepare``."""

from __future__ import annotations

from .output import add_safety_flags, print_json, print_table, status


def register(sub) -> None:
    parser = sub.add_parser("models", help="list, inspect and prepare base models",
                            description="Embedded default models, local folders and (online) hub ids.")
    verbs = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    p = verbs.add_parser("list", help="list the embedded default models and their status")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_list)

    p = verbs.add_parser("show", help="show a model's path, architecture and size")
    p.add_argument("name", help="embedded name, local folder, run directory or hub id")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_safety_flags(p)
    p.set_defaults(func=run_show)

    p = verbs.add_parser("prepare", help="convert/verify a model once so later commands start fast")
    p.add_argument("name", help="embedded name, local folder or hub id (hub ids need --online)")
    p.add_argument("--force", action="store_true", help="rebuild even if a verified copy exists")
    add_safety_flags(p)
    p.set_defaults(func=run_prepare)


def run_list(args) -> int:
    from ..models.embedded import list_models

    rows = list_models()
    print_json(rows) if args.json else print_table(rows, ["name", "kind", "status", "package", "description"])
    return 0


def _has_chat_template(folder) -> bool:
    if (folder / "chat_template.jinja").exists():
        return True
    config = folder / "tokenizer_config.json"
    return config.exists() and '"chat_template"' in config.read_text()


def describe(reference: str, allow_pickle: bool = False, trust_remote_code: bool = False) -> dict:
    from ..hashing import read_manifest
    from ..models.resolve import resolve_model
    from ..models.safety import count_parameters

    resolved = resolve_model(reference, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    cfg = resolved.config
    manifest = read_manifest(resolved.path) or {}
    size = sum(p.stat().st_size for p in resolved.path.iterdir() if p.is_file())
    return {
        "reference": reference, "source": resolved.source, "path": str(resolved.path),
        "architectures": resolved.architectures, "model_type": cfg.get("model_type"),
        "layers": cfg.get("num_hidden_layers"), "hidden_size": cfg.get("hidden_size"),
        "vocab_size": cfg.get("vocab_size"),
        "max_positions": cfg.get("max_position_embeddings"),
        "parameters": count_parameters(resolved.path), "size_mb": round(size / 1e6, 1),
        "has_chat_template": _has_chat_template(resolved.path),
        "manifest_files": len(manifest.get("files", {})),
    }


def run_show(args) -> int:
    info = describe(args.name, args.allow_pickle, args.trust_remote_code)
    if args.json:
        print_json(info)
    else:
        for key, value in info.items():
            print(f"{key:>18}: {value}")
    return 0


def run_prepare(args) -> int:
    from ..models.embedded import EMBEDDED
    from ..models.prepare import prepare_model
    from ..models.resolve import resolve_model

    with status(f"preparing {args.name}"):
        if args.name in EMBEDDED:
            path = prepare_model(args.name, force=args.force)
        else:
            path = resolve_model(args.name, allow_pickle=args.allow_pickle,
                                 trust_remote_code=args.trust_remote_code).path
    print(path)
    return 0
