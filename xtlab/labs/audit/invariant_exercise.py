"""Exercise: write a new invariant for the report card, "the output at position t ignores every later token",
graded on TinyLMs with a planted bug (the causal mask is off by one) and on their fixed twins, then on a hidden
model the notebook never shows: a TinyLM whose first position alone reads the second token (a check that only
changes the last token never sees it)."""

from __future__ import annotations

import torch

from xtlab.course import Exercise, Mistake, Verdict, call, describe
from xtlab.labs.audit.causality import causality_reference, planted_pair
from xtlab.labs.audit.tiny_lm import TinyLM, build_tiny_lm, tiny_lm_adapter
from xtlab.threads import one_cpu_thread

PAIRS = ({"seed": 0}, {"seed": 3, "num_tokens": 40, "max_len": 10, "depth": 1})
HIDDEN = {"seed": 5, "num_tokens": 24, "max_len": 9}


class FirstPositionLeak(TinyLM):
    """Hidden planted bug: a correct causal TinyLM, except that position 0's logits also read token 1."""

    def forward(self, tokens):
        logits = super().forward(tokens)
        if tokens.shape[1] < 2:
            return logits
        leak = torch.zeros_like(logits)
        leak[:, 0] = 0.5 * self.embed(tokens[:, 1]) @ self.embed.weight.t()
        return logits + leak


def first_position_leak(seed: int, **sizes) -> FirstPositionLeak:
    """The hidden model, with the weights of ``build_tiny_lm(seed, **sizes)``."""
    model = FirstPositionLeak(**sizes, dropout=0.0, block_drop=0.0)
    model.load_state_dict(build_tiny_lm(seed, **sizes).state_dict())
    return model


def _answer(outputs_ignore_later_tokens, model) -> bool | Verdict:
    result = call(outputs_ignore_later_tokens, model, tiny_lm_adapter(model))
    if not isinstance(result, bool):
        return Verdict.make_try_again(f"outputs_ignore_later_tokens(model, adapter) returned {describe(result)}",
                                 "return True or False (a tensor's .item() or bool(...) turns it into one)")
    return result


def check_outputs_ignore_later_tokens(answer) -> Verdict:
    """The fixed twins (as built: training mode, dropout on) must pass, the planted bugs must fail."""
    with one_cpu_thread():  # tiny models: one thread is many times faster on a small, busy CPU
        return _check_invariant(answer)


def _check_invariant(answer) -> Verdict:
    for settings in PAIRS:
        planted, fixed = planted_pair(**settings)
        on_fixed = _answer(answer, fixed)
        if isinstance(on_fixed, Verdict):
            return on_fixed
        if not on_fixed:
            quiet = planted_pair(**settings, dropout=0.0, block_drop=0.0)[1].eval()
            on_quiet = _answer(answer, quiet)
            if on_quiet is True:
                hint = ("without dropout it says True: two forward passes in training mode differ by dropout alone; "
                        "call model.eval() first")
            else:
                hint = ("even a deterministic causal model fails your check: compare only the positions before the "
                        "changed token, the changed position itself is allowed to move")
            return Verdict.make_try_again(
                f"your check says the fixed twin (a correct causal mask, {settings}) leaks", hint)
        on_planted = _answer(answer, planted)
        if isinstance(on_planted, Verdict):
            return on_planted
        if on_planted:
            return Verdict.make_try_again(
                f"your check passes the planted bug ({settings}): its mask lets token t see token t + 1",
                "change the tokens after every position t in turn, not only the last one, and compare every "
                "position up to t")
    hidden = first_position_leak(**HIDDEN)
    on_hidden = _answer(answer, hidden)
    if isinstance(on_hidden, Verdict):
        return on_hidden
    if on_hidden:
        return Verdict.make_try_again(
            f"your check passes a hidden model ({HIDDEN}) whose position 0 reads token 1 and nothing else leaks",
            "a leak can sit at any position: for every position t, change the tokens after t (not only the last "
            "token) and compare the outputs up to t")
    return Verdict.make_pass(f"your invariant fails the {len(PAIRS)} planted bugs and a hidden leak at the first "
                             f"position, and holds on the fixed twins")


def _forgets_eval(model, adapter):
    tokens = adapter.make_batch(model, torch.Generator().manual_seed(0))[0]
    other = adapter.make_batch(model, torch.Generator().manual_seed(1))[0]
    before = adapter.forward(model, (tokens,))
    for t in range(tokens.shape[1] - 1):
        after = adapter.forward(model, (torch.cat((tokens[:, : t + 1], other[:, t + 1:]), dim=1),))
        if not torch.allclose(before[:, : t + 1], after[:, : t + 1], atol=1e-5):
            return False
    return True


def _includes_changed_position(model, adapter):
    model.eval()
    tokens = adapter.make_batch(model, torch.Generator().manual_seed(0))[0]
    other = adapter.make_batch(model, torch.Generator().manual_seed(1))[0]
    with torch.no_grad():
        before = adapter.forward(model, (tokens,))
        for t in range(tokens.shape[1] - 1):
            after = adapter.forward(model, (torch.cat((tokens[:, :t], other[:, t:]), dim=1),))
            if not torch.allclose(before[:, : t + 1], after[:, : t + 1], atol=1e-5):
                return False
    return True


def _last_token_first_position(model, adapter):
    model.eval()
    tokens = adapter.make_batch(model, torch.Generator().manual_seed(0))[0]
    changed = tokens.clone()
    changed[:, -1] = (changed[:, -1] + 1) % model.num_tokens
    with torch.no_grad():
        return bool(torch.allclose(adapter.forward(model, (tokens,))[:, 0], adapter.forward(model, (changed,))[:, 0]))


def _last_token_only(model, adapter):
    model.eval()
    tokens = adapter.make_batch(model, torch.Generator().manual_seed(0))[0]
    other = adapter.make_batch(model, torch.Generator().manual_seed(1))[0]
    changed = torch.cat((tokens[:, :-1], other[:, -1:]), dim=1)
    with torch.no_grad():
        before, after = adapter.forward(model, (tokens,)), adapter.forward(model, (changed,))
    return bool(torch.allclose(before[:, :-1], after[:, :-1], atol=1e-5))


def _returns_tensor(model, adapter):
    model.eval()
    tokens = adapter.make_batch(model, torch.Generator().manual_seed(0))[0]
    changed = tokens.clone()
    changed[:, 1:] = (changed[:, 1:] + 1) % model.num_tokens
    with torch.no_grad():
        return (adapter.forward(model, (tokens,))[:, 0] - adapter.forward(model, (changed,))[:, 0]).abs().max() < 1e-5


INVARIANT_EXERCISE = Exercise(
    name="outputs_ignore_later_tokens",
    prompt="outputs_ignore_later_tokens(model, adapter) -> bool: True when, for every position t, replacing the "
           "tokens after t (adapter.make_batch, adapter.forward) leaves the outputs at positions 0..t unchanged",
    checker=check_outputs_ignore_later_tokens,
    reference=causality_reference,
    mistakes=(
        Mistake("forgets model.eval(): dropout changes every pass", _forgets_eval, "model.eval()"),
        Mistake("changes the token at t too, then compares position t", _includes_changed_position,
                "the changed position itself"),
        Mistake("changes only the last token, compares only position 0", _last_token_first_position,
                "not only the last one"),
        Mistake("returns a tensor instead of a bool", _returns_tensor, "True or False"),
        Mistake("changes only the last token and compares every earlier position", _last_token_only,
                "not only the last token"),
    ),
)
