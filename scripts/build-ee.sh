#!/usr/bin/env bash
# Make the build context of the execution environment (execution-environment.yml) for AWX:
#   1. the intagent wheel and the collection tarball into OUT/dist/,
#   2. the requirement lists naming exactly those files into OUT/build/ee-requirements/,
#   3. `ansible-builder create` into OUT/build/ee/ (Containerfile and _build/).
# OUT is the checkout unless given (scripts/build-ee.sh [OUT]); for another OUT, execution-environment.yml
# is copied there, since ansible-builder finds the files it names relative to it. Prints the context's
# path. Building the image needs podman or docker, which this script does not: it prints how.
# Needs the venv (./scripts/setup.sh).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$REPO/.venv/bin"
for tool in pip intagent ansible-builder; do
    [ -x "$BIN/$tool" ] || { echo "build-ee: $BIN/$tool is missing: run ./scripts/setup.sh first" >&2; exit 1; }
done
mkdir -p "${1:-$REPO}"
OUT="$(cd "${1:-$REPO}" && pwd)"
DIST="$OUT/dist"
REQS="$OUT/build/ee-requirements"
CONTEXT="$OUT/build/ee"

# Only this build's files may reach the context (additional_build_files globs dist/).
mkdir -p "$DIST" "$REQS"
rm -f "$DIST"/intagent-*.whl "$DIST"/intagent-integrations-*.tar.gz
rm -rf "$CONTEXT"

# The wheel, built in a scratch directory (DIST_EXTRA_CONFIG: setuptools' build/ and egg-info there), so
# nothing left from an earlier build ships in it and the checkout is not written to.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
printf '[build]\nbuild_base = %s/build\n[egg_info]\negg_base = %s\n' "$scratch" "$scratch" >"$scratch/setup.cfg"
(cd "$REPO" && DIST_EXTRA_CONFIG="$scratch/setup.cfg" \
    "$BIN/pip" wheel --no-deps --disable-pip-version-check -q -w "$DIST" .)
wheels=("$DIST"/intagent-*-py3-none-any.whl)
[ ${#wheels[@]} -eq 1 ] && [ -f "${wheels[0]}" ] || { echo "build-ee: no single intagent wheel in $DIST" >&2; exit 1; }
wheel="$(basename "${wheels[0]}")"

tarball="$(cd "$REPO" && "$BIN/intagent" collection build --out "$DIST")"
tarball="$(basename "$tarball")"

# Where execution-environment.yml puts them: the wheel at /output/dist/ in the builder and final stages,
# the tarball at dist/ below the galaxy stage's working directory (/build).
cat >"$REQS/requirements.txt" <<EOF
# Written by scripts/build-ee.sh: intagent from the wheel in the build context, with the extra generate
# (openai, ansible-lint) so that generated playbooks work in the image too.
intagent[generate] @ file:///output/dist/$wheel
EOF
cat >"$REQS/requirements.yml" <<EOF
---
# Written by scripts/build-ee.sh: the collection from the tarball in the build context.
collections:
  - name: dist/$tarball
    type: file
EOF

if [ "$OUT" != "$REPO" ]; then
    cp "$REPO/execution-environment.yml" "$OUT/execution-environment.yml"
fi
(cd "$OUT" && "$BIN/ansible-builder" create -f execution-environment.yml --context "$CONTEXT" \
    --output-filename Containerfile) >&2
for f in "_build/dist/$wheel" "_build/dist/$tarball" _build/requirements.txt _build/requirements.yml Containerfile; do
    [ -f "$CONTEXT/$f" ] || { echo "build-ee: $CONTEXT/$f is missing from the build context" >&2; exit 1; }
done

version="${wheel#intagent-}"
version="${version%%-*}"
cat >&2 <<EOF
build-ee: build context ready in $CONTEXT
build-ee: build the image on a machine with podman (or docker, same arguments):
  podman build -f $CONTEXT/Containerfile -t intagent-ee:$version $CONTEXT
build-ee: or let ansible-builder make the context again and build it:
  cd $OUT && $BIN/ansible-builder build -f execution-environment.yml --context build/ee -t intagent-ee:$version
EOF
echo "$CONTEXT"
