"""The data stage: formats from local files, bad rows counted, label masks, the tokenize-once cache,
and manifests that name exactly the data a trial saw."""

import json
from pathlib import Path

import pytest

from sftmix_ray.config import (
    ConfigError,
    DomainConfig,
    SweepConfig,
    TrialPoint,
    load_sweep,
    validate_data,
)
from sftmix_ray.config.presets import LAB_FORMATS
from sftmix_ray.data.formats import SKIP_REASONS, to_messages
from sftmix_ray.data.mixture import select_indices
from sftmix_ray.data.prepare import DataError, DomainSource, prepare
from sftmix_ray.data.template import ChatTemplate, VicunaTemplate, template_for
from sftmix_ray.data.tokenize import IGNORE, load_index, tokenize_conversations
from sftmix_ray.data.tokenizer import train_lab_tokenizer
from sftmix_ray.plan.manifest import build_plan

from ..conftest import GSM8K

GSM8K_TRAIN = GSM8K / "train.jsonl"

ROWS = {
    "gsm8k": [{"question": "What is 2+3?", "answer": "2+3=5\n#### 5"}],
    "alpaca": [{"instruction": "Reverse a string.", "input": "s = 'ab'", "output": "s[::-1]"},
               {"instruction": "Say hi.", "input": "", "output": "hi"}],
    "sharegpt": [{"conversations": [{"from": "human", "value": "hello"},
                                    {"from": "gpt", "value": "hi there"},
                                    {"from": "human", "value": "bye"},
                                    {"from": "gpt", "value": "goodbye"}]}],
    "messages": [{"messages": [{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": "2+2?"},
                               {"role": "assistant", "content": "4"}]}],
}


def _write(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows))
    else:
        import datasets

        ds = datasets.Dataset.from_list(rows)
        if path.suffix == ".parquet":
            ds.to_parquet(str(path))
        else:  # .arrow: the file datasets itself writes for a saved split
            ds.save_to_disk(str(path.with_suffix("")))
            return next(path.with_suffix("").glob("*.arrow"))
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet", ".arrow"])
@pytest.mark.parametrize("fmt", list(ROWS))
def test_every_format_loads_from_every_local_file_type(tmp_path, fmt, suffix):
    path = _write(tmp_path / f"rows{suffix}", ROWS[fmt])
    src = DomainSource("d", DomainConfig(source=str(path), format=fmt))
    convs, skipped = src.conversations()
    assert len(convs) == len(ROWS[fmt]) and not skipped
    assert src.fingerprint.startswith("file:")
    roles = [m["role"] for m in convs[0]]
    assert roles[-1] == "assistant" and "user" in roles
    if fmt == "alpaca":
        assert convs[0][0]["content"] == "Reverse a string.\n\ns = 'ab'"
        assert convs[1][0]["content"] == "Say hi."


def test_gsm8k_train_file_and_the_rft_field_names(tmp_path):
    src = DomainSource("math", DomainConfig(source=str(GSM8K_TRAIN), format="gsm8k"))
    convs, skipped = src.conversations()
    assert len(convs) == 7473 and not skipped
    assert convs[0][1]["content"].endswith("#### 72")
    rft = _write(tmp_path / "rft.jsonl", [{"query": "1+1?", "response": "1+1=2\n#### 2"}])
    convs, _ = DomainSource("m", DomainConfig(source=str(rft), format="gsm8k")).conversations()
    assert convs == [[{"role": "user", "content": "1+1?"},
                      {"role": "assistant", "content": "1+1=2\n#### 2"}]]


def test_the_hub_loading_path_reads_a_dataset_directory(tmp_path):
    """A hub id goes through `datasets.load_dataset(source, name, split, data_files, revision)`;
    a local directory laid out like a hub repository exercises that same call offline."""
    repo = tmp_path / "org_dataset"
    (repo / "data").mkdir(parents=True)
    _write(repo / "data" / "train.jsonl", ROWS["alpaca"])
    src = DomainSource("code", DomainConfig(source=str(repo), format="alpaca", split="train"))
    assert src.fingerprint.startswith("dir:")
    convs, _ = src.conversations()
    assert len(convs) == 2
    missing = DomainSource("code", DomainConfig(source=str(tmp_path / "nope"), format="alpaca"))
    with pytest.raises(DataError, match=r"domains\.code\.source: cannot load"):
        missing.rows()


