"""Layer dropout: skipped blocks are identities, their parameters get no gradient, draws follow torch's seed."""

import torch

from xtlab import Decoder, Encoder, TransformerWrapper


def model_with(p, depth=4, **kw):
    torch.manual_seed(0)
    return TransformerWrapper(40, 16, Decoder(32, depth, 2, layer_dropout=p, **kw), **kw.pop("wrapper", {}))


def params_of_blocks(model, names):
    return {n for n, _ in model.named_parameters() if any(n.startswith(b + ".") for b in names)}


def test_no_gradient_exactly_for_skipped_blocks():
    model = model_with(0.5)
    x = torch.randint(0, 40, (2, 8))
    seen_skip = False
    for step in range(10):
        torch.manual_seed(step)
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
        missing = {n for n, p in model.named_parameters() if p.grad is None}
        assert missing == params_of_blocks(model, model.skipped_blocks)
        seen_skip |= bool(missing)
    assert seen_skip


def test_never_skips_in_eval_and_draws_nothing():
    model = model_with(0.9).eval()
    x = torch.randint(0, 40, (1, 5))
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    model(x)
    assert model.skipped_blocks == []
    assert torch.equal(torch.rand(1), before)  # eval consumed no random numbers


def test_skips_are_reproducible_with_torch_seed():
    model = model_with(0.5)
    x = torch.randint(0, 40, (1, 5))
    runs = []
    for _ in range(2):
        torch.manual_seed(123)
        draws = []
        for _ in range(5):
            model(x)
            draws.append(model.attn_layers.last_skipped)
        runs.append(draws)
    assert runs[0] == runs[1]


def test_skip_fraction_is_close_to_p():
    model = model_with(0.3, depth=6)
    torch.manual_seed(0)
    x = torch.randint(0, 40, (1, 4))
    skipped = total = 0
    with torch.no_grad():
        for _ in range(200):
            model(x)
            skipped += len(model.attn_layers.last_skipped)
            total += len(model.attn_layers.layers)
    assert abs(skipped / total - 0.3) < 0.05


def test_skipped_block_is_identity():
    torch.manual_seed(0)
    model = TransformerWrapper(40, 16, Encoder(32, 1, 2, layer_dropout=0.99), return_only_embed=True)
    x = torch.randint(0, 40, (1, 5))
    torch.manual_seed(0)
    out = model(x)
    assert len(model.attn_layers.last_skipped) == 2  # both blocks skipped at this seed
    expected = model.attn_layers.final_norm(model.token_emb(x) + model.pos_emb(5, x.device))
    torch.testing.assert_close(out, expected)


def test_skipped_attention_layer_still_consumes_and_returns_its_memory():
    torch.manual_seed(0)
    model = TransformerWrapper(40, 32, Decoder(32, 3, 2, layer_dropout=0.6, rotary_pos_emb=True), max_mem_len=64)
    x = torch.randint(0, 40, (1, 6))
    mems = [torch.randn(1, 4, 32) * (k + 1) for k in range(3)]  # each layer's memory is recognisable
    for seed in range(20):
        torch.manual_seed(seed)
        _, new = model(x, mems=mems, return_mems=True)
        assert len(new) == 3
        for k in range(3):
            torch.testing.assert_close(new[k][:, :4], mems[k])  # layer k kept layer k's memory, in order
            assert new[k].shape == (1, 10, 32)
