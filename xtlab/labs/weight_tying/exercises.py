"""Lab 02 exercises: a ``fully_shard`` grouping that keeps the tie (in ``fsdp_exercise``, judged on two gloo ranks),
build ``TiedLinear`` in full, detect a tie by shared storage, and load a naive-tied checkpoint into a correctly tied
model without picking one of two disagreeing tensors in silence."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xtlab.course import (
    Case,
    Exercise,
    ExerciseSet,
    Mistake,
    Untouched,
    Verdict,
    call,
    case_failed,
    compare_gradients,
    compare_values,
    describe,
    gradients,
    seeded_generator,
)
from xtlab.labs.weight_tying.fsdp_exercise import GROUPING_EXERCISE
from xtlab.labs.weight_tying.models import ModelSize, build_model, pair_verdict, tie_verdict

EMBEDDING_KEY, OUTPUT_KEY = "token_emb.weight", "to_logits.weight"


# --- exercise 1: TiedLinear, the whole class -------------------------------------------------------------------

@dataclass(frozen=True)
class LayerSetting:
    """One hidden model for the TiedLinear checker (num_tokens != dim, so a wrong transpose cannot pass)."""

    num_tokens: int
    dim: int
    scale: float
    bias: bool
    seed: int

    @property
    def size(self) -> ModelSize:
        return ModelSize(num_tokens=self.num_tokens, max_seq_len=8, dim=self.dim, depth=1, heads=1)


LAYER_CASES = (
    Case("24 tokens, dim 16, scale 1, no bias", (LayerSetting(24, 16, 1.0, False, 0),)),
    Case("11 tokens, dim 6, scale 0.25, with a bias", (LayerSetting(11, 6, 0.25, True, 1),)),
    Case("1 token, dim 3, scale 2, with a bias", (LayerSetting(1, 3, 2.0, True, 2),), edge=True),
)


def _model_with_layer(answer, setting: LayerSetting, device: str = "cpu"):
    """A tiny untied model whose ``to_logits`` is the learner's ``TiedLinear(model.token_emb, scale, bias)``."""
    model = build_model("none", seed=setting.seed, size=setting.size, device=device)
    layer = call(answer, model.token_emb, scale=setting.scale, bias=setting.bias, copy_args=False)
    if isinstance(layer, nn.Module):
        model.to_logits = layer
    return model, layer


def _bias_of(layer: nn.Module):
    return dict(layer.named_parameters()).get("bias")


def _expected_logits(model: nn.Module, hidden: torch.Tensor, setting: LayerSetting) -> torch.Tensor:
    logits = F.linear(hidden, model.token_emb.weight) * setting.scale
    bias = _bias_of(model.to_logits) if setting.bias else None
    return logits if bias is None else logits + bias