def test_malformed_rows_are_skipped_and_counted_by_reason(tmp_path):
    lines = [json.dumps({"question": "ok?", "answer": "yes #### 1"}),
             json.dumps({"question": "no answer"}),                       # missing_field
             json.dumps({"question": "typed", "answer": 42}),              # wrong_type
             json.dumps({"question": "blank", "answer": "   "}),           # empty_response
             "{not json",                                                  # wrong_type
             json.dumps(["a", "list"]),                                    # wrong_type
             json.dumps({"question": "long " * 400, "answer": "x"})]       # over_long
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    sweep = SweepConfig.model_validate({
        "name": "bad", "domains": {"math": {"source": str(path), "format": "gsm8k"}},
        "model": {"tiny": {"hidden_size": 16, "intermediate_size": 32, "layers": 1, "heads": 2},
                  "lab_vocab_size": 300},
        "train": {"max_length": 64}, "evaluate": {"math": {"n": 2}, "code": {"n": 2},
                                                  "general": {"n": 2}},
        "search": {"space": "unused.yaml"}})
    prepared = prepare(sweep, tmp_path / "cache")
    info = prepared.domains["math"]
    assert info["rows"] == 7 and info["size"] == 1
    assert info["skipped"] == {"missing_field": 1, "wrong_type": 3, "empty_response": 1,
                               "unknown_role": 0, "over_long": 1}
    assert set(info["skipped"]) == set(SKIP_REASONS)


def test_unknown_format_lab_domain_and_missing_source_are_config_errors(tmp_path):
    bad = {"name": "x", "domains": {"poetry": {"source": "lab"},
                                    "math": {"source": "lab", "format": "alpaca"},
                                    "code": {"source": "a.jsonl", "format": "csv"},
                                    "general": {"format": "sharegpt"}},
           "model": {"tiny": {}}, "search": {"space": "s.yaml"}}
    with pytest.raises(ConfigError) as exc:
        validate_data(SweepConfig, bad, "x.yaml")
    text = str(exc.value)
    assert "domains.code.format" in text and "csv" in text
    assert "domains.general" in text and "'source'" in text
    bad["domains"] = {"poetry": {"source": "lab"}, "math": {"source": "lab", "format": "alpaca"}}
    with pytest.raises(ConfigError) as exc:
        validate_data(SweepConfig, bad, "x.yaml")
    assert "domains.poetry.source: the lab has no domain 'poetry'" in str(exc.value)
    assert "domains.math.format: the lab's math domain is 'gsm8k'" in str(exc.value)


def test_presets_expand_to_the_studys_datasets_without_downloading():
    math = DomainConfig(preset="gsm8k_rft")
    assert math.format == "gsm8k" and "gsm8k-ScRel" in math.source
    code = DomainConfig(preset="code_alpaca")
    assert (code.source, code.format) == ("sahil2801/CodeAlpaca-20k", "alpaca")
    general = DomainConfig(preset="sharegpt", split="train")
    assert general.format == "sharegpt" and general.data_files.endswith(".json")
    assert DomainConfig(preset="gsm8k", subset="socratic").subset == "socratic"  # user wins


@pytest.fixture(scope="module")
def lab_tokenizer(tmp_path_factory):
    from sftmix_ray.data import lab

    texts = [t for d in lab.LAB_DOMAINS for r in lab.lab_train(d, 200)
             for t, _ in VicunaTemplate().segments(to_messages(r, LAB_FORMATS[d]))]
    return train_lab_tokenizer(texts, 400, tmp_path_factory.mktemp("tok"))


CONV = [{"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+3?"}, {"role": "assistant", "content": "It is 5."},
        {"role": "user", "content": "And 4+4?"}, {"role": "assistant", "content": "It is 8."}]


def _trained_text(tokenizer, td) -> str:
    ids, labels = td.sample(0)
    return tokenizer.decode([int(i) for i, lab in zip(ids, labels) if lab != IGNORE])


