"""Lab 02 exercises: build ``TiedLinear``, detect a tie by shared storage, repair a broken save/load function."""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from xtlab.course import Exercise, ExerciseSet, Mistake, Verdict, call, describe
from xtlab.diagnostics.checkpoints import load_checkpoint, save_checkpoint
from xtlab.labs.weight_tying.checkpoints import broken_save_and_load
from xtlab.labs.weight_tying.models import STYLES, ModelSize, build_model, pair_verdict, tie_keys, tie_verdict

# num_tokens != dim, so a forgotten transpose fails instead of passing by accident
_SIZE = ModelSize(num_tokens=24, max_seq_len=8, dim=16, depth=1, heads=2)


# --- exercise 1: TiedLinear -----------------------------------------------------------------------------------

def _hidden(seed: int) -> torch.Tensor:
    return torch.randn(2, 5, _SIZE.dim, generator=torch.Generator().manual_seed(seed))


def _with_layer(tied_linear, seed: int, device: str | None = None) -> tuple[nn.Module, object]:
    """An untied tiny model whose ``to_logits`` is replaced by ``tied_linear(model.token_emb)``."""
    model = build_model("none", seed=seed, size=_SIZE, device=device)
    layer = call(tied_linear, model.token_emb, copy_args=False)  # a copy would tie to another embedding
    if isinstance(layer, nn.Module):
        model.to_logits = layer
    return model, layer


