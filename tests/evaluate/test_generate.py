"""Generation: batching changes nothing but speed, sampling gives n completions, stop strings cut,
and prompts sharded over two gloo ranks gather to the single-process result."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from sftmix_ray.data.template import VicunaTemplate
from sftmix_ray.evaluate.generate import Sampling, generate, generate_sharded

PROMPTS = [VicunaTemplate().prompt(q) for q in
           ["What is 2+3?", "Say hello.", "Write a function that doubles x.",
            "A long question " * 6, "Tom has 3 apples and buys 4 more. How many?"]]


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from sftmix_ray.data.tokenizer import load_tokenizer

    return AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), \
        load_tokenizer(str(tiny_model_dir))


def test_batched_greedy_equals_one_at_a_time(model_and_tokenizer):
    model, tok = model_and_tokenizer
    s = Sampling(max_new_tokens=12)
    batched = generate(model, tok, PROMPTS, s, batch_size=8)
    single = [generate(model, tok, [p], s, batch_size=1)[0] for p in PROMPTS]
    assert batched == single
    assert all(len(o) == 1 for o in batched) and any(o[0] for o in batched)


def test_sampling_gives_n_completions_and_stop_strings_cut(model_and_tokenizer):
    model, tok = model_and_tokenizer
    outs = generate(model, tok, PROMPTS[:2], Sampling(max_new_tokens=10, samples=4,
                                                      temperature=1.0, seed=1))
    assert [len(o) for o in outs] == [4, 4]
    assert len(set(outs[0])) > 1  # an untrained model at temperature 1 does not repeat itself
    again = generate(model, tok, PROMPTS[:2], Sampling(max_new_tokens=10, samples=4,
                                                       temperature=1.0, seed=1))
    assert again == outs  # seeded
    full = generate(model, tok, PROMPTS[:1], Sampling(max_new_tokens=12))[0][0]
    assert len(full) > 2
    cut_at = full[2:4]
    cut = generate(model, tok, PROMPTS[:1], Sampling(max_new_tokens=12, stop=(cut_at,)))[0][0]
    assert cut == full.split(cut_at, 1)[0].rstrip() and cut_at not in cut
    with pytest.raises(ValueError, match="temperature"):
        generate(model, tok, PROMPTS[:1], Sampling(samples=2))


def _rank_main(rank: int, world: int, port: int, model_dir: str, queue) -> None:
    import torch.distributed as dist
    from transformers import AutoModelForCausalLM

    from sftmix_ray.data.tokenizer import load_tokenizer

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        out = generate_sharded(model, load_tokenizer(model_dir), PROMPTS,
                               Sampling(max_new_tokens=12), batch_size=4, prepend_bos=True,
                               rank=rank, world=world)
        queue.put((rank, out))
    finally:
        dist.destroy_process_group()


def test_sharded_generation_over_two_ranks_gathers_everything(model_and_tokenizer,
                                                              tiny_model_dir):
    model, tok = model_and_tokenizer
    expected = generate(model, tok, PROMPTS, Sampling(max_new_tokens=12), batch_size=4)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_rank_main, args=(r, 2, port, str(tiny_model_dir), queue))
             for r in range(2)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert results[0] == expected and results[1] == expected
