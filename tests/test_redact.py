"""Secrets are cut out of text in whatever form it echoes them: verbatim, percent-encoded,
JSON-escaped, or a mix; environment secrets are found by name, short values are left alone."""

import json
import urllib.parse

import pytest

from sftmix_ray.redact import MARK, redact, secret_values

KEY = 'sk-live/Ab+cd==ef 0123456789 é"\\'


@pytest.mark.parametrize("form", [
    KEY, urllib.parse.quote(KEY), urllib.parse.quote(KEY, safe=""), urllib.parse.quote_plus(KEY),
    urllib.parse.quote(KEY).lower(), json.dumps(KEY)[1:-1],
    json.dumps(KEY, ensure_ascii=False)[1:-1], json.dumps(KEY)[1:-1].replace("/", "\\/"),
    KEY.upper(),
])
def test_every_echoed_form_of_a_secret_is_cut(form):
    assert redact(f"before {form} after", [KEY]) == f"before {MARK} after"


def test_a_secret_that_contains_another_is_cut_whole():
    assert redact("x sk-abcdef-longer y sk-abcdef z", ["sk-abcdef", "sk-abcdef-longer"]) == \
        f"x {MARK} y {MARK} z"


def test_nothing_to_cut_leaves_text_alone():
    assert redact("plain text", []) == "plain text"
    assert redact("", ["sk-abcdef"]) == "" and redact(None, ["sk-abcdef"]) is None


def test_environment_secrets_by_name(monkeypatch):
    monkeypatch.setenv("SOME_API_KEY", "value-of-the-key")
    monkeypatch.setenv("JUDGE_AUTH", "value-of-the-auth")  # a name that does not look secret
    monkeypatch.setenv("MY_TOKEN", "abc")  # too short to cut without mangling ordinary text
    assert "value-of-the-key" in secret_values()
    assert "value-of-the-auth" not in secret_values()
    assert "value-of-the-auth" in secret_values(("JUDGE_AUTH",))
    assert "abc" not in secret_values()
    text = "value-of-the-key / value-of-the-auth / abc"
    assert redact(text, names=("JUDGE_AUTH",)) == f"{MARK} / {MARK} / abc"


def test_passwords_in_urls_are_cut_and_the_rest_kept():
    from sftmix_ray.redact import redact_tree, redact_urls

    assert redact_urls("postgresql://optuna:s3cr3t-pw@db:5432/optuna") == \
        "postgresql://optuna:[redacted]@db:5432/optuna"
    assert redact_urls("postgresql+psycopg://u:p%40ss@h/db and http://a:b@c:5000") == \
        "postgresql+psycopg://u:[redacted]@h/db and http://a:[redacted]@c:5000"
    # no password, or no credentials at all: untouched
    for kept in ("postgresql://optuna@db/optuna", "http://127.0.0.1:5000", "s3://b/k:v@x",
                 "sqlite:////tmp/a.db", "ratio a:b"):
        assert redact_urls(kept) == kept
    tree = {"search": {"study_storage": "mysql://u:pw1234@h/db", "n": 3},
            "list": ["http://x:y@h"]}
    assert redact_tree(tree) == {"search": {"study_storage": "mysql://u:[redacted]@h/db",
                                            "n": 3}, "list": ["http://x:[redacted]@h"]}
