"""A PNG of a sweep's front in the MLflow UI, for the docs: the tracking server's experiment page
(runs table, the "Model training" view) filtered by `tags.pareto_front = "true"`, rendered by
headless Chromium (Debian's `chromium` package; nothing is downloaded at run time).

    python scripts/screenshot_front.py http://127.0.0.1:5000 EXPERIMENT_ID docs/mlflow_front.png
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import urllib.parse

FILTER = 'tags.pareto_front = "true"'


def front_url(server: str, experiment_id: str) -> str:
    query = urllib.parse.urlencode({"searchFilter": FILTER, "compareRunsMode": "TABLE"},
                                   quote_via=urllib.parse.quote)
    return f"{server.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def screenshot(url: str, out: str, size: str = "1600,900") -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no chromium on PATH: `apt-get install chromium` (Debian)")
    with tempfile.TemporaryDirectory() as profile:
        # No network beyond loopback here: the background-networking flags keep Chromium from
        # trying (and waiting on) Google's hosts; the virtual time budget lets the page's
        # scripts load the runs before the shot.
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", f"--window-size={size}",
                        "--hide-scrollbars", "--virtual-time-budget=20000",
                        f"--screenshot={out}", url], check=True, capture_output=True,
                       timeout=180)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    screenshot(front_url(sys.argv[1], sys.argv[2]), sys.argv[3])
    print(sys.argv[3])
