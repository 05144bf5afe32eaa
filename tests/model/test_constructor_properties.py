"""A property over the constructors' arguments (hypothesis): whatever TransformerWrapper, Decoder, Encoder and
AttentionLayers accept runs a forward and a backward pass; whatever they refuse is refused with TypeError or
ValueError naming the argument; a value of the wrong type or range is never accepted. Values are drawn tiny
(and wrong in type or range), never huge: allocation-sized arguments are not drawn here. 40 examples by default
(XTLAB_PROPERTY_EXAMPLES=400 for a longer run, with fresh random draws; the default run draws the same examples
every time, so the suite is deterministic)."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from xtlab.model import AttentionLayers, Decoder, Encoder, TransformerWrapper

WRONG = st.sampled_from([None, "2", 2.5, True, -1, 0, [2]])


def sized(low: int, high: int) -> tuple:
    """Integers in [low, high], and wrong values: WRONG less any int in that range (0 is right for a count)."""
    return st.integers(low, high), WRONG.filter(lambda v: not (type(v) is int and low <= v <= high))


def probability() -> tuple:
    return st.sampled_from([0.0, 0.1, 0.5]), st.sampled_from([1.0, -0.1, "0.1", None, 2])


def flag() -> tuple:
    return st.booleans(), st.sampled_from([0, 1, "yes", None])


# each argument: (values the constructors should take, values of the wrong type or range)
LAYER_ARGS = {
    "attn_dim_head": sized(1, 8),
    "layer_dropout": probability(),
    "attn_dropout": probability(),
    "ff_dropout": probability(),
    "attn_num_mem_kv": sized(0, 2),
    "rotary_pos_emb": flag(),
    "use_rmsnorm": flag(),
    "use_scalenorm": flag(),
    "ff_mult": (st.sampled_from([1, 2, 0.5]), st.sampled_from([0, -1, "4", None])),
    "ff_no_bias": flag(),
    "mem_positions": (st.sampled_from(["continuous", "shifted"]), st.sampled_from(["later", 3])),
    "mem_record": (st.sampled_from(["normed", "late"]), st.sampled_from(["early", None])),
}
WRAPPER_ARGS = {
    "num_memory_tokens": sized(0, 2),
    "max_mem_len": sized(0, 4),
    "tie_embedding": flag(),
    "emb_dropout": probability(),
}
POSITIONAL = {"dim": sized(1, 16), "depth": sized(1, 2), "heads": sized(1, 4), "num_tokens": sized(2, 20),
              "max_seq_len": sized(1, 8)}


@st.composite
def configurations(draw):
    """Half the configurations hold only plausible values (some combinations still refused, e.g. both norms),
    the other half one value of the wrong type or range."""
    layers_class = draw(st.sampled_from([Decoder, Encoder, AttentionLayers]))
    chosen = {name: spec for name, spec in {**LAYER_ARGS, **WRAPPER_ARGS}.items() if draw(st.booleans())}
    wrong = draw(st.one_of(st.none(), st.sampled_from(sorted({**POSITIONAL, **chosen}))))

    def value(name, spec):
        return draw(spec[1] if name == wrong else spec[0])

    positional = {name: value(name, spec) for name, spec in POSITIONAL.items()}
    layer_kwargs = {name: value(name, spec) for name, spec in chosen.items() if name in LAYER_ARGS}
    wrapper_kwargs = {name: value(name, spec) for name, spec in chosen.items() if name in WRAPPER_ARGS}
    if layers_class is AttentionLayers:
        layer_kwargs["causal"] = draw(st.booleans())
    return (layers_class, (positional["dim"], positional["depth"], positional["heads"]), layer_kwargs,
            (positional["num_tokens"], positional["max_seq_len"]), wrapper_kwargs, wrong)


def names_an_argument(message: str, names) -> bool:
    message = message.lower()
    return any(name in message or name.split("_", 1)[-1] in message for name in names)


EXAMPLES = os.environ.get("XTLAB_PROPERTY_EXAMPLES")


@settings(max_examples=int(EXAMPLES or 40), deadline=None, derandomize=EXAMPLES is None,
          suppress_health_check=[HealthCheck.too_slow])
@given(configurations())
def test_accepted_configurations_run_and_refused_ones_name_the_argument(configuration):
    layers_class, (dim, depth, heads), layer_kwargs, (num_tokens, max_seq_len), wrapper_kwargs, wrong = configuration
    names = ["dim", "depth", "heads", *layer_kwargs, "num_tokens", "max_seq_len", *wrapper_kwargs, "causal",
             "rotary_emb_dim", "attn_layers"]
    try:
        layers = layers_class(dim, depth, heads, **layer_kwargs)
        model = TransformerWrapper(num_tokens, max_seq_len, layers, **wrapper_kwargs)
    except (TypeError, ValueError) as err:
        event("refused")
        assert names_an_argument(str(err), names), f"{type(err).__name__} names no argument: {err}"
        return
    except Exception as err:  # anything else is a constructor failing deep inside
        pytest.fail(f"{type(err).__name__} (not TypeError/ValueError) for {configuration}: {err}")
    event("accepted")
    assert wrong is None, f"{wrong} of the wrong type or range was accepted silently: {configuration}"
    torch.manual_seed(0)
    tokens = torch.randint(0, num_tokens, (2, max_seq_len))
    out = model(tokens)
    out = out[0] if isinstance(out, tuple) else out
    out.float().sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None for g in grads), f"no gradient reached any parameter: {configuration}"
