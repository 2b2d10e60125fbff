"""The MT-Bench judge client against a local fake OpenAI-compatible server: well-formed,
malformed and failing replies, retries, and a clear error when nobody answers."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sftmix_ray.evaluate.judge import JudgeClient, JudgeError, parse_rating
from sftmix_ray.evaluate.mt_bench import grading_prompt, load_mt_bench, score_mt_bench


class FakeJudge:
    """Replies with `script` in order (then its last entry): an int is an HTTP error status, a
    str is the judge's message content, None is a body that is not a chat completion."""

    def __init__(self, script):
        self.script, self.requests = list(script), []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append({"path": self.path, "body": body,
                                       "auth": self.headers.get("Authorization")})
                step = owner.script.pop(0) if len(owner.script) > 1 else owner.script[0]
                if isinstance(step, int):
                    self.send_response(step)
                    self.end_headers()
                    self.wfile.write(b"server error")
                    return
                reply = {"oops": True} if step is None else \
                    {"choices": [{"message": {"role": "assistant", "content": step}}]}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def judge_server():
    servers = []

    def start(*script):
        servers.append(FakeJudge(script))
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
