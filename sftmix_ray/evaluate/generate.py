"""Batched greedy generation: prompts left-padded, longest first so batches waste little padding."""

from __future__ import annotations


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 64,
             stop: tuple[str, ...] = (), prepend_bos: bool = True) -> list[str]:
    import torch

    if not prompts:
        return []
    # As in training (data/tokenize.py): a template that writes its own BOS gets no second one.
    bos = [tokenizer.bos_token_id] if prepend_bos and tokenizer.bos_token_id is not None else []
    encoded = [bos + e for e in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    outputs: list[str] = [""] * len(prompts)
    pad = tokenizer.pad_token_id
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            width = max(len(encoded[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                seq = encoded[i]
                ids[row, width - len(seq):] = torch.tensor(seq)
                mask[row, width - len(seq):] = 1
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=pad,
                                 eos_token_id=tokenizer.eos_token_id)
            texts = tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
            for i, text in zip(idx, texts):
                for s in stop:
                    text = text.split(s, 1)[0]
                # The template puts one space after "ASSISTANT:"; code indentation must survive.
                outputs[i] = text.removeprefix(" ").rstrip()
    model.train(was_training)
    return outputs