def _hidden(setting: LayerSetting, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(2, 5, setting.dim, generator=seeded_generator(setting.seed + 100)).to(dtype)


def _logits_problem(model: nn.Module, hidden: torch.Tensor, setting: LayerSetting, name: str) -> str | None:
    got = call(model.to_logits, hidden, copy_args=False)
    with torch.no_grad():
        return compare_values(got, _expected_logits(model, hidden, setting).detach(), name=name, rtol=1e-5,
                              atol=1e-6)


def _tie_keys(model: nn.Module) -> list[str]:
    return [key for key in model.state_dict() if key == EMBEDDING_KEY or key.startswith("to_logits.")]


def _layer_case(answer, case: Case) -> Verdict | None:
    (setting,) = case.args
    model, layer = _model_with_layer(answer, setting)
    if not isinstance(layer, nn.Module):
        return case_failed(case, f"TiedLinear(embedding, scale, bias) built {describe(layer)}, not an nn.Module",
                           "subclass nn.Module and call super().__init__() first")
    bias = _bias_of(layer)
    if setting.bias:
        if bias is None or tuple(bias.shape) != (setting.num_tokens,):
            return case_failed(case, f"with bias=True your layer owns no Parameter named bias of shape "
                                     f"({setting.num_tokens},)", "register self.bias = nn.Parameter(torch.zeros("
                                                                 "num_tokens)) when bias is True")
        with torch.no_grad():  # a bias of zeros would hide one that is never added
            bias.copy_(torch.randn(setting.num_tokens, generator=seeded_generator(setting.seed + 200)))
    hidden = _hidden(setting).requires_grad_()
    embedding = model.token_emb.weight
    got = call(layer, hidden, copy_args=False)
    with torch.no_grad():
        expected = _expected_logits(model, hidden, setting)
        unscaled = F.linear(hidden, embedding) + (bias if setting.bias else 0.0)
    problem = compare_values(got, expected, name="the logits", rtol=1e-5, atol=1e-6)
    if problem:
        if setting.scale != 1.0 and compare_values(got, unscaled, rtol=1e-5, atol=1e-6) is None:
            return case_failed(case, f"your logits equal x @ W.T without the scale {setting.scale:g}",
                               "multiply the product by scale (x-transformers uses dim ** -0.5)")
        return case_failed(case, problem, "logits = scale * (x @ embedding.weight.T) (+ bias): F.linear(x, W) "
                                          "computes x @ W.T, and W is (num_tokens, dim)")
    with torch.no_grad():
        embedding.mul_(-0.5)
    problem = _logits_problem(model, hidden.detach(), setting, "the logits after the embedding's weight was edited")
    if problem:
        return case_failed(case, f"your layer does not follow the embedding's weight when it is edited in place "
                                 f"({problem})", "never copy the weight: read it from the embedding in forward")
    tensors = [embedding, hidden] + ([bias] if setting.bias else [])
    names = ["the embedding's weight", "the input x"] + (["the bias"] if setting.bias else [])
    mine = gradients(call(layer, hidden, copy_args=False), tensors)
    theirs = gradients(_expected_logits(model, hidden, setting), tensors)
    problem = compare_gradients(mine, theirs, names, rtol=1e-5, atol=1e-6)
    if problem:
        return case_failed(case, problem, "use the embedding's weight itself: .data, .detach() or a copy cut the "
                                          "output's gradient off from the embedding")
    verdict = _keys_verdict(case, model, setting)
    if verdict is not None:
        return verdict
    shown_repr = call(layer.extra_repr, copy_args=False) if hasattr(layer, "extra_repr") else ""
    if not isinstance(shown_repr, str) or "tied" not in shown_repr:
        return case_failed(case, f"print(model) shows your layer as {describe(shown_repr)}: it does not say it is "
                                 f"tied", "define extra_repr() returning e.g. 'tied to Embedding(24, 16), scale=1'")
    return _survival_verdict(answer, case, model)


def _keys_verdict(case: Case, model: nn.Module, setting: LayerSetting) -> Verdict | None:
    keys = _tie_keys(model)
    expected = [EMBEDDING_KEY] + (["to_logits.bias"] if setting.bias else [])
    if keys == expected:
        return None
    if OUTPUT_KEY in keys:
        return case_failed(case, f"the model's state_dict holds the tied weight under two keys {keys}: your layer "
                                 f"registers a Parameter of its own, which to_empty and load_state_dict(assign=True) "
                                 f"replace separately from the embedding's",
                           "store the embedding module in a plain tuple, never its weight as an attribute")
    registered = [key for key in keys if key.startswith("to_logits.") and key.endswith(".weight")]
    if registered:
        return case_failed(case, f"your layer registers the embedding as a submodule: the state_dict saves its "
                                 f"weight a second time as {registered[0]!r} (safetensors refuses it, and a "
                                 f"checkpoint can hold two different values)",
                           "hold the embedding in a plain tuple, self.tied = (embedding,), which nn.Module does "
                           "not register")
    if not setting.bias and "to_logits.bias" in keys:
        return case_failed(case, "with bias=False your layer still owns 'to_logits.bias': a checkpoint of a "
                                 "bias-free tied model lacks it, so load_state_dict(strict=True) fails on it",
                           "create the bias Parameter only when bias is True (else set self.bias = None)")
    return case_failed(case, f"the tied keys of the model's state_dict are {keys}, expected {expected}",
                       "own no weight; own a bias only when bias=True")


def _survival_verdict(answer, case: Case, model: nn.Module) -> Verdict | None:
    """The paths that replace or copy Parameters: each must leave the layer reading its embedding."""
    (setting,) = case.args
    hidden = _hidden(setting)
    with torch.no_grad():
        model.token_emb.weight = nn.Parameter(torch.randn_like(model.token_emb.weight))
    problem = _logits_problem(model, hidden, setting, "the logits")
    if problem:
        return case_failed(case, f"after the embedding's Parameter was replaced by a new one (as to_empty and "
                                 f"load_state_dict(assign=True) do), your layer still used the old one: {problem}",
                           "hold the embedding module and read .weight in forward; never hold the Parameter")
    state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    fresh, _ = _model_with_layer(answer, LayerSetting(setting.num_tokens, setting.dim, setting.scale, setting.bias,
                                                      setting.seed + 1))
    fresh.load_state_dict(state)  # strict
    problem = _logits_problem(fresh, hidden, setting, "the reloaded model's logits")
    if problem is None and not torch.equal(fresh.to_logits(hidden).detach(), model.to_logits(hidden).detach()):
        problem = "the reloaded model's logits differ from the saved model's"
    if problem:
        return case_failed(case, f"after a state_dict round trip into a fresh model: {problem}",
                           "the logits must come from the loaded embedding (and bias)")
    copied = copy.deepcopy(model)
    with torch.no_grad():
        copied.token_emb.weight.add_(1.0)
    problem = _logits_problem(copied, hidden, setting, "the copy's logits")
    if problem:
        return case_failed(case, f"after copy.deepcopy the copy's layer does not read the copy's own embedding "
                                 f"({problem})", "hold the embedding in an attribute deepcopy copies (a tuple), "
                                                 "not in a closure")
    meta, _ = _model_with_layer(answer, setting, device="meta")
    meta.to_empty(device="cpu")
    meta.load_state_dict(state)
    problem = _logits_problem(meta, hidden, setting, "the logits")
    if problem:
        return case_failed(case, f"built on the meta device, allocated with to_empty and loaded, your layer lost "
                                 f"the tie: {problem}", "read the embedding's weight at call time")
    wide = copy.deepcopy(model).to(torch.float64)
    problem = _logits_problem(wide, hidden.to(torch.float64), setting, "the float64 logits")
    if problem:
        return case_failed(case, f"after model.to(torch.float64): {problem}",
                           "keep no tensor of your own outside nn.Module's registries: .to() does not convert it")
    return _optimizer_verdict(case, copy.deepcopy(model), hidden)


def _optimizer_verdict(case: Case, model: nn.Module, hidden: torch.Tensor) -> Verdict | None:
    (setting,) = case.args
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.to_logits(hidden).square().mean().backward()
    optimizer.step()
    problem = _logits_problem(model, hidden, setting, "the logits after the step")
    if problem:
        return case_failed(case, f"after one SGD step on model.parameters(), the output and the embedding did not "
                                 f"move together: {problem}", "one Parameter, used twice: own no copy of it")
    return None


def check_tied_linear(tied_linear: type) -> Verdict:
    """Check a whole ``TiedLinear(embedding, scale=1.0, bias=False)`` class on hidden models: values, gradients,
    the state_dict keys, ``extra_repr``, and the tie through a replaced Parameter, a strict state_dict round trip,
    ``copy.deepcopy``, meta -> ``to_empty``, ``.to(torch.float64)`` and an optimizer step."""
    for case in LAYER_CASES:
        verdict = _layer_case(tied_linear, case)
        if verdict is not None:
            return verdict
    return Verdict.make_pass(f"TiedLinear passed {len(LAYER_CASES)} hidden models (with and without scale and bias): "
                             "values, gradients, one state_dict key, extra_repr, and the tie through a replaced "
                             "Parameter, a strict round trip, deepcopy, meta -> to_empty, float64 and an SGD step")


class _TiedLinearReference(nn.Module):
    def __init__(self, embedding: nn.Module, scale: float = 1.0, bias: bool = False):
        super().__init__()
        self.tied = (embedding,)  # a tuple: not registered, so no second state_dict key
        self.scale = scale
        weight = embedding.weight
        self.bias = nn.Parameter(torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)) \
            if bias else None

    def forward(self, x):
        logits = F.linear(x, self.tied[0].weight) * self.scale
        return logits if self.bias is None else logits + self.bias

    def extra_repr(self):
        return f"tied to {self.tied[0]}, scale={self.scale:g}, bias={self.bias is not None}"


