"""Learnable prompts (LANIT's prompt learning): the template's context tokens are parameters.

Every prompt is the token sequence ``[sot] prefix word suffix [eot] pad...`` of a template
``"prefix {} suffix"``. The prefix tokens' embeddings are ``nn.Parameter``s, one set per
template, initialised to the VLM's token embeddings of the prefix (so an untrained learner
gives exactly the VLM's features of the written prompts); the domain word, the suffix and
the special tokens stay the VLM's fixed embeddings. The base prompt (the template without a
word) shares the template's learnable prefix, so it moves with the prompts, as officially.

With several templates (text augmentation) a domain's text feature is the mean over the
templates of the VLM's text features, then L2-normalised, like the official ``PromptMean``
(which averages the projections before normalising; i2ibench's VLM layer returns normalised
features, so here each template weighs the same).

The VLM is not a sub-module (it is frozen, large and shared): it is passed to ``forward``.
The fixed embeddings are non-persistent buffers, rebuilt from the VLM at construction, so a
state dict holds only the learned prefixes.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from i2ibench.data.prompts import split_template
from i2ibench.errors import ConfigError


class TextVLM(Protocol):
    """What the prompt learner needs from a vision-language model (i2ibench.vlm.clip.VLM)."""

    def tokenize(self, texts: list[str]) -> torch.Tensor: ...
    def token_embedding(self, tokens: torch.Tensor) -> torch.Tensor: ...
    def encode_text_embeddings(self, embeddings: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor: ...


def _content_ids(vlm: TextVLM, text: str) -> list[int]:
    """The token ids of ``text`` without start/end tokens (the end token has the largest id)."""
    if not text:
        return []
    ids = vlm.tokenize([text])[0]
    eot = int(ids.argmax())
    return ids[1:eot].tolist()


class PromptLearner(nn.Module):
    """Domain and base prompts of ``templates`` x ``words`` with learnable template prefixes."""

    def __init__(self, vlm: TextVLM, templates: Sequence[str], words: Sequence[str]):
        super().__init__()
        if not templates or not words:
            raise ConfigError("a prompt learner needs at least one template and one domain word")
        self.templates = list(templates)
        self.words = list(words)
        probe = vlm.tokenize([""])[0]
        context_length = probe.numel()
        sot, eot = int(probe[0]), int(probe.max())
        word_ids = [_content_ids(vlm, w) for w in self.words]
        device = probe.device

        self.prefix_lengths: list[int] = []
        self.ctx = nn.ParameterList()
        tokens_all = []
        for template in self.templates:
            prefix, suffix = split_template(template)
            prefix_ids, suffix_ids = _content_ids(vlm, prefix), _content_ids(vlm, suffix)
            rows = [[sot] + prefix_ids + w + suffix_ids + [eot] for w in word_ids]
            rows.append([sot] + prefix_ids + suffix_ids + [eot])  # base prompt, last row
            longest = max(len(r) for r in rows)
            if longest > context_length:
                raise ConfigError(f"prompt '{template}' with its longest domain word needs {longest} tokens; "
                                  f"the VLM's context is {context_length}")
            tok = torch.zeros(len(rows), context_length, dtype=torch.long, device=device)
            for i, r in enumerate(rows):
                tok[i, :len(r)] = torch.tensor(r, device=device)
            tokens_all.append(tok)
            self.prefix_lengths.append(len(prefix_ids))
            with torch.no_grad():
                init = vlm.token_embedding(tok[:1, 1:1 + len(prefix_ids)])[0]
            self.ctx.append(nn.Parameter(init.detach().clone().float()))
        tokens = torch.stack(tokens_all)  # [T, N + 1, L]
        with torch.no_grad():
            fixed = vlm.token_embedding(tokens.flatten(0, 1)).unflatten(0, tokens.shape[:2])
        self.register_buffer("tokens", tokens, persistent=False)
        self.register_buffer("fixed_embeddings", fixed.detach().float().clone(), persistent=False)

    @property
    def num_domains(self) -> int:
        return len(self.words)

    def embeddings(self, template_index: int) -> torch.Tensor:
        """Token embeddings ``[N + 1, L, D]`` of one template's prompts (base prompt last)."""
        fixed = self.fixed_embeddings[template_index]
        ctx = self.ctx[template_index]
        n_ctx = self.prefix_lengths[template_index]
        rows = fixed.size(0)
        return torch.cat([fixed[:, :1], ctx.to(fixed.dtype).unsqueeze(0).expand(rows, -1, -1),
                          fixed[:, 1 + n_ctx:]], dim=1)

    def forward(self, vlm: TextVLM) -> tuple[torch.Tensor, torch.Tensor]:
        """``(domain_features [N, E], base_feature [E])``, L2-normalised, mean over templates."""
        feats = [vlm.encode_text_embeddings(self.embeddings(t), self.tokens[t]).float()
                 for t in range(len(self.templates))]
        mean = F.normalize(torch.stack(feats).mean(0), dim=-1)
        return mean[:-1], mean[-1]


def similarities(image_features: torch.Tensor, domain_features: torch.Tensor,
                 base_feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities ``[n, N]`` of normalised image features to each domain prompt, and ``[n]`` to the base."""
    image_features = image_features.float()
    return image_features @ domain_features.t(), image_features @ base_feature
