"""The lab's "web": free-form text a lab base model is pretrained on before any SFT.

The study fine-tunes a pretrained LLaMA, whose skills come from pre-training and are only aligned by
SFT. The lab mirrors that: this corpus carries the latent skills (arithmetic facts and worked sums
in prose, Python functions with docstrings and example calls, questions and answers in loose
forms) but never in the SFT formats (no `#### N`, no `<<a+b=c>>`, no Vicuna turns, no "Complete the
following Python function."). So a base model knows the facts yet scores low on the SFT formats
until SFT teaches them, which is what SFT does for the study's model.

Nothing here may leak the evaluation split: a math story, a code function or a chat whose problem
key is held out (`lab._is_eval_key`) is skipped, so held-out problems stay unseen in pre-training
too. Arithmetic facts themselves are not problems and occur freely, as they do on the web.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Callable

from . import lab

_OPS: dict[str, Callable[[int, int], int]] = {"+": operator.add, "-": operator.sub,
                                              "*": operator.mul}
_OP_WORDS = {"+": "plus", "-": "minus", "*": "times"}


def _operands(rng: random.Random, op: str) -> tuple[int, int]:
    """Small numbers, as in the lab's word problems: sums of two numbers up to 20, differences
    from up to 40 (a sum minus a loss), products of one-digit numbers."""
    if op == "*":
        return rng.randint(1, 10), rng.randint(1, 10)
    if op == "-":
        a = rng.randint(0, 40)
        return a, rng.randint(0, a)
    return rng.randint(0, 20), rng.randint(0, 20)


def _fact(rng: random.Random) -> str:
    op = rng.choice("+-*")
    a, b = _operands(rng, op)
    r = _OPS[op](a, b)
    # spaced and compact forms both occur on the web (prose, spreadsheets, calculators)
    return rng.choice([f"{a} {op} {b} = {r}.", f"{a} {_OP_WORDS[op]} {b} is {r}.",
                       f"We know that {a} {op} {b} is {r}.", f"{a}{op}{b}={r}",
                       f"calc: {a}{op}{b}={r}, so the result is {r}."])


def _story(rng: random.Random) -> str | None:
    """A worked sum in prose about someone's things: the skill a word problem needs (read the
    numbers, combine them), told the way a web page would, not the way GSM8K answers are."""
    name, item = rng.choice(lab._NAMES), rng.choice(lab._ITEMS)
    kind = rng.choice(["add", "sub", "mul", "add_sub"])
    a, b = rng.randint(2, 20), rng.randint(2, 20)
    if kind == "add":
        key, text = (kind, name, item, a, b), (
            f"{name} had {a} {item} and got {b} more, so {name} ended up with "
            f"{a} + {b} = {a + b} {item}.")
    elif kind == "sub":
        a, b = max(a, b), min(a, b)
        key, text = (kind, name, item, a, b), (
            f"{name} started with {a} {item}. After giving away {b}, {name} kept "
            f"{a} - {b} = {a - b} {item}.")
    elif kind == "mul":
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        key, text = (kind, name, item, a, b), (
            f"{name} packed {a} bags of {item} with {b} in each bag, {a} * {b} = {a * b} "
            f"{item} in total.")
    else:
        c = rng.randint(1, a + b - 1)
        key, text = (kind, name, item, a, b, c), (
            f"{name} had {a} {item}, found {b} more ({a} + {b} = {a + b}) and then lost {c}, "
            f"leaving {a + b} - {c} = {a + b - c} {item}.")
    return None if lab._is_eval_key(key) else text


def _code(rng: random.Random) -> str | None:
    """A function as it might appear in a repository: docstring, body and an example call.
    Held-out (family, constant) pairs never appear, so evaluation functions stay unseen."""
    fam = rng.choice(lab._CODE_FAMILIES)
    k = rng.randint(2, 50)
    if lab._is_eval_key((fam.name, k)):
        return None
    name, x = fam.name.format(k=k), rng.choice(fam.inputs)
    return (f'def {name}({fam.arg}):\n    """{fam.doc.format(k=k)}\n    """\n'
            f"    {fam.body.format(k=k)}\n\n# {name}({x!r}) gives {fam.ref(k, x)!r}\n")


def _chat(rng: random.Random) -> str | None:
    key, chat = lab._general_chat(rng)
    if lab._is_eval_key(key):
        return None
    q, a = (turn["value"] for turn in chat["conversations"][:2])
    return rng.choice([f"Someone asked: {q} The reply was: {a}", f"Q: {q}\nA: {a}",
                       f"{q} -- {a}"])


def web_corpus(n_docs: int, shares: dict[str, float], seed: int = 0) -> list[str]:
    """`n_docs` documents, drawn by `shares` over "facts", "stories", "code" and "chat" (weights,
    normalised here). Deterministic for (n_docs, shares, seed) and prefix-stable in n_docs."""
    kinds = {"facts": _fact, "stories": _story, "code": _code, "chat": _chat}
    unknown = set(shares) - set(kinds)
    if unknown:
        raise ValueError(f"unknown lab web text kinds {sorted(unknown)}; use {sorted(kinds)}")
    names = sorted(shares)
    weights = [shares[n] for n in names]
    rng = random.Random(f"lab-web/{seed}")
    docs: list[str] = []
    while len(docs) < n_docs:
        doc = kinds[rng.choices(names, weights)[0]](rng)
        if doc is not None:
            docs.append(doc)
    return docs
