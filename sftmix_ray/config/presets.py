"""The names a sweep file may use for data: the formats rows come in, the lab's domains, and the
study's domains by their public addresses, so a real sweep names a preset, not a URL.

Nothing here is downloaded until a sweep that names a preset runs; tests only check the expansion.
GSM8K-RFT (Yuan et al. 2023) is published in the authors' GitHub repository, not on the Hugging Face
hub, so its preset is a raw-file URL read by the `json` loader; the others are hub dataset ids.
"""

from __future__ import annotations

# Source formats `data.formats` turns into chat messages.
FORMATS = ("gsm8k", "alpaca", "sharegpt", "messages")

PRESETS: dict[str, dict] = {
    # ~110K rejection-sampled reasoning paths over GSM8K train; rows are {"query", "response"}.
    "gsm8k_rft": {"source": "https://raw.githubusercontent.com/OFA-Sys/gsm8k-ScRel/main/data/rft/"
                            "u13b.jsonl", "format": "gsm8k"},
    # GSM8K's own 7.5K training answers, for a smaller math domain.
    "gsm8k": {"source": "openai/gsm8k", "subset": "main", "format": "gsm8k"},
    # 20K instruction/input/output rows.
    "code_alpaca": {"source": "sahil2801/CodeAlpaca-20k", "format": "alpaca"},
    # The Vicuna ShareGPT dump the study used (~86K multi-turn chats after cleaning).
    "sharegpt": {"source": "anon8231489123/ShareGPT_Vicuna_unfiltered",
                 "data_files": "ShareGPT_V3_unfiltered_cleaned_split_no_imsorry.json",
                 "format": "sharegpt"},
}

# Rows each preset holds, as published (the usable count is known only once prepared): for the
# estimates `sftmix validate` prints before anything is downloaded.
APPROX_ROWS = {"gsm8k_rft": 110_000, "gsm8k": 7_473, "code_alpaca": 20_022, "sharegpt": 86_000}

# Training samples a lab domain generates unless its `pool` says otherwise.
LAB_DEFAULT_POOL = 4000

# What each lab generator emits; a lab domain's format must be this one.
LAB_FORMATS = {"math": "gsm8k", "code": "alpaca", "general": "sharegpt"}
