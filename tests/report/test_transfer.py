"""The report's proxy section: for a sweep that named a proxy, the mixtures both ran (matched
across amounts), their scores on each side and Spearman's ρ per ability."""

from mlflow.tracking import MlflowClient

from sftmix_ray.report.build import build_report
from tests.constructed import log_sweep, points


def test_the_report_pairs_proxy_and_target_mixtures_with_their_rank_correlation(tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    pts = points(6)
    log_sweep(uri, "proxy", [{**p, "amount": 100} for p in pts], level=0.5)
    sweep = {"name": "target", "search": {"proxies": [{"experiment": "proxy",
                                                        "fidelity": 0.25}]}}
    parent = log_sweep(uri, "target", pts[:4], sweep=sweep)
    build_report(uri, tmp_path / "report", sweep=parent,
                 objectives={"math": "max", "code": "max", "general": "max"})
    md = (tmp_path / "report" / "report.md").read_text()
    assert "### Proxy vs target" in md
    assert "proxy proxy (fidelity 0.25): 4 mixtures ran on both sides" in md
    assert "general +1.00" in md  # the constructed proxy is the target at half the level
    assert md.count("proxy → target") == 4
    assert MlflowClient(uri).get_run(parent).info.status == "FINISHED"


def test_a_sweep_without_proxies_has_no_proxy_section(tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    parent = log_sweep(uri, "target", points(4), sweep={"name": "target", "search": {}})
    build_report(uri, tmp_path / "r", sweep=parent, objectives={"math": "max"})
    assert "Proxy vs target" not in (tmp_path / "r" / "report.md").read_text()
