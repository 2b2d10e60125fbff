"""Regenerate the pictures in docs/ from the lab as it is now: a quickstart sweep (run here, or
one already run, by its parent run id), its report, and its front in the MLflow UI.

    .venv/bin/python scripts/regenerate_docs.py                  # runs sweeps/quickstart.yaml
    .venv/bin/python scripts/regenerate_docs.py --sweep RUN_ID --tracking-uri sqlite:///mlflow.db

Writes docs/quickstart_front.png (the report's pairwise figure: the front in red, which needs
nothing but matplotlib), docs/quickstart_report.png (the report page, by headless Chromium) and
docs/mlflow_front.png (the experiment's runs filtered to the front, on a `mlflow server` started
here on loopback over the same store). The two screenshots need Debian's `chromium`; without it
they are skipped, and the script says so. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SFTMIX = [sys.executable, "-m", "sftmix_ray.cli"]


def run_quickstart(sweep_file: Path, uri: str) -> str:
    """The sweep run through the CLI as a user runs it; its parent run id, from its output."""
    out = subprocess.run([*SFTMIX, "run", str(sweep_file), "--tracking-uri", uri], check=True,
                         capture_output=True, text=True, cwd=ROOT).stdout
    print(out)
    found = re.search(r"parent run (\w+)", out)
    if found is None:
        sys.exit("the sweep printed no parent run id")
    return found.group(1)


def report(run_id: str, uri: str, out: Path) -> Path:
    subprocess.run([*SFTMIX, "report", "--sweep", run_id, "--tracking-uri", uri, "--out",
                    str(out)], check=True, cwd=ROOT)
    return out


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def mlflow_front(run_id: str, uri: str, out: Path) -> None:
    """The experiment's front in the MLflow UI, served from the same store on loopback."""
    sys.path.insert(0, str(ROOT))
    from mlflow.tracking import MlflowClient

    from scripts.screenshot_front import front_url, screenshot
    from tests.services import MLflowServer

    experiment = MlflowClient(uri).get_run(run_id).info.experiment_id
    with tempfile.TemporaryDirectory() as tmp:
        server = MLflowServer(uri, str(Path(tmp) / "artifacts"), {}, log=Path(tmp) / "log")
        server.start()
        try:
            screenshot(front_url(server.uri, experiment), str(out))
        finally:
            server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sweep", help="a finished quickstart's parent run id (default: run one)")
    ap.add_argument("--sweep-file", type=Path, default=ROOT / "sweeps" / "quickstart.yaml")
    ap.add_argument("--tracking-uri", default=f"sqlite:///{ROOT / 'mlflow.db'}")
    args = ap.parse_args()
    run_id = args.sweep or run_quickstart(args.sweep_file, args.tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        pages = report(run_id, args.tracking_uri, Path(tmp) / "report")
        shutil.copyfile(pages / "pairwise.png", DOCS / "quickstart_front.png")
        print(f"written: {DOCS / 'quickstart_front.png'}")
        if chromium() is None:
            print("no chromium on PATH (Debian: apt-get install chromium): "
                  "docs/quickstart_report.png and docs/mlflow_front.png left as they are")
            return
        subprocess.run([str(ROOT / "scripts" / "screenshot_report.sh"),
                        str(pages / "report.html"), str(DOCS / "quickstart_report.png")],
                       check=True)
    mlflow_front(run_id, args.tracking_uri, DOCS / "mlflow_front.png")
    print(f"written: {DOCS / 'mlflow_front.png'}")


if __name__ == "__main__":
    main()
