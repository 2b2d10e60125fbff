"""A judge that fails once does not throw the evaluation away: failed grades are recorded with
their reason, counted apart from unparsable ratings and left out of the mean; the evaluation
fails, naming the share and the limit, only past `max_failed_share`. Retry-After is honoured
within the grade's deadline, and no server holds a request past `timeout_s`, however slowly it
drips. Every server here is a real one on 127.0.0.1."""

import email.utils
import time

import pytest

from sftmix_ray.evaluate.judge import JudgeClient, JudgeError, retry_after_s
from sftmix_ray.evaluate.mt_bench import JudgeFailures, load_mt_bench, score_mt_bench

from . import test_judge
from .test_judge import completion, respond

judge_server = test_judge.judge_server  # the fixture: loopback fake judges, closed after the test

WRITING = [i for i in load_mt_bench() if i["category"] in ("writing", "roleplay")][:6]
ANSWERS = [["first answer", "second answer"]] * len(WRITING)


def _question(request) -> int:
    """Which of WRITING a grading request is about (both turns quote the first question)."""
    user = request["body"]["messages"][1]["content"]
    return next(k for k, item in enumerate(WRITING) if item["turns"][0] in user)


def _turn(request) -> int:
    k = _question(request)
    return 2 if WRITING[k]["turns"][1] in request["body"]["messages"][1]["content"] else 1


def _client(server, **kw) -> JudgeClient:
    return JudgeClient(server.url, "j", **{"max_retries": 1, "backoff_s": 0.01, **kw})


def test_failed_grades_are_recorded_counted_and_left_out_of_the_mean(judge_server):
    def malformed_json(h):
        respond(h, 200, b'{"choices": [', [("Content-Type", "application/json")])

    def no_choices(h):
        respond(h, 200, b'{"id": "x", "object": "chat.completion"}')

    failing = {0: 400, 1: 500, 2: malformed_json, 3: no_choices}
    good = {4: ("Rating: [[6]]", "Rating: [[8]]"), 5: ("Rating: [[4]]", "no number, sorry")}
    server = judge_server(route=lambda r: failing.get(_question(r))
                          or good[_question(r)][_turn(r) - 1])
    # 8 of 12 grades fail: exactly at a limit of 2/3 is not more than it
    scores, records = score_mt_bench(WRITING, ANSWERS, _client(server), workers=4,
                                     max_failed_share=8 / 12)
    assert scores["general_judge_failures"] == 8 and scores["mt_bench_unparsed"] == 1
    assert scores["general"] == pytest.approx((6 + 8 + 4) / 3)
    assert scores["mt_bench_turn1"] == 5 and scores["mt_bench_turn2"] == 8
    why = {(r["question_id"], r["turn"]): r.get("error") for r in records}
    ids = [item["question_id"] for item in WRITING]
    for turn in (1, 2):
        assert "refused the request: HTTP 400" in why[ids[0], turn]
        assert "failed after 2 attempts: HTTP 500" in why[ids[1], turn]
        assert "malformed reply (not JSON)" in why[ids[2], turn]
        assert "malformed reply (no choices[0].message.content)" in why[ids[3], turn]
        assert why[ids[4], turn] is None
    assert all(r["rating"] == -1 for r in records if r.get("error"))
    unparsed = [r for r in records if r["rating"] == -1 and "error" not in r]
    assert [r["judgment"] for r in unparsed] == ["no number, sorry"]
    # records stay in question and turn order whatever order the grades finished in
    assert [(r["question_id"], r["turn"]) for r in records] == \
        [(i, t) for i in ids for t in (1, 2)]


def _raw(data: bytes):
    def step(h):
        h.wfile.write(data)
        h.close_connection = True

    return step


BROKEN = {
    "bad chunk size": _raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    "garbage status line": _raw(b"NOT HTTP AT ALL\r\n\r\n"),
    "hung up without a reply": _raw(b""),
    "short body": _raw(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"choices\""),
    "not UTF-8": lambda h: respond(h, 200, b"\xff\xfe\x00garbage"),
    "content null": lambda h: respond(h, 200, completion(None)),
    "choices empty": lambda h: respond(h, 200, b'{"choices": []}'),
}


@pytest.mark.parametrize("kind", BROKEN)
def test_any_broken_reply_is_a_failed_grade_not_a_crash(judge_server, kind):
    server = judge_server(BROKEN[kind])
    _, records = score_mt_bench(WRITING[:1], ANSWERS[:1], _client(server), max_failed_share=1)
    assert [r["rating"] for r in records] == [-1, -1]
    assert all("failed after 2 attempts" in r["error"] for r in records)
    assert len(server.requests) == 4  # each was retried, as a passing fault may be


@pytest.mark.parametrize("status,header", [(429, "1"), (503, "1"), (429, "date+3")])
def test_retry_after_is_waited_out_before_the_next_try(judge_server, status, header):
    if header == "date+3":  # an HTTP-date has whole seconds: 3 s ahead is at least 2 s away
        header = email.utils.formatdate(time.time() + 3, usegmt=True)
    busy = [lambda h: respond(h, status, b"slow down", [("Retry-After", header)])]
    server = judge_server(*busy, "Rating: [[5]]")
    t0 = time.monotonic()
    assert _client(server, backoff_s=0.0).complete("s", "u") == "Rating: [[5]]"
    assert time.monotonic() - t0 >= 1.0 and len(server.requests) == 2


def test_retry_after_is_capped(judge_server):
    an_hour = lambda h: respond(h, 429, b"", [("Retry-After", "3600")])  # noqa: E731
    server = judge_server(an_hour, "Rating: [[5]]")
    t0 = time.monotonic()
    assert _client(server, retry_after_cap_s=0.3).complete("s", "u") == "Rating: [[5]]"
    assert 0.3 <= time.monotonic() - t0 < 3


