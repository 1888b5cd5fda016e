#!/usr/bin/env bash
# Set up .venv with the docs extra, then build the documentation site into site/ (strict:
# a broken link, a missing reference or a failing example fails the build), or serve it.
# Usage: scripts/docs.sh [build|serve] [mkdocs options]
# The built site opens offline, from file:// too (site/index.html).
set -euo pipefail
cd "$(dirname "$0")/.."
command="${1:-build}"
[ $# -gt 0 ] && shift
case "$command" in
    build | serve) ;;
    *) echo "usage: scripts/docs.sh [build|serve] [mkdocs options]" >&2; exit 2 ;;
esac
scripts/setup.sh lab,docs
# Material for MkDocs and a plugin each print a banner about MkDocs 2.0; the docs extra pins
# mkdocs<2, so the banners say nothing about this build.
export NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true
exec .venv/bin/mkdocs "$command" --strict "$@"
