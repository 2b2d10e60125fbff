"""The MT-Bench judge client against a local fake OpenAI-compatible server: well-formed,
malformed and failing replies, retries, and a clear error when nobody answers."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sftmix_ray.evaluate.judge import JudgeClient, JudgeError, parse_rating
from sftmix_ray.evaluate.mt_bench import grading_prompt, load_mt_bench, score_mt_bench


def completion(content) -> bytes:
    reply = {"choices": [{"message": {"role": "assistant", "content": content}}]}
    return json.dumps(reply).encode()


def respond(handler, status: int, body: bytes = b"", headers=(), reason: str | None = None):
    handler.send_response(status, reason)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class FakeJudge:
    """Replies with `script` in order (then its last entry), or with `route(request)` for each
    request: an int is an HTTP error status, a str is the judge's message content, None is a body
    that is not a chat completion, and a function of the request handler writes the whole
    response itself (status, headers, timing). Every request is kept, headers included."""

    def __init__(self, script=(), route=None):
        self.script, self.route, self.requests = list(script), route, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                request = {"path": self.path, "body": body, "headers": dict(self.headers),
                           "auth": self.headers.get("Authorization")}
                owner.requests.append(request)
                step = owner.route(request) if owner.route else \
                    owner.script.pop(0) if len(owner.script) > 1 else owner.script[0]
                if callable(step):
                    step(self)
                elif isinstance(step, int):
                    respond(self, step, b"server error")
                else:
                    respond(self, 200, json.dumps({"oops": True}).encode() if step is None
                            else completion(step), [("Content-Type", "application/json")])

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def judge_server():
    servers = []

    def start(*script, route=None):
        servers.append(FakeJudge(script, route))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_parse_rating():
    assert parse_rating("The answer is fine. Rating: [[7]]") == 7
    assert parse_rating("Rating: [[8.5]]") == 8.5
    assert parse_rating("I'd give it [6] overall") == 6  # FastChat's fallback
    assert parse_rating("no score here") is None


def test_well_formed_reply_and_the_request_it_answers(judge_server):
    server = judge_server("Good answer. Rating: [[7]]")
    client = JudgeClient(server.url, "judge-model", api_key="sk-test", backoff_s=0.01)
    items = load_mt_bench()
    math_item = next(i for i in items if i["category"] == "math")
    scores, records = score_mt_bench([math_item], [["It is 4.", "Then 8."]], client, workers=1)
    assert scores["general"] == 7 and scores["mt_bench_turn1"] == 7
    assert scores["mt_bench_turn2"] == 7 and scores["mt_bench_unparsed"] == 0
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test"
    assert first["body"]["model"] == "judge-model" and first["body"]["temperature"] == 0
    user = first["body"]["messages"][1]["content"]
    assert math_item["turns"][0] in user and "It is 4." in user
    assert math_item["reference"][0] in user  # math is graded against the reference answer
    assert [r["turn"] for r in records] == [1, 2]


def test_malformed_replies_are_recorded_and_excluded(judge_server):
    server = judge_server("Rating: [[9]]", "I refuse to give a number.")
    client = JudgeClient(server.url, "j", backoff_s=0.01)
    writing = next(i for i in load_mt_bench() if i["category"] == "writing")
    scores, records = score_mt_bench([writing], [["a", "b"]], client, workers=1)
    assert scores["general"] == 9 and scores["mt_bench_unparsed"] == 1
    assert sorted(r["rating"] for r in records) == [-1, 9]


def test_server_errors_are_retried_with_backoff(judge_server):
    server = judge_server(500, 503, "Rating: [[4]]")
    client = JudgeClient(server.url, "j", backoff_s=0.01)
    assert client.complete("sys", "user") == "Rating: [[4]]"
    assert len(server.requests) == 3
    bad_body = judge_server(None)
    with pytest.raises(JudgeError, match="malformed reply"):
        JudgeClient(bad_body.url, "j", max_retries=1, backoff_s=0.01).complete("s", "u")
    refused = judge_server(401)
    with pytest.raises(JudgeError, match="refused the request: HTTP 401"):
        JudgeClient(refused.url, "j", backoff_s=0.01).complete("s", "u")
    assert len(refused.requests) == 1  # a 4xx other than 429 is not retried


def test_unreachable_endpoint_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    client = JudgeClient(f"http://127.0.0.1:{port}/v1", "j", max_retries=2, backoff_s=0.01,
                         timeout_s=2)
    with pytest.raises(JudgeError, match=f"127.0.0.1:{port}/v1/chat/completions failed after 3 "
                                         "attempts"):
        client.complete("s", "u")


def test_mt_bench_questions_and_grading_prompts():
    items = load_mt_bench()
    assert len(items) == 80 and all(len(i["turns"]) == 2 for i in items)
    with_ref = [i for i in items if i["reference"]]
    assert len(with_ref) == 30 and {i["category"] for i in with_ref} == {"math", "reasoning",
                                                                          "coding"}
    writing = next(i for i in items if i["category"] == "writing")
    _, user = grading_prompt(writing, ["A1", "A2"], 2)
    assert "### Assistant A:\nA2" in user and "Reference" not in user
    coding = next(i for i in items if i["category"] == "coding")
    _, user = grading_prompt(coding, ["A1", "A2"], 2)
    assert "### Reference answer:" in user and coding["reference"][1] in user