class _Mistake(_TiedLinearReference):
    """A wrong answer: the reference with one thing changed."""


class _AssignsTheWeight(_Mistake):
    def __init__(self, embedding, scale=1.0, bias=False):
        super().__init__(embedding, scale, bias)
        self.weight = embedding.weight  # registered: a second key, replaced separately

    def forward(self, x):
        logits = F.linear(x, self.weight) * self.scale
        return logits if self.bias is None else logits + self.bias


class _ClonesTheWeight(_AssignsTheWeight):
    def __init__(self, embedding, scale=1.0, bias=False):
        super().__init__(embedding, scale, bias)
        self.weight = nn.Parameter(embedding.weight.detach().clone())


class _CopiesTheData(_Mistake):
    def __init__(self, embedding, scale=1.0, bias=False):
        super().__init__(embedding, scale, bias)
        self.data_copy = embedding.weight.data  # same memory, but no autograd and no Parameter

    def forward(self, x):
        logits = F.linear(x, self.data_copy) * self.scale
        return logits if self.bias is None else logits + self.bias


class _WrongTranspose(_Mistake):
    def forward(self, x):
        logits = x @ self.tied[0].weight * self.scale
        return logits if self.bias is None else logits + self.bias


class _AlwaysABias(_Mistake):
    def __init__(self, embedding, scale=1.0, bias=False):
        super().__init__(embedding, scale, True)


