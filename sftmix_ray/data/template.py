"""The Vicuna/FastChat prompt template the study trained with, rendered as segments.

A conversation renders to (text, trainable) segments so that tokenizing segment by segment gives
the exact label mask (loss on assistant turns only), and an evaluation prompt is tokenized exactly
as the same prefix was in training.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VicunaTemplate:
    system: str = ""
    eos: str = "</s>"

    def segments(self, messages: list[dict]) -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        system = self.system
        for m in messages:
            if m["role"] == "system":
                system = m["content"]
        prefix = f"{system}\n\n" if system else ""
        for m in messages:
            if m["role"] == "user":
                out.append((f"{prefix}USER: {m['content']}\nASSISTANT:", False))
                prefix = "\n"
            elif m["role"] == "assistant":
                out.append((f" {m['content']}{self.eos}", True))
        return out

    def prompt(self, user_turn: str) -> str:
        """The text a model sees before it answers a one-turn question."""
        return self.segments([{"role": "user", "content": user_turn}])[0][0]
