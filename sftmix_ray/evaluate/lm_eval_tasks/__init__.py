"""lm-evaluation-harness task YAMLs over the lab's held-out problems, so a sweep (and its tests)
can score an lm-eval ability with nothing downloaded. The directory is always on lm-eval's
include_path (evaluate/lm_eval_run.py)."""
