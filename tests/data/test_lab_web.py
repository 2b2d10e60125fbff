"""The lab's web text: deterministic, in none of the SFT formats, and blind to the held-out
evaluation problems."""

import re

import pytest

from sftmix_ray.data import lab
from sftmix_ray.data.lab_web import web_corpus

SHARES = {"facts": 1.0, "stories": 1.0, "code": 1.0, "chat": 1.0}


def test_deterministic_and_prefix_stable():
    assert web_corpus(300, SHARES, seed=0) == web_corpus(300, SHARES, seed=0)
    assert web_corpus(500, SHARES, seed=0)[:300] == web_corpus(300, SHARES, seed=0)
    assert web_corpus(300, SHARES, seed=1) != web_corpus(300, SHARES, seed=0)


def test_shares_choose_the_kinds():
    only_code = web_corpus(50, {"code": 1.0})
    assert all(doc.startswith("def ") for doc in only_code)
    with pytest.raises(ValueError, match="unknown lab web text kinds"):
        web_corpus(5, {"poems": 1.0})


def test_no_sft_format_markers():
    text = "\n".join(web_corpus(3000, SHARES))
    for marker in ("####", "<<", "USER:", "ASSISTANT:", lab.CODE_INSTRUCTION):
        assert marker not in text


def test_held_out_problems_never_appear():
    text = "\n".join(web_corpus(20000, SHARES))
    held_out_functions = {p["entry_point"] for p in lab.lab_eval("code", 40)}
    seen = set(re.findall(r"def (\w+)\(", text))
    assert seen and not held_out_functions & seen
    held_out_chats = [c["conversations"][0]["value"] for c in lab.lab_eval("general", 60)]
    asked = [q for q in held_out_chats
             if any(q + end in text for end in ("\nA:", " The reply", " --"))]
    assert not asked
    # no held-out word problem is told as a story (same kind, name, item and numbers)
    stories = 0
    for row in lab.lab_eval("math", 1000):
        story = _as_story(row["question"])
        stories += story is not None
        assert story is None or story not in text, row["question"]
    assert stories == 1000
    # the check has power: training problems of the same shapes do occur as stories
    told = sum(_as_story(row["question"]) in text for row in lab.lab_train("math", 1000))
    assert told >= 5


def _as_story(question: str) -> str | None:
    """The opening web_corpus would give a story of this problem's key."""
    n = re.findall(r"\d+", question)
    who, item = question.split()[0], None
    if " buys " in question:
        item = question.split()[3].rstrip(".")
        return f"{who} had {n[0]} {item} and got {n[1]} more,"
    if "gives" in question:
        item = question.split()[3]
        return f"{who} started with {n[0]} {item}. After giving away {n[1]},"
    if "boxes" in question:
        item = re.search(r"\d+ (\w+) in each box", question).group(1)
        return f"{who} packed {n[0]} bags of {item} with {n[1]} in each bag,"
    if "finds" in question:
        item = question.split()[3].rstrip(",")
        total = int(n[0]) + int(n[1])
        return (f"{who} had {n[0]} {item}, found {n[1]} more ({n[0]} + {n[1]} = {total}) and "
                f"then lost {n[2]},")
    return None
