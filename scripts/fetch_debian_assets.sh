#!/usr/bin/env bash
# Unpacks Debian data packages nichetune reads (dict-foldoc) into the nichetune cache,
# without root, unless the package is already installed system-wide.
set -euo pipefail
cache="${NICHETUNE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nichetune}"
dest="$cache/debian"
if [ -f /usr/share/dictd/foldoc.dict.dz ] || [ -f "$dest/usr/share/dictd/foldoc.dict.dz" ]; then
  exit 0
fi
mkdir -p "$dest" && tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
if ! apt-get download dict-foldoc >/dev/null 2>&1; then
  echo "apt-get download failed; refreshing package lists (needs root)" >&2
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get download dict-foldoc >/dev/null 2>&1 || {
    echo "error: could not fetch Debian package dict-foldoc. Install it with: sudo apt-get install dict-foldoc" >&2
    exit 1
  }
fi
dpkg-deb -x dict-foldoc_*.deb "$dest"
echo "dict-foldoc unpacked into $dest"
