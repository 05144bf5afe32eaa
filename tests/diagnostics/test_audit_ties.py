"""The tie row finds a tie however it is made: a shared Parameter, an output module that holds the embedding module,
or a function that reads the embedding's weight; and the deep copy of each is judged by what it really calls."""

import torch
import torch.nn.functional as F
from torch import nn

from tests.diagnostics.audit_models import head_batch, head_forward, head_loss
from xtlab.diagnostics.model_audit import FAILS, HOLDS, ModelAdapter, audit


class HoldsEmbedding(nn.Module):
    """An output module that keeps the embedding module and reads its weight."""

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        self.embedding = embedding

    def forward(self, x):
        return x @ self.embedding.weight.t()


class Tied(nn.Module):
    def __init__(self, how: str):
        super().__init__()
        self.num_tokens = 10
        self.embed = nn.Embedding(10, 8)
        self.mix = nn.Linear(8, 8)
        if how == "parameter":
            self.out = nn.Linear(8, 10, bias=False)
            self.out.weight = self.embed.weight
        elif how == "module":
            self.out = HoldsEmbedding(self.embed)
        else:  # a function reading the embedding, as x-transformers' to_logits
            self.out = lambda t: F.linear(t, self.embed.weight)

    def forward(self, tokens):
        return self.out(torch.tanh(self.mix(self.embed(tokens))))


def adapter():
    return ModelAdapter("tied", head_batch, head_loss, head_forward, embedding="embed", output="out")


def test_each_way_of_tying_is_seen_and_the_function_tie_is_lost_by_deepcopy():
    torch.manual_seed(0)
    cards = {how: audit(Tied(how), adapter(), ddp=False, steps=2) for how in ("parameter", "module", "function")}
    for how, card in cards.items():
        assert card.row("tying_paths").ran, (how, card.row("tying_paths"))  # a tie was found, so the paths ran
    assert "copy.deepcopy: tied" in cards["parameter"].row("tying_paths").evidence
    assert "copy.deepcopy: tied" in cards["module"].row("tying_paths").evidence
    assert "copy.deepcopy: untied" in cards["function"].row("tying_paths").evidence
    assert cards["module"].status("deepcopy_independence") == HOLDS
    assert cards["function"].status("deepcopy_independence") == FAILS
    assert "(embed.weight)" in cards["function"].row("deepcopy_independence").evidence