def _expected(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    return F.linear(hidden, model.token_emb.weight.detach())


def _matches(output, model: nn.Module, hidden: torch.Tensor) -> bool:
    return isinstance(output, torch.Tensor) and output.shape == hidden.shape[:-1] + (_SIZE.num_tokens,) and \
        torch.allclose(output.detach(), _expected(model, hidden), atol=1e-6)


def check_tied_linear(tied_linear: type) -> Verdict:
    """Check a ``TiedLinear`` class: built as ``TiedLinear(embedding)``, it maps (..., dim) to (..., num_tokens)
    with the embedding's CURRENT weight, passes gradients to it, adds no state_dict key, and keeps the tie through
    a state_dict round trip, ``load_state_dict(assign=True)``, ``copy.deepcopy`` and meta -> ``to_empty``."""
    model, layer = _with_layer(tied_linear, seed=0)
    if not isinstance(layer, nn.Module):
        return Verdict.make_try_again(f"TiedLinear(embedding) built {describe(layer)}, not an nn.Module",
                                 "subclass nn.Module and call super().__init__() first")
    hidden, embedding = _hidden(0), model.token_emb.weight
    output = call(layer, hidden, copy_args=False)
    if not _matches(output, model, hidden):
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else describe(output)
        return Verdict.make_try_again(f"layer(x) for x of shape {tuple(hidden.shape)} returned {got}, expected "
                                 f"x @ embedding.weight.T of shape (2, 5, {_SIZE.num_tokens})",
                                 "F.linear(x, W) computes x @ W.T; the embedding's weight is (num_tokens, dim)")
    with torch.no_grad():
        embedding.mul_(2.0)
    if not _matches(call(layer, hidden, copy_args=False), model, hidden):
        return Verdict.make_try_again("after the embedding's weight was doubled, your layer's output did not follow: "
                                 "it does not follow the embedding", "read the embedding's weight inside forward")
    embedding.grad = None
    output = call(layer, hidden, copy_args=False)
    if output.requires_grad:
        output.sum().backward()
    expected_grad = hidden.reshape(-1, _SIZE.dim).sum(0).expand(_SIZE.num_tokens, -1)
    if embedding.grad is None or not torch.allclose(embedding.grad, expected_grad, atol=1e-5):
        return Verdict.make_try_again("no gradient reached the embedding's weight through your layer (or a wrong one)",
                                 "use the weight itself in forward: .detach() or .data cut it from autograd")
    keys = tie_keys(model)
    if keys != ["token_emb.weight"]:
        return Verdict.make_try_again(f"the model's state_dict holds the tie under {keys}: a second key can disagree "
                                 "with the first in a checkpoint, and safetensors refuses shared memory",
                                 "keep the embedding in a plain tuple, never as an attribute nn.Module registers")
    return _check_tied_linear_survives(tied_linear, model, hidden)


def _check_tied_linear_survives(tied_linear: type, model: nn.Module, hidden: torch.Tensor) -> Verdict:
    state = {key: value.clone() for key, value in model.state_dict().items()}
    loaded, _ = _with_layer(tied_linear, seed=1)
    loaded.load_state_dict(state)
    assigned, _ = _with_layer(tied_linear, seed=2)
    call(assigned.to_logits, hidden)  # a layer that caches the weight on its first call caches the old one now
    assigned.load_state_dict(copy.deepcopy(state), assign=True)  # the embedding gets a new Parameter
    for how, other in (("a state_dict round trip", loaded), ("load_state_dict(assign=True)", assigned)):
        if not _matches(call(other.to_logits, hidden, copy_args=False), other, hidden):
            return Verdict.make_try_again(f"after {how} your layer no longer multiplies by the embedding's weight",
                                     "look the weight up through the embedding at every call; never store it")
    copied = copy.deepcopy(model)
    with torch.no_grad():
        model.token_emb.weight.mul_(3.0)
        copied.token_emb.weight.add_(1.0)
    if not _matches(call(copied.to_logits, hidden, copy_args=False), copied, hidden):
        return Verdict.make_try_again("after copy.deepcopy the copy's output does not read the copy's own embedding",
                                 "hold the embedding in an object deepcopy copies (a tuple), not in a closure")
    meta, _ = _with_layer(tied_linear, seed=3, device="meta")
    meta.to_empty(device="cpu")
    meta.load_state_dict(state)
    if not _matches(call(meta.to_logits, hidden, copy_args=False), meta, hidden):
        return Verdict.make_try_again("built on the meta device and allocated with to_empty, your layer lost the tie",
                                 "read the embedding's weight at call time")
    return Verdict.make_pass("TiedLinear follows the embedding, passes it gradients, adds no state_dict key, and keeps "
                          "the tie through a state_dict round trip, assign=True, deepcopy and meta -> to_empty")


class _GivenInit(nn.Module):
    """The notebook's given ``__init__``: the embedding held in a tuple."""

    def __init__(self, embedding: nn.Module):
        super().__init__()
        self.tied = (embedding,)


class _TiedLinearReference(_GivenInit):
    def forward(self, x):
        return F.linear(x, self.tied[0].weight)


class _NoTranspose(_GivenInit):
    def forward(self, x):
        return x @ self.tied[0].weight


class _CallsTheEmbedding(_GivenInit):
    def forward(self, x):
        return self.tied[0](x)


class _Detached(_GivenInit):
    def forward(self, x):
        return F.linear(x, self.tied[0].weight.detach())


class _CachesTheWeight(_GivenInit):
    def forward(self, x):
        if not hasattr(self, "cached"):
            self.cached = self.tied[0].weight  # a Parameter: nn.Module registers it
        return F.linear(x, self.cached)


class _RegisteredTiedLinear(nn.Module):
    """The article's TiedLinear: the embedding registered as a submodule."""

    def __init__(self, embedding: nn.Module):
        super().__init__()
        self.tied_module = embedding

    def forward(self, x):
        return F.linear(x, self.tied_module.weight)


class _CopiedWeight(nn.Module):
    def __init__(self, embedding: nn.Module):
        super().__init__()
        self.weight = nn.Parameter(embedding.weight.detach().clone())

    def forward(self, x):
        return F.linear(x, self.weight)


# --- exercise 2: a tie detector by shared storage -------------------------------------------------------------

_HINTS = {
    "tied": "the same object: compare with `a is b`",
    "half-tied": "different objects, same memory: compare a.untyped_storage().data_ptr() of both",
    "untied": "separate memory: equal values (torch.equal) do not make a tie",
}


def _tie_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    weight = nn.Parameter(torch.randn(4, 3, generator=torch.Generator().manual_seed(0)))
    other = nn.Parameter(torch.randn(4, 3, generator=torch.Generator().manual_seed(1)))
    return [
        ("the same Parameter twice", weight, weight),
        ("two Parameters over one storage (load_state_dict(assign=True) makes these)", weight,
         nn.Parameter(weight.data)),
        ("a second Parameter viewing all of the first's memory", weight, nn.Parameter(weight.data[:])),
        ("an equal-valued clone (same numbers, separate memory)", weight, nn.Parameter(weight.detach().clone())),
        ("two unrelated Parameters", weight, other),
    ]


def check_tie_state(tie_state: Callable[[torch.Tensor, torch.Tensor], str]) -> Verdict:
    """Check ``tie_state(a, b) -> "tied" | "half-tied" | "untied"`` on five pairs of tensors."""
    for description, a, b in _tie_cases():
        expected = pair_verdict(a, b)  # judged before the learner's code could touch a or b
        answer = call(tie_state, a, b, copy_args=False)  # a copy would not keep the identity being tested
        if answer != expected:
            return Verdict.make_try_again(f"for {description} you answered {describe(answer)}, expected {expected!r}",
                                     _HINTS[expected])
    return Verdict.make_pass("tie_state tells tied, half-tied and untied apart on all five pairs")


def _tie_state_reference(a, b):
    if a is b:
        return "tied"
    same_memory = a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    return "half-tied" if same_memory else "untied"


# --- exercise 3: repair a broken save/load function -----------------------------------------------------------

REPAIR_STYLES = ("none", "naive", "tied_linear")


def check_save_and_load(save_and_load: Callable) -> Verdict:
    """Check ``save_and_load(model, folder, build) -> model``: write ``model`` to a file in ``folder``, load it into
    ``build()``'s model and return that one; for every style the result gives the saved logits and is as tied as
    a freshly built one."""
    tokens = torch.randint(0, _SIZE.num_tokens, (2, 6), generator=torch.Generator().manual_seed(0))
    for style in REPAIR_STYLES:
        source, built = build_model(style, seed=0, size=_SIZE), []

        def build(style=style, built=built):
            built.append(build_model(style, seed=len(built) + 1, size=_SIZE))
            return built[-1]

        with tempfile.TemporaryDirectory() as folder:
            result = call(save_and_load, source, folder, build)
            wrote = bool(os.listdir(folder))
        if not any(result is model for model in built):
            return Verdict.make_try_again(f"for a {STYLES[style]} model save_and_load returned {describe(result)}, not "
                                     "the model build() made", "call build() once, load into it, and return it")
        if not wrote:
            return Verdict.make_try_again(f"for a {STYLES[style]} model no file was written in folder",
                                     "save the model to a file in the folder you are given, then load that file")
        with torch.no_grad():
            same = torch.allclose(result.eval()(tokens), source.eval()(tokens))
        if not same:
            return Verdict.make_try_again(
                f"for a {STYLES[style]} model the loaded model's logits differ from the saved "
                                     "model's", "every weight must be saved and loaded, the output's too")
        verdict, expected = tie_verdict(result), tie_verdict(build_model(style, size=_SIZE))
        if verdict != expected:
            return Verdict.make_try_again(
                f"for a {STYLES[style]} model the loaded embedding and output are {verdict}, but "
                                     f"a freshly built one is {expected}",
                                     "load_state_dict(assign=True) swaps in new Parameters; copy into the old ones")
    return Verdict.make_pass(f"save_and_load restores the logits and the tie for {', '.join(REPAIR_STYLES)}")


def _save_and_load_reference(model, folder, build):
    path = os.path.join(folder, "model.safetensors")
    save_checkpoint(model, path)
    loaded = build()
    load_checkpoint(loaded, path)
    return loaded


def _torch_save_with_assign(model, folder, build):
    path = os.path.join(folder, "model.pt")
    torch.save(model.state_dict(), path)
    loaded = build()
    loaded.load_state_dict(torch.load(path, weights_only=True), assign=True)
    return loaded


def _drops_the_output_key(model, folder, build):
    path = os.path.join(folder, "model.safetensors")
    save_file({k: v for k, v in model.state_dict().items() if k != "to_logits.weight"}, path)
    loaded = build()
    loaded.load_state_dict(load_file(path), strict=False)
    return loaded


def _returns_the_original(model, folder, build):
    torch.save(model.state_dict(), os.path.join(folder, "model.pt"))
    return model


EXERCISES = ExerciseSet(
    Exercise(
        name="TiedLinear",
        prompt="TiedLinear.forward(x): return x multiplied by the tied embedding's weight as it is NOW, "
               "x (..., dim) -> (..., num_tokens); __init__ already holds the embedding in the tuple self.tied",
        checker=check_tied_linear,
        reference=_TiedLinearReference,
        mistakes=(
            Mistake("x @ W without the transpose", _NoTranspose, "cannot be multiplied"),
            Mistake("calls the embedding instead of using its weight", _CallsTheEmbedding, "indices"),
            Mistake("detaches the weight", _Detached, "no gradient"),
            Mistake("caches the weight on the first call", _CachesTheWeight, "to_logits.cached"),
            Mistake("registers the embedding (the article's TiedLinear)", _RegisteredTiedLinear,
                    "to_logits.tied_module.weight"),
            Mistake("copies the weight at construction", _CopiedWeight, "does not follow"),
        ),
    ),
    Exercise(
        name="tie_state",
        prompt='tie_state(a, b): "tied" when a and b are the same Parameter, "half-tied" when they are distinct '
               'Parameters over the same memory, "untied" otherwise',
        checker=check_tie_state,
        reference=_tie_state_reference,
        mistakes=(
            Mistake("equal values taken for a tie",
                    lambda a, b: "tied" if torch.equal(a, b) else "untied",
                    "answered str 'tied', expected 'half-tied'"),
            Mistake("identity only: half-ties missed",
                    lambda a, b: "tied" if a is b else "untied", "answered str 'untied', expected 'half-tied'"),
            Mistake("shared memory only: true ties called half-tied",
                    lambda a, b: "half-tied" if a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
                    else "untied", "a is b"),
        ),
    ),
    Exercise(
        name="save_and_load",
        prompt="save_and_load(model, folder, build): save model to a file in folder, load that file into build()'s "
               "model and return it, so that for every tying style the loaded model gives the same logits and is "
               "as tied as a freshly built one (repair lab.broken_save_and_load)",
        checker=check_save_and_load,
        reference=_save_and_load_reference,
        mistakes=(
            Mistake("the broken function as given", broken_save_and_load, "share memory"),
            Mistake("torch.save, then load_state_dict(assign=True)", _torch_save_with_assign, "half-tied"),
            Mistake("drops the output's key to dodge safetensors", _drops_the_output_key, "logits differ"),
            Mistake("returns the original model", _returns_the_original, "build()"),
        ),
    ),
)
