"""Tokenizers: the model's own (hub id or local path), or the lab's, trained locally on lab text."""

from __future__ import annotations

from pathlib import Path

LAB_SPECIALS = ["<pad>", "<s>", "</s>"]


def train_lab_tokenizer(texts: list[str], vocab_size: int, out_dir: Path):
    """A byte-level BPE fitted to the lab corpus: no download, and short sequences for a tiny
    model."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=LAB_SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>")
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir))
    return fast


def load_tokenizer(path_or_id: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path_or_id)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
