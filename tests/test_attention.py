"""model/attention.py: the rotary embeddings, their tables and the causal mask both torch decoders use."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F

from llm_playground.model.attention import (
    RopeTables,
    apply_rope,
    attention_with_weights,
    create_causal_mask,
    rope_inv_freq,
)


def _reference_rope(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """RoPE written as complex rotations of (x_i, x_{i + hs/2}) pairs (the Llama convention)."""
    half = x.shape[-1] // 2
    freq = 1.0 / theta ** (torch.arange(0, half, dtype=torch.float64) * 2 / x.shape[-1])
    angle = positions.double()[:, None] * freq  # (T, hs / 2)
    pairs = torch.complex(x[..., :half].double(), x[..., half:].double()) * torch.polar(torch.ones_like(angle), angle)
    return torch.cat((pairs.real, pairs.imag), dim=-1).to(x.dtype)


def test_apply_rope_rotates_pairs_by_their_positions():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 8)  # (B, nh, T, hs)
    cos, sin = RopeTables().get(rope_inv_freq(8, 10000.0), 4, 9, torch.float32, torch.device("cpu"))
    assert cos.shape == sin.shape == (5, 8)
    expected = _reference_rope(x, torch.arange(4, 9), 10000.0)
    torch.testing.assert_close(apply_rope(x, cos, sin), expected, rtol=1e-5, atol=1e-5)
    # Rotations keep lengths, and position 0 is the identity.
    cos0, sin0 = RopeTables().get(rope_inv_freq(8, 10000.0), 0, 1, torch.float32, torch.device("cpu"))
    assert torch.equal(apply_rope(x[:, :, :1], cos0, sin0), x[:, :, :1])


def test_apply_rope_per_sequence_positions_match_the_shared_tables():
    """The batched decode step gives each sequence its own position: (B, 1, T, hs) tables."""
    torch.manual_seed(1)
    x = torch.randn(3, 2, 1, 4)
    cos_table, sin_table = RopeTables().table(rope_inv_freq(4, 500.0), 10, torch.float32, torch.device("cpu"))
    positions = torch.tensor([0, 7, 3])
    batched = apply_rope(x, cos_table[positions][:, None, None], sin_table[positions][:, None, None])
    for i, p in enumerate(positions.tolist()):
        single = apply_rope(x[i : i + 1], cos_table[p : p + 1], sin_table[p : p + 1])
        assert torch.equal(batched[i : i + 1], single)


@pytest.mark.parametrize(("x_shape", "table_shape", "words"), [
    ((5, 8), (5, 8), "(B, nh, T, hs)"),
    ((1, 2, 5, 8), (4, 8), "do not fit"),
    ((1, 2, 5, 8), (5, 6), "do not fit"),
    ((1, 2, 5, 7), (5, 7), "even hs"),
    ((1, 2, 5, 8), (1, 5, 8), "(T, hs) or (B, 1, T, hs)"),
])
def test_apply_rope_rejects_shapes_that_do_not_fit(x_shape, table_shape, words):
    with pytest.raises(ValueError, match="apply_rope") as caught:
        apply_rope(torch.zeros(x_shape), torch.zeros(table_shape), torch.zeros(table_shape))
    assert words in str(caught.value)


def test_apply_rope_rejects_cos_and_sin_of_different_shapes():
    with pytest.raises(ValueError, match="cos and sin"):
        apply_rope(torch.zeros(1, 1, 2, 4), torch.zeros(2, 4), torch.zeros(3, 4))


def test_rope_tables_grow_keep_rows_and_are_kept_per_dtype():
    tables, inv_freq, cpu = RopeTables(min_rows=4), rope_inv_freq(6, 10000.0), torch.device("cpu")
    small_cos, small_sin = tables.table(inv_freq, 3, torch.float32, cpu)
    assert small_cos.shape == (4, 6)
    big_cos, big_sin = tables.table(inv_freq, 5, torch.float32, cpu)
    assert big_cos.shape[0] == 8  # doubled, not grown by one row at a time
    assert torch.equal(big_cos[:4], small_cos) and torch.equal(big_sin[:4], small_sin)
    half_cos, _ = tables.table(inv_freq, 3, torch.bfloat16, cpu)
    assert half_cos.dtype == torch.bfloat16
    assert tables.table(inv_freq, 3, torch.float32, cpu)[0] is big_cos  # the float32 pair was kept


def test_rope_tables_are_consistent_under_concurrent_growth():
    """Threads growing the tables at once never see a cos and a sin of different sizes."""
    tables, inv_freq, cpu = RopeTables(min_rows=1), rope_inv_freq(4, 10000.0), torch.device("cpu")
    errors: list[str] = []

    def grow(worker: int) -> None:
        for end in range(1 + worker, 400, 7):
            cos, sin = tables.get(inv_freq, 0, end, torch.float32, cpu)
            if cos.shape != sin.shape or cos.shape[0] != end:
                errors.append(f"{tuple(cos.shape)} vs {tuple(sin.shape)} for {end}")

    threads = [threading.Thread(target=grow, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    cos, sin = tables.table(inv_freq, 400, torch.float32, cpu)
    torch.testing.assert_close(cos**2 + sin**2, torch.ones_like(cos))


def test_causal_mask_with_and_without_an_offset():
    assert torch.equal(create_causal_mask(4), torch.ones(4, 4, dtype=torch.bool).tril())
    # Three new positions after five cached ones: each sees the whole cache and the new ones up to itself.
    mask = create_causal_mask(3, offset=5)
    assert mask.shape == (3, 8)
    assert torch.equal(mask, torch.ones(3, 8, dtype=torch.bool).tril(diagonal=5))


@pytest.mark.parametrize("offset", [0, 4])
def test_attention_with_weights_matches_sdpa(offset):
    torch.manual_seed(2)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 5 + offset, 8), torch.randn(2, 3, 5 + offset, 8)
    out, weights = attention_with_weights(q, k, v)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=create_causal_mask(5, offset))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert weights.shape == (2, 3, 5, 5 + offset)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5))
    assert torch.all(weights[..., 0, offset + 1 :] == 0)  # nothing above the diagonal


def test_attention_with_weights_rejects_unexpanded_kv_heads():
    with pytest.raises(ValueError, match="same batch, heads"):
        attention_with_weights(torch.zeros(1, 4, 2, 8), torch.zeros(1, 2, 2, 8), torch.zeros(1, 2, 2, 8))
