"""The lab: three synthetic ability domains in the formats of the real ones.

Every generator draws from a seeded RNG and splits problems into train and held-out evaluation by a
hash of the problem's *parameters*, so an evaluation problem never appears in training and the split
does not depend on the seed. For math the key is the whole problem (who, what, which numbers): as in
GSM8K, test problems are new, while the arithmetic facts in them also occur in other training
problems. For code the key is (family, constant): a held-out function must be written from its
docstring, never recalled.
The generators describe tasks of each format; nothing here knows about mixtures or scores.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

EVAL_SHARE = 8  # one problem key in EVAL_SHARE goes to the held-out evaluation split


def _is_eval_key(key: tuple) -> bool:
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % EVAL_SHARE == 0


# ---------------------------------------------------------------- math (GSM8K format)

_NAMES = ["Ava", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gia", "Hugo", "Ivy", "Jack", "Kai", "Lena",
          "Milo", "Nora", "Omar", "Pia", "Quin", "Rosa", "Sam", "Tara"]
_ITEMS = ["apples", "books", "coins", "pens", "stamps", "shells", "cards", "marbles", "cookies",
          "stickers", "rocks", "eggs"]


def _math_problem(rng: random.Random) -> tuple[tuple, dict]:
    kind = rng.choice(["add", "sub", "mul", "add_sub"])
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    a, b, c = rng.randint(2, 20), rng.randint(2, 20), rng.randint(1, 9)
    if kind == "add":
        q = (f"{name} has {a} {item}. {name} buys {b} more {item}. "
             f"How many {item} does {name} have now?")
        ans = a + b
        steps = f"{name} has {a} + {b} = <<{a}+{b}={ans}>>{ans} {item}."
        key = (kind, name, item, a, b)
    elif kind == "sub":
        a, b = max(a, b), min(a, b)
        q = f"{name} has {a} {item} and gives {b} of them away. How many {item} are left?"
        ans = a - b
        steps = f"{name} has {a} - {b} = <<{a}-{b}={ans}>>{ans} {item} left."
        key = (kind, name, item, a, b)
    elif kind == "mul":
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        q = f"{name} has {a} boxes with {b} {item} in each box. How many {item} are there in all?"
        ans = a * b
        steps = f"There are {a} * {b} = <<{a}*{b}={ans}>>{ans} {item}."
        key = (kind, name, item, a, b)
    else:
        s = a + b
        c = rng.randint(1, s - 1)
        q = (f"{name} has {a} {item}, finds {b} more and then loses {c}. "
             f"How many {item} does {name} have?")
        ans = s - c
        steps = (f"After finding more, {name} has {a} + {b} = <<{a}+{b}={s}>>{s} {item}.\n"
                 f"After losing some, {name} has {s} - {c} = <<{s}-{c}={ans}>>{ans} {item}.")
        key = (kind, name, item, a, b, c)
    return key, {"question": q, "answer": f"{steps}\n#### {ans}"}


# ---------------------------------------------------------------- code (HumanEval format)

@dataclass(frozen=True)
class _CodeFamily:
    name: str  # function name pattern, formatted with k
    arg: str
    doc: str  # docstring, formatted with k
    body: str  # canonical body, formatted with k
    inputs: tuple  # test inputs
    ref: Callable  # reference behaviour, ref(k, x)


_WORDS = ["cat", "sun", "tree", "blue", "code", "moon", "rain", "star", "fish", "lamp"]

_CODE_FAMILIES = [
    _CodeFamily("add_{k}", "x", "Return x plus {k}.", "return x + {k}", (0, 3, -4, 11),
                lambda k, x: x + k),
    _CodeFamily("times_{k}", "x", "Return x multiplied by {k}.", "return x * {k}", (0, 2, -3, 7),
                lambda k, x: x * k),
    _CodeFamily("minus_{k}", "x", "Return x minus {k}.", "return x - {k}", (0, 5, -2, 20),
                lambda k, x: x - k),
    _CodeFamily("is_above_{k}", "x", "Return True if x is greater than {k}, else False.",
                "return x > {k}", (-1, 0, 5, 9, 12, 30), lambda k, x: x > k),
    _CodeFamily("repeat_{k}", "s", "Return the string s repeated {k} times.", "return s * {k}",
                ("a", "ab", ""), lambda k, x: x * k),
    _CodeFamily("first_{k}", "xs", "Return a list of the first {k} items of xs.", "return xs[:{k}]",
                ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [4, 5], []), lambda k, x: x[:k]),
    _CodeFamily("count_over_{k}", "xs", "Return how many numbers in xs are greater than {k}.",
                "return len([v for v in xs if v > {k}])", ([1, 5, 9, 12], [], [20, 30, 2]),
                lambda k, x: len([v for v in x if v > k])),
    _CodeFamily("add_{k}_to_all", "xs", "Return a new list with {k} added to every number in xs.",
                "return [v + {k} for v in xs]", ([1, 2, 3], [], [-5, 10]),
                lambda k, x: [v + k for v in x]),
    _CodeFamily("mod_{k}", "x", "Return the remainder of x divided by {k}.", "return x % {k}",
                (0, 7, 100, 33), lambda k, x: x % k),
    _CodeFamily("is_multiple_of_{k}", "x", "Return True if x is a multiple of {k}, else False.",
                "return x % {k} == 0", (0, 12, 35, 60, 7), lambda k, x: x % k == 0),
    _CodeFamily("cap_at_{k}", "x", "Return x, but never more than {k}.", "return min(x, {k})",
                (-3, 5, 19, 60), lambda k, x: min(x, k)),
    _CodeFamily("longer_than_{k}", "s", "Return True if the string s has more than {k} characters.",
                "return len(s) > {k}", ("", "abcdefgh", "x" * 20), lambda k, x: len(x) > k),
]


def _code_problem(rng: random.Random) -> tuple[tuple, dict]:
    fam = rng.choice(_CODE_FAMILIES)
    k = rng.randint(2, 50)
    name = fam.name.format(k=k)
    prompt = f'def {name}({fam.arg}):\n    """{fam.doc.format(k=k)}\n    """\n'
    solution = f"    {fam.body.format(k=k)}\n"
    asserts = "\n".join(f"    assert candidate({x!r}) == {fam.ref(k, x)!r}" for x in fam.inputs)
    test = f"def check(candidate):\n{asserts}\n"
    problem = {"task_id": f"lab/{name}", "prompt": prompt, "canonical_solution": solution,
               "test": test, "entry_point": name}
    return (fam.name, k), problem


CODE_INSTRUCTION = "Complete the following Python function."


def code_alpaca_row(problem: dict) -> dict:
    """The Code-Alpaca-style training row for a HumanEval-style problem. The output is the body
    that completes the prompt, HumanEval's completion convention (the executor accepts both)."""
    return {"instruction": CODE_INSTRUCTION, "input": problem["prompt"],
            "output": problem["canonical_solution"]}


