"""No stray traffic: taskc talks only to the endpoints a user configured.

Libraries that load local models may otherwise phone home (vLLM's usage statistics, Hugging
Face Hub telemetry and model-hub lookups). `quiet_local_libraries()` turns those off through
their documented environment variables before such a library is imported; a value the user set
is left alone.
"""

from __future__ import annotations

import os

QUIET_ENV = {
    "VLLM_NO_USAGE_STATS": "1",       # vLLM: no usage-statistics reports
    "DO_NOT_TRACK": "1",              # vLLM and others honour this convention
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub: no telemetry
    "HF_HUB_OFFLINE": "1",            # no model-hub lookups at run time: models come from local folders
    "TRANSFORMERS_OFFLINE": "1",
}


def quiet_local_libraries() -> None:
    """Set the opt-out variables (where the user has not set them) for this process and its
    children (vLLM's engine workers inherit the environment)."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
