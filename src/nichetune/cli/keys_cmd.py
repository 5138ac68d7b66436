"""``nichetune keys create | list | revoke FILE``: the API keys a server accepts, stored hashed."""

from __future__ import annotations

import sys

from .output import print_table


def register(sub) -> None:
    p = sub.add_parser("keys", help="create, list and revoke the server's API keys",
                       description="A key is shown once, when it is created; the file keeps only its sha256, so a "
                                   "lost key is revoked and replaced, never recovered. Keys with --admin may also "
                                   "use the /admin routes.")
    verbs = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    c = verbs.add_parser("create", help="add a key and print it once")
    c.add_argument("file", help="the key file (created if missing, mode 600)")
    c.add_argument("--name", required=True, help="who or what uses the key")
    c.add_argument("--admin", action="store_true", help="may load and unload models through /admin")
    c.set_defaults(func=create)
    ls = verbs.add_parser("list", help="names, rights and creation dates (never the keys)")
    ls.add_argument("file")
    ls.set_defaults(func=list_)
    r = verbs.add_parser("revoke", help="remove a key; a running server must be restarted to forget it")
    r.add_argument("file")
    r.add_argument("name")
    r.set_defaults(func=revoke)


def create(args) -> int:
    from ..serve.keys import create_key

    key = create_key(args.file, args.name, admin=args.admin)
    print(key)
    print(f"key {args.name!r} added to {args.file}; it is shown only now", file=sys.stderr)
    return 0


def list_(args) -> int:
    from ..serve.keys import list_keys

    print_table([{"name": k.name, "admin": k.admin, "created": k.created} for k in list_keys(args.file)],
                ["name", "admin", "created"])
    return 0


def revoke(args) -> int:
    from ..serve.keys import revoke_key

    revoke_key(args.file, args.name)
    print(f"key {args.name!r} revoked in {args.file}", file=sys.stderr)
    return 0
