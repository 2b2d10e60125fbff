"""The model a sweep fine-tunes: a causal LM by hub id or path, or the lab's tiny Llama, which
starts from the lab base model (pretrained on the lab's free-form "web" text) unless told not to."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from .strict import Strict

# What the lab's web text is made of (data/lab_web.py), as relative weights.
WEB_KINDS = ("facts", "stories", "code", "chat")


class LabPretrainConfig(Strict):
    """How the lab base model is pretrained. The study fine-tunes a pretrained LLaMA; fine-tuning
    a randomly initialised model makes SFT do pre-training's job, so the lab pretrains first."""
    docs: int = Field(150_000, gt=0, description="web documents generated and trained on")
    epochs: int = Field(1, gt=0)
    lr: float = Field(3e-3, gt=0)
    batch_size: int = Field(32, gt=0, description="rows per step")
    row_tokens: int = Field(128, gt=8, description="tokens per row (documents packed end to end)")
    shares: dict[str, float] = Field(
        default_factory=lambda: {"facts": 4.0, "stories": 4.0, "code": 2.0, "chat": 1.0},
        description=f"relative weights of the web text kinds ({', '.join(WEB_KINDS)})")
    seed: int = Field(0, description="the base model's initial weights and document draw")

    @field_validator("shares")
    @classmethod
    def _known_kinds(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(WEB_KINDS))
        if unknown:
            raise ValueError(f"unknown web text kinds {unknown}; use {', '.join(WEB_KINDS)}")
        if any(w < 0 for w in value.values()) or not any(w > 0 for w in value.values()):
            raise ValueError("weights must be ≥ 0 and at least one > 0")
        return value


class TinyModelConfig(Strict):
    hidden_size: int = Field(128, gt=0)
    intermediate_size: int = Field(256, gt=0)
    layers: int = Field(2, gt=0)
    heads: int = Field(4, gt=0)
    max_positions: int = Field(512, gt=0)
    pretrain: LabPretrainConfig | None = Field(
        default_factory=LabPretrainConfig,
        description="the lab base model this tiny Llama starts from (built once, cached); null "
                    "fine-tunes from random weights")

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by heads "
                             f"{self.heads}")
        return self


class ModelConfig(Strict):
    name: str | None = Field(None, description="hub id or local path of a causal LM")
    tiny: TinyModelConfig | None = None
    tokenizer: str | None = Field(None, description="hub id or path; default: the model's own")
    lab_vocab_size: int = Field(1024, ge=300, description="vocabulary of the lab's local BPE")
    template: str = Field("auto", description="chat template: 'vicuna' (the study's), 'model' (the "
                          "tokenizer's own), a path to a .jinja file, or 'auto' (the tokenizer's "
                          "own if it has one, else vicuna)")

    @field_validator("template")
    @classmethod
    def _known_template(cls, value: str) -> str:
        if value not in ("auto", "vicuna", "model") and not value.endswith(".jinja"):
            raise ValueError("use 'auto', 'vicuna', 'model' or a path to a .jinja file")
        return value

    @model_validator(mode="after")
    def _one_model(self):
        if (self.name is None) == (self.tiny is None):
            raise ValueError("give exactly one of 'name' (hub id or path) or 'tiny' (config-built)")
        if self.tiny is not None and self.tiny.pretrain is not None and self.tokenizer is not None:
            raise ValueError("tiny.pretrain builds the lab base model with the lab's tokenizer; "
                             "set 'tiny: {pretrain: null}' to use your own 'tokenizer'")
        return self

    @property
    def lab_base(self) -> LabPretrainConfig | None:
        """How the lab base model is pretrained, or None when there is none to build."""
        return self.tiny.pretrain if self.tiny is not None else None