class _RegistersTheEmbedding(_Mistake):
    def __init__(self, embedding, scale=1.0, bias=False):
        super().__init__(embedding, scale, bias)
        self.embedding = embedding  # the article's TiedLinear: a submodule, saved a second time


class _ForgetsTheScale(_Mistake):
    def forward(self, x):
        logits = F.linear(x, self.tied[0].weight)
        return logits if self.bias is None else logits + self.bias


class _HoldsTheParameter(_Mistake):
    def __init__(self, embedding, scale=1.0, bias=False):
        super().__init__(embedding, scale, bias)
        self.tied = (embedding.weight,)  # the Parameter, not the module: misses a replaced Parameter

    def forward(self, x):
        logits = F.linear(x, self.tied[0]) * self.scale
        return logits if self.bias is None else logits + self.bias


class _Closure(_Mistake):
    """x-transformers' style: a function closing over the embedding (deepcopy does not copy functions)."""

    def __init__(self, embedding, scale=1.0, bias=False):
        super().__init__(embedding, scale, bias)
        self.read = lambda: embedding.weight

    def forward(self, x):
        logits = F.linear(x, self.read()) * self.scale
        return logits if self.bias is None else logits + self.bias


class _NoExtraRepr(_Mistake):
    def extra_repr(self):
        return ""


# --- exercise 2: a tie detector by shared storage -------------------------------------------------------------

_HINTS = {
    "tied": "the same object: compare with `a is b`",
    "half-tied": "different objects, same memory: compare a.untyped_storage().data_ptr() of both",
    "untied": "separate memory: equal values (torch.equal) do not make a tie",
}


def _tie_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    weight = nn.Parameter(torch.randn(4, 3, generator=seeded_generator(0)))
    other = nn.Parameter(torch.randn(4, 3, generator=seeded_generator(1)))
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


