import json
import os

import pytest
import torch

from sftmix_ray.evaluate.cache import EvalCache, eval_key, weights_digest

SETTINGS = {"evaluate": {"math": {"n": 2}}, "eval_sets": "abc", "template": {"kind": "vicuna"},
            "abilities": ["math", "code"]}


def _linear(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(3, 2)


class WithBuffer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)
        self.register_buffer("stats", torch.zeros(4))


def test_identical_weights_give_the_same_digest():
    a, b = _linear(0), _linear(0)
    assert weights_digest(a) == weights_digest(b)
    assert len(weights_digest(a)) == 24


def test_digest_is_stable_across_calls():
    m = _linear()
    assert weights_digest(m) == weights_digest(m) == weights_digest(m)


def test_one_changed_parameter_element_changes_the_digest():
    m = _linear()
    before = weights_digest(m)
    with torch.no_grad():
        m.weight[1, 2] += 1e-3
    assert weights_digest(m) != before


def test_different_initialisations_differ():
    assert weights_digest(_linear(0)) != weights_digest(_linear(1))


def test_buffer_change_changes_the_digest():
    torch.manual_seed(0)
    m = WithBuffer()
    before = weights_digest(m)
    m.stats[3] = 1.0
    assert weights_digest(m) != before


def test_dtype_change_with_identical_bytes_changes_the_digest():
    # zeros are the same bytes in float32 and int32: only the recorded dtype tells them apart
    a, b = torch.nn.Module(), torch.nn.Module()
    a.register_buffer("x", torch.zeros(4, dtype=torch.float32))
    b.register_buffer("x", torch.zeros(4, dtype=torch.int32))
    assert weights_digest(a) != weights_digest(b)


def test_shape_and_name_are_part_of_the_digest():
    a, b, c = torch.nn.Module(), torch.nn.Module(), torch.nn.Module()
    a.register_buffer("x", torch.arange(6.0).reshape(2, 3))
    b.register_buffer("x", torch.arange(6.0).reshape(3, 2))
    c.register_buffer("y", torch.arange(6.0).reshape(2, 3))
    assert len({weights_digest(a), weights_digest(b), weights_digest(c)}) == 3


def test_casting_the_model_changes_the_digest_and_bfloat16_is_hashable():
    m = _linear()
    f32 = weights_digest(m)
    assert weights_digest(m.to(torch.bfloat16)) != f32  # numpy has no bfloat16: hashed as bytes


def test_eval_key_depends_on_the_weights():
    assert eval_key("w1", SETTINGS) != eval_key("w2", SETTINGS)
    assert eval_key("w1", SETTINGS) == eval_key("w1", dict(SETTINGS))


@pytest.mark.parametrize("name,value", [
    ("evaluate", {"math": {"n": 3}}), ("eval_sets", "abd"), ("template", {"kind": "jinja"}),
    ("abilities", ["math"]),
])
def test_eval_key_depends_on_every_settings_key(name, value):
    assert eval_key("w", {**SETTINGS, name: value}) != eval_key("w", SETTINGS)


def test_eval_key_ignores_dict_key_order():
    reordered = {k: SETTINGS[k] for k in reversed(list(SETTINGS))}
    reordered["evaluate"] = {"math": {"n": 2}}
    assert list(reordered) != list(SETTINGS)
    assert eval_key("w", reordered) == eval_key("w", SETTINGS)
    nested = {**SETTINGS, "evaluate": {"a": 1, "b": 2}}
    assert eval_key("w", nested) == eval_key("w", {**SETTINGS, "evaluate": {"b": 2, "a": 1}})


def test_eval_key_is_order_sensitive_for_lists():
    assert eval_key("w", {**SETTINGS, "abilities": ["code", "math"]}) != eval_key("w", SETTINGS)


def test_get_is_none_when_missing_or_without_a_directory(tmp_path):
    assert EvalCache(tmp_path).get("nope") is None
    assert EvalCache(tmp_path / "not-made-yet").get("nope") is None
    assert EvalCache(None).get("nope") is None


def test_put_then_get_round_trips(tmp_path):
    cache = EvalCache(tmp_path / "eval")
    scores = {"math": 0.5, "math_flexible": 0.75}
    records = {"math": [{"output": "#### 7", "correct": True}], "eval_key": "k1"}
    cache.put("k1", scores, records)
    assert cache.get("k1") == (scores, records)
    assert EvalCache(str(tmp_path / "eval")).get("k1") == (scores, records)  # another process
    assert cache.get("k2") is None


def test_put_without_a_directory_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = EvalCache(None)
    cache.put("k", {"math": 1.0}, {})
    assert cache.get("k") is None
    assert list(tmp_path.iterdir()) == []


def test_entry_is_one_complete_json_file(tmp_path):
    cache = EvalCache(tmp_path)
    cache.put("k", {"math": 0.25}, {"math": [{"output": "x" * 1000}]})
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]  # no temporary file left behind
    assert json.loads((tmp_path / "k.json").read_text()) == {
        "scores": {"math": 0.25}, "records": {"math": [{"output": "x" * 1000}]}}


def test_put_replaces_a_longer_entry_whole(tmp_path):
    cache = EvalCache(tmp_path)
    cache.put("k", {"math": 0.25}, {"math": [{"output": "x" * 5000}]})
    cache.put("k", {"math": 1.0}, {})
    assert json.loads((tmp_path / "k.json").read_text()) == {"scores": {"math": 1.0},
                                                             "records": {}}


def test_failed_publish_leaves_the_previous_entry_intact(tmp_path, monkeypatch):
    cache = EvalCache(tmp_path)
    cache.put("k", {"math": 0.25}, {})

    def refuse(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        cache.put("k", {"math": 1.0}, {"math": [{"output": "y" * 5000}]})
    monkeypatch.undo()
    assert cache.get("k") == ({"math": 0.25}, {})
