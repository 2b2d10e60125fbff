"""Chat templates rendered as (text, trainable) segments.

Tokenizing segment by segment gives the exact label mask (loss on assistant turns only), and an
evaluation prompt is tokenized exactly as the same prefix was in training. Two kinds: the
Vicuna/FastChat template the study trained with, and any Jinja chat template (the tokenizer's own or
a configured file), split into segments by rendering growing prefixes of the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..digests import bytes_digest


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class VicunaTemplate:
    system: str = ""
    eos: str = "</s>"
    prepend_bos: bool = True

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

    def conversation_prompt(self, messages: list[dict]) -> str:
        """The text before the model's next turn in a conversation ending with a user turn
        (MT-Bench's second turn)."""
        return "".join(text for text, _ in self.segments(messages))

    def spec(self) -> dict:
        return {"kind": "vicuna", "system": self.system, "eos": self.eos}


class ChatTemplate:
    """A Jinja chat template applied through the tokenizer. Segments come from rendering
    messages[:i] with the generation prompt and messages[:i+1] without it: the difference is the
    assistant turn. A template whose renderings are not prefixes of each other cannot be masked
    this way, and is refused with a clear error rather than trained with a wrong mask."""

    def __init__(self, tokenizer, source: str | None = None):
        self.tokenizer = tokenizer
        self.source = source or tokenizer.chat_template
        if not self.source:
            raise TemplateError("the tokenizer has no chat_template; use template: vicuna")
        bos = tokenizer.bos_token or ""
        # Templates that write the BOS token themselves must not get a second one.
        self.prepend_bos = not (bos and self._render([{"role": "user", "content": "x"}],
                                                     True).startswith(bos))

    def _render(self, messages: list[dict], generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=generation_prompt,
                                                  chat_template=self.source)

    def segments(self, messages: list[dict]) -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        done = ""
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            before = self._render(messages[:i], True) if i else ""
            upto = self._render(messages[:i + 1], False)
            if not before.startswith(done) or not upto.startswith(before):
                raise TemplateError("the chat template does not render conversations as growing "
                                    "prefixes, so assistant turns cannot be masked; use "
                                    "template: vicuna or a .jinja file that does")
            if len(before) > len(done):
                out.append((before[len(done):], False))
            out.append((upto[len(before):], True))
            done = upto
        return out

    def prompt(self, user_turn: str) -> str:
        return self._render([{"role": "user", "content": user_turn}], True)

    def conversation_prompt(self, messages: list[dict]) -> str:
        return self._render(messages, True)

    def spec(self) -> dict:
        return {"kind": "jinja", "sha256": bytes_digest(self.source.encode(), length=64)}


def template_for(choice: str, tokenizer):
    """`model.template` → a template object (see ModelConfig.template)."""
    if choice == "vicuna":
        return VicunaTemplate(eos=tokenizer.eos_token or "</s>")
    if choice.endswith(".jinja"):
        path = Path(choice)
        if not path.is_file():
            raise TemplateError(f"model.template: no such file {choice}")
        return ChatTemplate(tokenizer, path.read_text())
    if choice == "model" or getattr(tokenizer, "chat_template", None):
        return ChatTemplate(tokenizer)
    return VicunaTemplate(eos=tokenizer.eos_token or "</s>")
