#!/usr/bin/env bash
# Run tests/agent/genai against the oldest supported SDK generations (openai 1.x, mistralai 1.x)
# in a throw-away virtualenv. The package is built from a copy of the tree, so nothing is written
# into the work tree. Override the versions with OPENAI_SPEC / MISTRAL_SPEC, e.g.
#   OPENAI_SPEC='openai==1.40.0' MISTRAL_SPEC='mistralai==1.0.0' scripts/test_sdk_matrix.sh
# Extra arguments go to pytest.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
openai_spec=${OPENAI_SPEC:-"openai>=1.40,<2"}
mistral_spec=${MISTRAL_SPEC:-"mistralai>=1.0,<2"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$openai_spec" "$mistral_spec" \
  "opentelemetry-sdk>=1.27" "opentelemetry-instrumentation>=0.48b0" \
  pytest pytest-asyncio pytest-timeout

mkdir "$work/src"
tar -C "$root" --exclude=__pycache__ -cf - pyproject.toml README.md agent exporters tests \
  | tar -C "$work/src" -xf -
# with its core dependencies (tests/agent/genai/test_counted_once.py runs the real accounting); the
# SDK pins above stay, since the SDKs are extras, not core dependencies
"$work/venv/bin/pip" install -q "$work/src"

"$work/venv/bin/pip" list 2>/dev/null | grep -Ei '^(openai|mistralai|httpx) '
cd "$work/src"
"$work/venv/bin/python" -m pytest -q tests/agent/genai "$@"
