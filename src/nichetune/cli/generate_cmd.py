"""``nichetune generate MODEL "prompt"``: stream a chat reply for a quick check."""

from __future__ import annotations

from .output import add_safety_flags


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate a reply from a causal LM (chat template applied, streamed)",
                       description="Generate a reply to PROMPT. Decoding is greedy unless --temperature > 0.")
    p.add_argument("model", help="embedded name, local folder, run directory or hub id")
    p.add_argument("prompt", help="the user message")
    p.add_argument("--system", help="an optional system message")
    p.add_argument("--max-new-tokens", type=int, default=200, help="default: 200")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (with --temperature)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="auto = bf16 where the hardware is fast at it, else fp32")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--no-chat-template", action="store_true", help="send the prompt as raw text")
    add_safety_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..infer.generate import generate, print_stream

    generate(args.model, args.prompt, system=args.system, max_new_tokens=args.max_new_tokens,
             temperature=args.temperature, top_p=args.top_p, seed=args.seed, dtype=args.dtype,
             device=args.device, use_template=not args.no_chat_template, on_text=print_stream,
             allow_pickle=args.allow_pickle, trust_remote_code=args.trust_remote_code)
    print()
    return 0
