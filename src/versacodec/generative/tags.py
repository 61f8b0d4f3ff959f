"""Semantic tags as the denoiser's cross-attention condition.

Tags are ImageNet-1k class ids chosen by the encoder-side tagger. Each class starts from a
frozen semantic vector — the tagger's own classification weights for that class, reduced by PCA
— mapped through a learned projection, so classes never seen in training still land near related
ones. Unused slots, and the whole set for the unconditional (CFG) branch, are a learned null token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from versacodec.modeling import PretrainedModule

NUM_CLASSES = 1000


@dataclass(frozen=True)
class TagEmbeddingConfig:
    embedding_dim: int = 128  # the denoiser's cross_attention_dim
    semantic_dim: int = 64
    max_tags: int = 5


class TagEmbedding(PretrainedModule):
    config_class = TagEmbeddingConfig

    def __init__(self, config: TagEmbeddingConfig, class_vectors: torch.Tensor | None = None) -> None:
        super().__init__(config)
        vectors = torch.zeros(NUM_CLASSES, config.semantic_dim) if class_vectors is None else class_vectors
        if vectors.shape != (NUM_CLASSES, config.semantic_dim):
            raise ValueError(f"class vectors must be {NUM_CLASSES}x{config.semantic_dim}")
        self.register_buffer("class_vectors", vectors.float())
        self.projection = nn.Sequential(nn.Linear(config.semantic_dim, config.embedding_dim), nn.SiLU(),
                                        nn.Linear(config.embedding_dim, config.embedding_dim))
        self.null = nn.Parameter(torch.randn(config.embedding_dim) * 0.02)
        self.position = nn.Parameter(torch.randn(config.max_tags, config.embedding_dim) * 0.02)

    def forward(self, tags: torch.Tensor) -> torch.Tensor:
        """tags: (B, max_tags) class ids, −1 for empty slots → (B, max_tags, embedding_dim)."""
        present = tags >= 0
        embedded = self.projection(self.class_vectors[tags.clamp_min(0)])
        tokens = torch.where(present.unsqueeze(-1), embedded, self.null.expand_as(embedded))
        return tokens + self.position

    def pad(self, tag_lists: list[list[int]], device: torch.device | None = None) -> torch.Tensor:
        """Lists of class ids → (B, max_tags) with −1 padding (extra tags are dropped)."""
        rows = [list(tags)[: self.config.max_tags] for tags in tag_lists]
        rows = [row + [-1] * (self.config.max_tags - len(row)) for row in rows]
        return torch.tensor(rows, dtype=torch.long, device=device)


def semantic_class_vectors(classifier_weight: torch.Tensor, dim: int) -> torch.Tensor:
    """PCA of the tagger's (1000, features) classification weights, scaled to unit variance."""
    centred = classifier_weight.double() - classifier_weight.double().mean(0, keepdim=True)
    _, _, basis = torch.linalg.svd(centred, full_matrices=False)
    projected = centred @ basis[:dim].T
    return (projected / projected.std(0, keepdim=True)).float()
