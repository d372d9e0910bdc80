"""taskc opens no connection except to configured endpoints: local-model libraries are told not
to phone home before they are imported."""

import os
import subprocess
import sys


def test_local_backends_turn_off_telemetry_and_hub_lookups():
    code = ("import os; from taskc.backends.offline import quiet_local_libraries, QUIET_ENV; quiet_local_libraries(); "
            "print(all(os.environ[k] == v for k, v in QUIET_ENV.items() if k != 'DO_NOT_TRACK'))")
    env = {k: v for k, v in os.environ.items() if k not in ("VLLM_NO_USAGE_STATS", "HF_HUB_OFFLINE",
                                                             "HF_HUB_DISABLE_TELEMETRY", "TRANSFORMERS_OFFLINE")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "True"


def test_a_users_own_setting_wins(monkeypatch):
    from taskc.backends.offline import quiet_local_libraries

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    quiet_local_libraries()
    assert os.environ["HF_HUB_OFFLINE"] == "0"


def test_compiling_and_the_offline_default_import_no_model_library():
    code = ("import sys, taskc.cli; from taskc.compiler.build import compile_spec; "
            "from taskc.backends import get_backend; "
            "print(sorted(m for m in ('vllm', 'transformers', 'huggingface_hub', 'openai', 'anthropic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