def test_labels_are_masked_on_prompt_tokens_with_the_vicuna_template(lab_tokenizer):
    td, skipped = tokenize_conversations([CONV], lab_tokenizer, VicunaTemplate(), 256)
    ids, labels = td.sample(0)
    assert not skipped and ids[0] == lab_tokenizer.bos_token_id and labels[0] == IGNORE
    assert _trained_text(lab_tokenizer, td) == " It is 5.</s> It is 8.</s>"
    prompt_ids = [int(i) for i, lab in zip(ids, labels) if lab == IGNORE]
    assert "USER: What is 2+3?" in lab_tokenizer.decode(prompt_ids)
    assert td.trainable[0] == int((labels != IGNORE).sum()) and not td.truncated[0]


def test_labels_are_masked_with_a_jinja_chat_template(lab_tokenizer, tmp_path):
    jinja = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}"
             "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\\n' }}{% endfor %}"
             "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    path = tmp_path / "chat.jinja"
    path.write_text(jinja)
    template = template_for(str(path), lab_tokenizer)
    assert isinstance(template, ChatTemplate) and not template.prepend_bos  # it writes <s> itself
    td, _ = tokenize_conversations([CONV], lab_tokenizer, template, 256)
    ids, _ = td.sample(0)
    assert list(ids).count(lab_tokenizer.bos_token_id) == 1
    assert _trained_text(lab_tokenizer, td) == "It is 5.</s>\nIt is 8.</s>\n"
    assert template.prompt("hi").endswith("<|user|>hi\n<|assistant|>")
    lab_tokenizer.chat_template = jinja  # 'auto' picks the tokenizer's own template
    try:
        assert isinstance(template_for("auto", lab_tokenizer), ChatTemplate)
    finally:
        lab_tokenizer.chat_template = None
    assert isinstance(template_for("auto", lab_tokenizer), VicunaTemplate)


def test_truncation_is_counted_and_overlong_skip_drops(lab_tokenizer):
    long = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "word " * 200}]
    short = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]
    td, skipped = tokenize_conversations([long, short], lab_tokenizer, VicunaTemplate(), 48)
    assert len(td) == 2 and td.truncated.tolist() == [True, False] and not skipped
    assert td.lengths()[0] == 48
    td, skipped = tokenize_conversations([long, short], lab_tokenizer, VicunaTemplate(), 48,
                                         overlong="skip")
    assert len(td) == 1 and skipped == [0]


# ------------------------------------------------------------------ cache and manifests


def _sweep_and_space(write_sweep, **changes):
    return load_sweep(write_sweep(**changes))


def test_each_domain_is_tokenized_once_and_only_changed_domains_again(write_sweep, tmp_path,
                                                                      lab_tokenizer):
    # A fixed tokenizer (as with any hub model); the lab's own BPE depends on every domain.
    lab_tokenizer.save_pretrained(str(tmp_path / "tok"))
    model = {"tiny": {"hidden_size": 32, "intermediate_size": 64, "layers": 1, "heads": 2,
                      "pretrain": None},
             "tokenizer": str(tmp_path / "tok")}
    sweep, space = _sweep_and_space(write_sweep, model=model)
    cache = tmp_path / "cache"
    first = prepare(sweep, cache)
    assert sorted(first.built) == ["code", "general", "math"]
    again = prepare(sweep, cache)
    assert again.built == [] and again.key == first.key
    domains = dict(sweep.model_dump()["domains"])
    domains["math"] = {"source": str(GSM8K_TRAIN), "format": "gsm8k"}
    changed, _ = _sweep_and_space(write_sweep, domains=domains, model=model)
    third = prepare(changed, cache)
    assert third.built == ["math"] and third.key != first.key
    assert third.domains["code"]["path"] == first.domains["code"]["path"]
    math = third.domains["math"]
    assert math["rows"] == 7473  # a 400-token vocabulary and max_length 160 cut many prompts
    assert math["size"] + math["skipped"]["over_long"] == 7473 and math["truncated"] > 0