def test_retry_after_never_waits_past_the_grades_deadline(judge_server):
    server = judge_server(lambda h: respond(h, 503, b"", [("Retry-After", "30")]))
    client = _client(server, timeout_s=1, max_retries=3)  # 4 s for the whole grade
    t0 = time.monotonic()
    with pytest.raises(JudgeError, match=r"HTTP 503.*30s away, would pass the grade's deadline"):
        client.complete("s", "u")
    assert time.monotonic() - t0 < 0.8 and len(server.requests) == 1


def test_retry_after_values():
    assert retry_after_s("7") == 7 and retry_after_s(" 0 ") == 0 and retry_after_s("1.5") == 1.5
    assert retry_after_s(None) is None and retry_after_s("soon") is None
    # nonsense a float() still parses: the usual backoff, never a crash in time.sleep
    assert retry_after_s("nan") is None and retry_after_s("inf") is None
    assert retry_after_s("-inf") is None
    assert retry_after_s(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0
    assert 8 < retry_after_s(email.utils.formatdate(time.time() + 10, usegmt=True)) <= 10


def _drip(data: bytes, headers: bytes = b""):
    """A response written a byte every 0.2 s: `headers` too, when given, else sent at once."""

    def step(h):
        try:
            if not headers:
                h.send_response(200)
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
            for i in range(len(headers + data)):
                h.wfile.write((headers + data)[i:i + 1])
                time.sleep(0.2)
        except OSError:
            pass  # the client hung up: that is the point

    return step


REPLY = completion("Rating: [[9]]")
SLOW = {
    "body": _drip(REPLY),
    "status line and headers": _drip(REPLY, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
                                     % len(REPLY)),
    # no length: the body ends when the connection does, so a cut one looks complete
    "endless body": _drip(b"x" * 200, b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"),
    # a whole reply at once, but the connection is held open, so it never proves complete
    "unterminated body": lambda h: (h.wfile.write(b"HTTP/1.0 200 OK\r\n\r\n" + REPLY),
                                    time.sleep(3)),
}


@pytest.mark.parametrize("kind", SLOW)
def test_a_slow_server_cannot_hold_a_request_past_timeout(judge_server, kind):
    server = judge_server(SLOW[kind])
    t0 = time.monotonic()
    with pytest.raises(JudgeError, match=r"no complete reply within 1s \(the request's deadline"):
        _client(server, timeout_s=1, max_retries=0).complete("s", "u")
    assert 0.9 <= time.monotonic() - t0 < 1.6


def test_each_try_gets_timeout_and_the_grade_is_recorded_failed(judge_server):
    server = judge_server(SLOW["body"])
    t0 = time.monotonic()
    scores, records = score_mt_bench(WRITING[:1], ANSWERS[:1], _client(server, timeout_s=1),
                                     workers=2, max_failed_share=1)
    assert 1.9 <= time.monotonic() - t0 < 3.0  # two turns in parallel, two tries of 1 s each
    assert len(server.requests) == 4 and scores["general_judge_failures"] == 2
    assert all("the request's deadline" in r["error"] for r in records)


@pytest.mark.parametrize("failure", [401, 500, None])
def test_every_grade_failing_fails_the_evaluation_naming_share_and_limit(judge_server,
                                                                        failure):
    server = judge_server(failure)
    with pytest.raises(JudgeFailures) as caught:
        score_mt_bench(WRITING, ANSWERS, _client(server), workers=2)
    message = str(caught.value)
    assert "of 12 grades failed" in message
    assert "more than evaluate.judge.max_failed_share = 10.0%" in message
    assert "stopped after" in message  # the outcome was settled: no need to try every grade
    assert len(server.requests) < 12 * 2 and caught.value.records


def test_the_limit_is_a_share_of_all_grades(judge_server):
    first_fails = lambda r: 500 if _question(r) == 0 and _turn(r) == 1 else "[[7]]"  # noqa: E731
    server = judge_server(route=first_fails)
    scores, _ = score_mt_bench(WRITING[:2], ANSWERS[:2], _client(server), max_failed_share=0.25)
    assert scores["general_judge_failures"] == 1 and scores["general"] == 7
    with pytest.raises(JudgeFailures, match=r"1 of 4 grades failed \(25.0%\), more than "
                                            r"evaluate.judge.max_failed_share = 20.0%"):
        score_mt_bench(WRITING[:2], ANSWERS[:2], _client(server), max_failed_share=0.2)
    with pytest.raises(JudgeFailures, match="max_failed_share = 0.0%"):
        score_mt_bench(WRITING[:2], ANSWERS[:2], _client(server), max_failed_share=0)


def test_sftmix_eval_stops_on_too_many_failures_naming_the_reason(tmp_path, tiny_model_dir,
                                                                 judge_server):
    from typer.testing import CliRunner

    from sftmix_ray.cli import app

    server = judge_server(400)  # refused at once: the configured retries would not change it
    result = CliRunner().invoke(app, [
        "eval", "--model", str(tiny_model_dir), "--benchmarks", "mt_bench", "--n", "2",
        "--max-new-tokens", "4", "--no-cache", "--out", str(tmp_path / "out"),
        "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
        "--judge-url", server.url, "--judge-model", "fake"])
    assert result.exit_code == 2, result.output  # a clear refusal, not a traceback
    output = " ".join(result.output.split())
    assert "cannot evaluate" in output and "of 4 grades failed" in output
    assert "max_failed_share = 10.0%" in output and "Traceback" not in output
    assert not (tmp_path / "out" / "scores.json").exists() and server.requests
