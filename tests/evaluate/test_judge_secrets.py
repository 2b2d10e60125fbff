"""Secrets stay where they belong: a custom judge endpoint gets only its own key (never
OPENAI_API_KEY), no redirect carries the request elsewhere, and a key a server echoes back, in
whatever form, never reaches an error message, a record or a log line. The servers are real ones
on 127.0.0.1 that keep the headers they received."""

import json
import logging
import traceback
import urllib.parse

import pytest

from sftmix_ray.config import EvaluateConfig
from sftmix_ray.evaluate.judge import JudgeError, api_key_for
from sftmix_ray.evaluate.mt_bench import load_mt_bench, score_mt_bench
from sftmix_ray.evaluate.suite import judge_client

from . import test_judge
from .test_judge import completion, respond

judge_server = test_judge.judge_server  # the fixture: loopback fake judges, closed after the test

KEY = "sk-live/Ab+cd==ef0123456789"  # "/", "+" and "=" change when percent-encoded
OPENAI_KEY = "sk-openai-0123456789abcdef"
WRITING = next(i for i in load_mt_bench() if i["category"] == "writing")


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch):
    for name in ("SFTMIX_JUDGE_API_KEY", "OPENAI_API_KEY", "MY_JUDGE_KEY"):
        monkeypatch.delenv(name, raising=False)


def _client(server, **judge):
    cfg = EvaluateConfig.model_validate({
        "general": {"source": "mt_bench", "n": 1},
        "judge": {"base_url": server.url, "model": "j", "max_retries": 1, **judge}})
    client = judge_client(cfg)
    client.backoff_s = 0.01
    return client


@pytest.mark.parametrize("api_key_env", [None, "MY_JUDGE_KEY"])
def test_the_openai_key_never_goes_to_a_custom_endpoint(judge_server, monkeypatch,
                                                        api_key_env):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    server = judge_server("Rating: [[5]]")
    client = _client(server, **({"api_key_env": api_key_env} if api_key_env else {}))
    assert client.complete("s", "u") == "Rating: [[5]]"
    assert "Authorization" not in server.requests[0]["headers"]
    assert OPENAI_KEY not in json.dumps(server.requests)


@pytest.mark.parametrize("api_key_env", ["SFTMIX_JUDGE_API_KEY", "MY_JUDGE_KEY",
                                         "OPENAI_API_KEY"])  # named outright: the user's choice
def test_the_endpoints_own_key_is_sent(judge_server, monkeypatch, api_key_env):
    monkeypatch.setenv(api_key_env, KEY)
    if api_key_env != "OPENAI_API_KEY":
        monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    server = judge_server("Rating: [[5]]")
    _client(server, api_key_env=api_key_env).complete("s", "u")
    assert server.requests[0]["auth"] == f"Bearer {KEY}"


def test_the_openai_key_falls_back_only_for_openai_itself():
    env = {"OPENAI_API_KEY": OPENAI_KEY}
    assert api_key_for("https://api.openai.com/v1", "SFTMIX_JUDGE_API_KEY", env) == OPENAI_KEY
    assert api_key_for("https://API.OpenAI.com:443/v1", "SFTMIX_JUDGE_API_KEY", env) == OPENAI_KEY
    assert api_key_for("https://api.openai.com/v1", "K", {**env, "K": KEY}) == KEY
    for lookalike in ["http://api.openai.com/v1",  # the key would cross the network in clear
                      "https://api.openai.com.evil.test/v1", "https://evil.test/api.openai.com",
                      "https://api.openai.com@evil.test/v1", "https://x@api.openai.com/v1",
                      "https://api.openai.com:8443/v1", "https://api.openai.com:nope/v1",
                      "http://127.0.0.1:8000/v1"]:
        assert api_key_for(lookalike, "SFTMIX_JUDGE_API_KEY", env) is None, lookalike


def _echo_401(h):
    respond(h, 401, f"invalid credentials: {h.headers['Authorization']}".encode())


def _echo_json_401(h):
    respond(h, 401, json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}",
                                          "headers": dict(h.headers)}}).encode())


def _echo_encoded_500(h):  # retried, then the tries are spent
    respond(h, 500, f"see /debug?auth={urllib.parse.quote(h.headers['Authorization'])}".encode())


def _echo_at_the_cut_500(h):  # the key straddles where the excerpt is cut short
    respond(h, 500, b"x" * 190 + h.headers["Authorization"].encode())


def _echo_reason_401(h):  # the status line's reason phrase, which urllib's error carries
    respond(h, 401, b"no", reason=f"Bad {h.headers['Authorization']}")


def _echo_reply(h):  # a judge that quotes its request in the judgment itself
    respond(h, 200, completion(f"You sent {h.headers['Authorization']}. Rating: [[3]]"))


ECHOES = {"401 body": _echo_401, "401 JSON body": _echo_json_401,
          "500 percent-encoded": _echo_encoded_500, "500 at the cut": _echo_at_the_cut_500,
          "401 reason phrase": _echo_reason_401, "judgment": _echo_reply}


@pytest.mark.parametrize("echo", ECHOES)
def test_an_echoed_key_is_redacted_from_errors_records_and_logs(judge_server, monkeypatch,
                                                               caplog, echo):
    monkeypatch.setenv("SFTMIX_JUDGE_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    server = judge_server(ECHOES[echo])
    client = _client(server)
    _, records = score_mt_bench([WRITING], [["a", "b"]], client, max_failed_share=1)
    texts = [json.dumps(records), caplog.text]
    if echo == "judgment":
        assert [r["rating"] for r in records] == [3, 3]  # read before the key was cut out
        assert all("You sent Bearer [redacted]" in r["judgment"] for r in records)
    else:
        with pytest.raises(JudgeError) as caught:
            client.complete("s", "u")
        exc = caught.value
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        shown = {"401 reason phrase": "", "500 at the cut": "Bearer [re"}  # the cut cuts the mark
        for message in [str(exc)] + [r["error"] for r in records]:
            assert shown.get(echo, "[redacted]") in message
        assert all(r["rating"] == -1 for r in records)
    assert server.requests[0]["auth"] == f"Bearer {KEY}"  # it was sent, and echoed
    for text in texts:
        for form in (KEY, urllib.parse.quote(KEY, safe=""), KEY[:12], KEY[-12:]):
            assert form not in text


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed(judge_server, monkeypatch, status):
    monkeypatch.setenv("SFTMIX_JUDGE_API_KEY", KEY)
    elsewhere = judge_server("Rating: [[9]]")
    server = judge_server(lambda h: respond(h, status, b"", [
        ("Location", f"{elsewhere.url}/chat/completions")]))
    with pytest.raises(JudgeError, match=rf"refused the request: HTTP {status}: .* "
                                         rf"\(redirect to '{elsewhere.url}/chat/completions' "
                                         r"not followed\)"):
        _client(server).complete("s", "u")
    assert len(server.requests) == 1 and elsewhere.requests == []


@pytest.mark.parametrize("placeholder", ["EMPTY", "none"])
def test_a_placeholder_key_is_sent_but_does_not_blank_ordinary_words(judge_server, monkeypatch,
                                                                     placeholder):
    # vLLM's servers take any key; users set a short placeholder such as EMPTY
    monkeypatch.setenv("SFTMIX_JUDGE_API_KEY", placeholder)
    server = judge_server("The glass is empty, none left. Rating: [[4]]")
    scores, records = score_mt_bench([WRITING], [["a", "b"]], _client(server))
    assert server.requests[0]["auth"] == f"Bearer {placeholder}"
    assert scores["general"] == 4
    assert all("empty, none left" in r["judgment"] for r in records)