def test_manifest_hash_is_a_function_of_data_and_seed(write_sweep, tmp_path):
    sweep, space = _sweep_and_space(write_sweep)
    prepared = prepare(sweep, tmp_path / "cache")
    point = TrialPoint(ratio={"math": 0.5, "code": 0.3, "general": 0.2}, amount=101,
                       strategy="dmt", k=0.25)
    stages, manifest = build_plan(point, space, prepared, seed=0, max_length=160)
    _, same = build_plan(point, space, prepare(sweep, tmp_path / "cache"), seed=0, max_length=160)
    _, other_seed = build_plan(point, space, prepared, seed=1, max_length=160)
    assert manifest["hash"] == same["hash"] and manifest["hash"] != other_seed["hash"]
    assert manifest["counts"] == {"math": 51, "code": 30, "general": 20}
    assert [s.counts for s in stages] == [{"math": 51, "code": 30},
                                             {"general": 20, "math": 13, "code": 8}]
    stage1, stage2 = manifest["stages"]
    assert stage1["domains"]["math"]["samples"] == 51
    assert stage2["domains"]["math"]["tokens"] < stage1["domains"]["math"]["tokens"]
    lengths = load_index(prepared.domains["math"]["path"])["lengths"]
    assert stage1["domains"]["math"]["tokens"] == int(lengths[select_indices("math", 200, 51,
                                                                             0)].sum())
    for d in ("math", "code", "general"):
        assert manifest["domains"][d]["fingerprint"].startswith("lab:")
        assert manifest["domains"][d]["skipped"]["missing_field"] == 0


def test_lab_tokenizer_does_not_depend_on_pool_size(write_sweep, tmp_path):
    """The lab BPE is fitted on the first 2000 conversations of each domain, and generators are
    prefix-stable, so growing a pool past that re-tokenizes only the grown domain."""
    base, _ = _sweep_and_space(write_sweep)
    domains = base.model_dump()["domains"]
    domains["math"]["pool"] = 2000
    sweep, _ = _sweep_and_space(write_sweep, domains=domains)
    domains["math"]["pool"] = 2500
    bigger, _ = _sweep_and_space(write_sweep, domains=domains)
    a, b = prepare(sweep, tmp_path / "cache"), prepare(bigger, tmp_path / "cache")
    assert a.tokenizer_dir == b.tokenizer_dir
    assert b.built == ["math"] and b.domains["math"]["size"] == 2500


def test_upsampling_shows_in_the_manifest_and_a_too_large_ask_fails(write_sweep, tmp_path):
    sweep, space = _sweep_and_space(write_sweep)
    prepared = prepare(sweep, tmp_path / "cache")
    point = TrialPoint(counts={"general": 500}, strategy="multi_task")
    with pytest.raises(ValueError, match=r"general.*500.*has 200.*upsample: true"):
        build_plan(point, space, prepared, seed=0)
    prepared.domains["general"]["upsample"] = True  # as `domains.general.upsample: true` sets it
    _, manifest = build_plan(point, space, prepared, seed=0)
    entry = manifest["stages"][0]["domains"]["general"]
    assert entry["samples"] == 500 and entry["repeats"] == 3


def test_a_template_that_is_not_prefix_stable_is_refused(lab_tokenizer):
    # Renders the newest turn first, so earlier renderings are not prefixes of later ones.
    reverse = ("{% for m in messages|reverse %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
               "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    with pytest.raises(ValueError, match="growing prefixes"):
        ChatTemplate(lab_tokenizer, reverse).segments(CONV)


def test_an_online_manifest_hash_carries_the_knobs(write_sweep, tmp_path):
    """Resume and the evaluation cache key on the manifest hash: an online trial's knobs are in
    it, so two online trials differing only in a knob never share a cached evaluation."""
    sweep, space = _sweep_and_space(write_sweep)
    space = space.model_copy(update={"strategies": {**space.strategies, "online": None}})
    prepared = prepare(sweep, tmp_path / "cache")
    knobs = {"method": "exp3", "step_size": 1.0, "smoothing": 0.1, "warmup": 0.1,
             "update_every": 4}
    point = TrialPoint(ratio={"math": 0.5, "code": 0.3, "general": 0.2}, amount=101,
                       strategy="online", online=knobs)
    stages, manifest = build_plan(point, space, prepared, seed=0, max_length=160)
    _, same = build_plan(point, space, prepared, seed=0, max_length=160)
    other = point.model_copy(update={"online": {**knobs, "step_size": 2.0}})
    _, moved = build_plan(other, space, prepared, seed=0, max_length=160)
    assert manifest["hash"] == same["hash"] != moved["hash"]
    assert [s.online for s in stages] == [knobs] and manifest["online"] == knobs
    (stage,) = manifest["stages"]
    assert stage["online"] == knobs and stage["draws"].startswith("v2")
    assert stage["domains"]["math"] == {"prior_samples": 51, "pool": 200}
