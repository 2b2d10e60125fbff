"""What a Train worker reports besides its final metrics, and how a reader recognises it: the
objective after each epoch of the final stage, marked `INTERMEDIATE`, for a sweep's pruner."""

from __future__ import annotations

INTERMEDIATE = "sftmix_intermediate"
EPOCH = "final_stage_epoch"


def is_intermediate(result: dict | None) -> bool:
    """An epoch's report; as a trial's last result, it means the pruner stopped the trial."""
    return bool(result and result.get(INTERMEDIATE))