# ---------------------------------------------------------------- general (ShareGPT format)

_OPPOSITES = {"hot": "cold", "big": "small", "up": "down", "fast": "slow", "happy": "sad",
              "light": "dark", "open": "closed", "early": "late", "old": "new", "full": "empty",
              "hard": "soft", "high": "low", "wet": "dry", "loud": "quiet", "rich": "poor"}


def _general_chat(rng: random.Random) -> tuple[tuple, dict]:
    kind = rng.choice(["repeat", "upper", "opposite", "reverse", "greet", "count", "sort"])
    if kind == "repeat":
        w, n = rng.choice(_WORDS), rng.randint(2, 5)
        q, a, key = f"Repeat the word {w} {n} times.", " ".join([w] * n), (kind, w, n)
    elif kind == "upper":
        w = rng.choice(_WORDS + list(_OPPOSITES))
        q, a, key = f"Write the word {w} in capital letters.", f"{w.upper()}", (kind, w)
    elif kind == "opposite":
        w = rng.choice(list(_OPPOSITES))
        q, a = f"What is the opposite of {w}?", f"The opposite of {w} is {_OPPOSITES[w]}."
        key = (kind, w)
    elif kind == "reverse":
        ws = rng.sample(_WORDS, rng.randint(3, 4))
        q = f"Reverse the order of these words: {' '.join(ws)}"
        a, key = " ".join(reversed(ws)), (kind, *ws)
    elif kind == "greet":
        n = rng.choice(_NAMES)
        q, a, key = f"Say hello to {n}.", f"Hello, {n}! It is nice to meet you.", (kind, n)
    elif kind == "count":
        ws = [rng.choice(_WORDS) for _ in range(rng.randint(2, 6))]
        q = f"How many words are in this sentence: {' '.join(ws)}"
        a, key = f"There are {len(ws)} words.", (kind, *ws)
    else:
        ws = rng.sample(_WORDS, rng.randint(3, 4))
        q = f"Sort these words alphabetically: {', '.join(ws)}"
        a, key = ", ".join(sorted(ws)), (kind, *ws)
    chat = {"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}
    return key, chat


_GENERATORS = {"math": _math_problem, "code": _code_problem, "general": _general_chat}
LAB_DOMAINS = tuple(_GENERATORS)


def _draw(domain: str, seed: int, want_eval: bool, n: int) -> Iterator[dict]:
    gen = _GENERATORS[domain]
    rng = random.Random(f"lab/{domain}/{seed}/{'eval' if want_eval else 'train'}")
    seen_eval: set[tuple] = set()
    produced, attempts = 0, 0
    while produced < n:
        attempts += 1
        if attempts > 200 * n + 10_000:
            raise ValueError(f"lab domain {domain!r} cannot produce {n} distinct "
                             f"{'eval' if want_eval else 'train'} problems")
        key, row = gen(rng)
        if _is_eval_key(key) != want_eval:
            continue
        if want_eval:  # evaluation problems are distinct; training data may repeat a problem
            if key in seen_eval:
                continue
            seen_eval.add(key)
        produced += 1
        yield row


def lab_train(domain: str, n: int, seed: int = 0) -> list[dict]:
    """`n` training rows of a lab domain in its source format (GSM8K, Code Alpaca, ShareGPT)."""
    rows = list(_draw(domain, seed, False, n))
    return [code_alpaca_row(r) for r in rows] if domain == "code" else rows


def lab_eval(domain: str, n: int, seed: int = 0) -> list[dict]:
    """`n` distinct held-out problems: GSM8K rows, HumanEval problems, or chats with references."""
    return list(_draw(domain, seed, True, n))