# --- exercise 3: load a naive-tied checkpoint into a correctly tied model -------------------------------------

_CHECKPOINT_SIZE = ModelSize(num_tokens=20, max_seq_len=8, dim=12, depth=1, heads=2)


def naive_checkpoint(kind: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict as a naive-tied model saves it, in one of the checker's kinds:

    ``"equal pair"`` (the tie held: both keys, equal values), ``"diverged pair"`` (saved after FSDP or a load untied
    it: the output drifted), ``"one entry differs by 1e-6"``, ``"no output key"`` (saved by a one-key model) and
    ``"bfloat16 checkpoint"`` (the equal pair stored in bfloat16 for a float32 model).
    """
    source = build_model("naive", seed=seed, size=_CHECKPOINT_SIZE)
    state = {key: value.detach().clone() for key, value in source.state_dict().items()}
    if kind == "diverged pair":
        state[OUTPUT_KEY] = state[OUTPUT_KEY] + 0.01 * torch.randn(state[OUTPUT_KEY].shape,
                                                                   generator=seeded_generator(seed + 1))
    elif kind == "one entry differs by 1e-6":
        state[OUTPUT_KEY][0, 0] += 1e-6
    elif kind == "no output key":
        del state[OUTPUT_KEY]
    elif kind == "bfloat16 checkpoint":
        state = {key: value.to(torch.bfloat16) if value.is_floating_point() else value
                 for key, value in state.items()}
    elif kind != "equal pair":
        raise ValueError(f"kind must be one of {CHECKPOINT_KINDS}, but got {kind!r}")
    return state


CHECKPOINT_KINDS = ("equal pair", "diverged pair", "no output key", "bfloat16 checkpoint",
                    "one entry differs by 1e-6")
_REFUSED = ("diverged pair", "one entry differs by 1e-6")


def _load_or_refuse(load, model, state):
    """What the learner's loader did: ("returned", value) or ("refused", the ValueError)."""
    try:
        return "returned", load(model, state)
    except ValueError as err:
        return "refused", err


def _checkpoint_case(load, case: Case) -> Verdict | None:
    (kind,) = case.args
    state = naive_checkpoint(kind)
    model = build_model("tied_linear", seed=7, size=_CHECKPOINT_SIZE)
    given_keys = list(state)
    state_kept = Untouched(dict(state))
    model_kept = Untouched(dict(model.state_dict()))
    how, value = call(_load_or_refuse, load, model, state, copy_args=False)
    if list(state) != given_keys or state_kept.changed():
        return case_failed(case, f"your function changed the state dict you were given (now {len(state)} keys, "
                                 f"given {len(given_keys)})",
                           "work on a new dict: {k: v for k, v in state.items() if ...}")
    if kind in _REFUSED:
        if how == "returned":
            return case_failed(case, f"the checkpoint's {EMBEDDING_KEY} and {OUTPUT_KEY} differ, and your function "
                                     f"loaded it silently (returned {describe(value)})",
                               "compare the two tensors exactly (torch.equal: a true tie saves one memory twice) and "
                               "raise ValueError when they differ")
        if model_kept.changed():
            return case_failed(case, f"your function refused the checkpoint but changed the model first "
                                     f"({', '.join(model_kept.changed()[:2])}, ...)", "compare first, then load")
        if EMBEDDING_KEY not in str(value) or OUTPUT_KEY not in str(value):
            return case_failed(case, f"your ValueError says {str(value)!r:.120}: name both keys",
                               f"e.g. raise ValueError(f'{EMBEDDING_KEY} and {OUTPUT_KEY} differ: ...')")
        return None
    if how == "refused":
        return case_failed(case, f"your function refused a checkpoint it should load: ValueError: {value}",
                           "refuse only when both keys are there and their values differ")
    return _loaded_verdict(case, state, model, value)


def _loaded_verdict(case: Case, state: dict, model: nn.Module, kept) -> Verdict | None:
    pair = [key for key in (EMBEDDING_KEY, OUTPUT_KEY) if key in state]
    if kept not in pair:
        return case_failed(case, f"your function returned {describe(kept)}, not the key it kept (one of {pair})",
                           "return the key whose tensor you loaded into the embedding")
    weight = model.token_emb.weight
    if weight.dtype != torch.float32 or any(p.dtype != torch.float32 for p in model.parameters()):
        return case_failed(case, f"the model's weights changed dtype to {weight.dtype}: the checkpoint's "
                                 "bfloat16 replaced the model's float32 Parameters",
                           "load_state_dict without assign=True copies values into the model's own Parameters, "
                           "casting them")
    if tie_verdict(model) != "tied" or _tie_keys(model) != [EMBEDDING_KEY]:
        return case_failed(case, f"after loading, the model's embedding and output are {tie_verdict(model)}",
                           "load into the embedding only; the TiedLinear output reads it")
    for key, value in model.state_dict().items():
        source = state[kept] if key == EMBEDDING_KEY else state.get(key)
        expected = None if source is None else source.to(value.dtype)
        if expected is None or not torch.equal(value, expected):
            return case_failed(case, f"after loading, the model's {key} does not hold the checkpoint's values",
                               "load every other key as it is, and the kept tensor as the embedding")
    return None


def check_load_naive_checkpoint(load_naive_checkpoint: Callable) -> Verdict:
    """Check ``load_naive_checkpoint(model, state) -> kept key`` on hidden checkpoints: an equal pair, a diverged
    pair, a pair that differs in one entry by 1e-6, no output key, and a bfloat16 checkpoint."""
    cases = tuple(Case(kind, (kind,), edge=kind in ("one entry differs by 1e-6", "bfloat16 checkpoint"))
                  for kind in CHECKPOINT_KINDS)
    for case in cases:
        verdict = _checkpoint_case(load_naive_checkpoint, case)
        if verdict is not None:
            return verdict
    return Verdict.make_pass(f"load_naive_checkpoint loads one tensor and names it, keeps the model's dtype and "
                             f"tie, and refuses both disagreeing checkpoints ({len(cases)} hidden checkpoints)")


def _load_naive_checkpoint_reference(model, state):
    both = EMBEDDING_KEY in state and OUTPUT_KEY in state
    if both and not torch.equal(state[EMBEDDING_KEY], state[OUTPUT_KEY]):
        largest = float((state[EMBEDDING_KEY].float() - state[OUTPUT_KEY].float()).abs().max())
        raise ValueError(f"{EMBEDDING_KEY} and {OUTPUT_KEY} differ (largest difference {largest:.3g}): the tie "
                         f"broke before this checkpoint was saved")
    kept = EMBEDDING_KEY if EMBEDDING_KEY in state else OUTPUT_KEY
    weights = {key: value for key, value in state.items() if key not in (EMBEDDING_KEY, OUTPUT_KEY)}
    weights[EMBEDDING_KEY] = state[kept]
    model.load_state_dict(weights)
    return kept


def _loads_silently(model, state):
    model.load_state_dict({key: value for key, value in state.items() if key != OUTPUT_KEY})
    return EMBEDDING_KEY


def _loads_then_checks(model, state):
    model.load_state_dict({key: value for key, value in state.items() if key != OUTPUT_KEY})
    if OUTPUT_KEY in state and not torch.equal(state[EMBEDDING_KEY], state[OUTPUT_KEY]):
        raise ValueError(f"{EMBEDDING_KEY} and {OUTPUT_KEY} differ")
    return EMBEDDING_KEY


def _assigns(model, state):
    if OUTPUT_KEY in state and not torch.equal(state[EMBEDDING_KEY], state[OUTPUT_KEY]):
        raise ValueError(f"{EMBEDDING_KEY} and {OUTPUT_KEY} differ")
    model.load_state_dict({key: value for key, value in state.items() if key != OUTPUT_KEY}, assign=True)
    return EMBEDDING_KEY


def _needs_the_output_key(model, state):
    if not torch.equal(state[EMBEDDING_KEY], state[OUTPUT_KEY]):
        raise ValueError(f"{EMBEDDING_KEY} and {OUTPUT_KEY} differ")
    model.load_state_dict({key: value for key, value in state.items() if key != OUTPUT_KEY})
    return EMBEDDING_KEY


def _compares_with_allclose(model, state):
    if OUTPUT_KEY in state and not torch.allclose(state[EMBEDDING_KEY], state[OUTPUT_KEY]):
        raise ValueError(f"{EMBEDDING_KEY} and {OUTPUT_KEY} differ")
    model.load_state_dict({key: value for key, value in state.items() if key != OUTPUT_KEY})
    return EMBEDDING_KEY


def _pops_the_given_dict(model, state):
    output = state.pop(OUTPUT_KEY, None)
    if output is not None and not torch.equal(state[EMBEDDING_KEY], output):
        raise ValueError(f"{EMBEDDING_KEY} and {OUTPUT_KEY} differ")
    model.load_state_dict(state)
    return EMBEDDING_KEY


def _plain_load(model, state):
    model.load_state_dict(state)
    return EMBEDDING_KEY


EXERCISES = ExerciseSet(
    Exercise(
        name="TiedLinear",
        prompt="the class TiedLinear(embedding, scale=1.0, bias=False): it holds the embedding module (not a copy, "
               "not a second Parameter), owns no weight (a bias Parameter of shape (num_tokens,) only when bias), "
               "forward(x) maps (..., dim) to (..., num_tokens) as scale * (x @ embedding.weight.T) (+ bias) with "
               "the embedding's weight as it is when forward runs, and extra_repr() says what it is tied to",
        checker=check_tied_linear,
        reference=_TiedLinearReference,
        mistakes=(
            Mistake("stores self.weight = embedding.weight (a second registration)", _AssignsTheWeight, "two keys"),
            Mistake("copies the weight with .clone()", _ClonesTheWeight, "does not follow"),
            Mistake("keeps embedding.weight.data", _CopiesTheData, "no gradient reached"),
            Mistake("x @ W: transposed the wrong way", _WrongTranspose, "cannot be multiplied"),
            Mistake("always owns a bias", _AlwaysABias, "lacks"),
            Mistake("registers the embedding as a submodule (the article's TiedLinear)", _RegistersTheEmbedding,
                    "registers the embedding as a submodule"),
            Mistake("forgets the scale", _ForgetsTheScale, "without the scale"),
            Mistake("holds the Parameter instead of the module", _HoldsTheParameter, "still used the old one"),
            Mistake("closes over the embedding in a function (x-transformers' style)", _Closure, "deepcopy"),
            Mistake("no extra_repr", _NoExtraRepr, "does not say it is tied"),
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
        name="load_naive_checkpoint",
        prompt="load_naive_checkpoint(model, state): load a state dict saved by a naive-tied model (keys "
               "token_emb.weight and, usually, to_logits.weight) into model, a TiedLinear-tied model whose "
               "state_dict has token_emb.weight only; keep one tensor and return the key you kept; raise ValueError "
               "naming both keys when the two tensors differ, before changing the model; never change the dict "
               "you are given",
        checker=check_load_naive_checkpoint,
        reference=_load_naive_checkpoint_reference,
        mistakes=(
            Mistake("drops the output key without comparing", _loads_silently, "loaded it silently"),
            Mistake("loads first, compares after", _loads_then_checks, "changed the model first"),
            Mistake("load_state_dict(assign=True)", _assigns, "changed dtype"),
            Mistake("assumes the output key is there", _needs_the_output_key, "KeyError"),
            Mistake("compares with torch.allclose", _compares_with_allclose, "one entry differs"),
            Mistake("pops the output key from the given dict", _pops_the_given_dict, "you were given"),
            Mistake("plain load_state_dict(state)", _plain_load, "Unexpected key"),
        ),
    ),
    GROUPING_EXERCISE,
)
