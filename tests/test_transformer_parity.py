"""wmbook's encoder and decoder blocks against PyTorch's own layers, with the same weights (page 5.1)."""
import pytest
import torch

from wmbook.nn.attention import causal_mask, padding_mask
from wmbook.nn.transformer import (
    DecoderBlock,
    EncoderBlock,
    TransformerConfig,
    to_torch_decoder_layer,
    to_torch_encoder_layer,
)

CASES = [(False, "relu"), (True, "relu"), (False, "gelu"), (True, "gelu_tanh")]


def _cfg(norm_first, activation):
    return TransformerConfig(vocab_size=20, d_model=32, n_heads=4, d_ff=48, n_layers=1,
                             n_ctx=16, dropout=0.1, norm_first=norm_first, activation=activation)


def _randomise_norms(block):  # LayerNorms start at (1, 0): move them so a swapped norm would show
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.normal_(1.0, 0.2)
                m.bias.normal_(0.0, 0.2)


def _block_and_torch_copy(block_cls, to_torch, seed, norm_first, activation):
    """A seeded block in eval mode with moved LayerNorms, and PyTorch's layer with the same weights."""
    torch.manual_seed(seed)
    block = block_cls(_cfg(norm_first, activation)).eval()
    _randomise_norms(block)
    return block, to_torch(block)


@pytest.mark.parametrize("norm_first,activation", CASES)
def test_encoder_block_matches_torch_encoder_layer(norm_first, activation):
    block, ref = _block_and_torch_copy(EncoderBlock, to_torch_encoder_layer, 0, norm_first, activation)
    assert isinstance(ref, torch.nn.TransformerEncoderLayer) and not ref.training and ref.norm_first == norm_first
    x = torch.randn(3, 7, 32)
    keep = padding_mask([7, 4, 6], T=7)  # (3, 1, 7): True = real token
    with torch.no_grad():
        ours = block(x, keep).hidden
        theirs = ref(x, src_key_padding_mask=~keep[:, 0])
        real = keep[:, 0]  # compare real positions (PyTorch's fast path may zero padded ones)
        assert (ours - theirs)[real].abs().max() <= 1e-5
        assert (block(x).hidden - ref(x)).abs().max() <= 1e-5


@pytest.mark.parametrize("norm_first,activation", CASES)
def test_decoder_block_matches_torch_decoder_layer(norm_first, activation):
    block, ref = _block_and_torch_copy(DecoderBlock, to_torch_decoder_layer, 1, norm_first, activation)
    tgt, memory = torch.randn(2, 6, 32), torch.randn(2, 5, 32)
    causal = causal_mask(6)  # (6, 6) True = may attend
    src_keep = padding_mask([5, 3], T=5)  # (2, 1, 5)
    with torch.no_grad():
        ours = block(tgt, memory, causal, src_keep).hidden
        theirs = ref(tgt, memory, tgt_mask=~causal, memory_key_padding_mask=~src_keep[:, 0])
    assert (ours - theirs).abs().max() <= 1e-5


def test_a_wrong_copy_would_be_caught():
    block, ref = _block_and_torch_copy(DecoderBlock, to_torch_decoder_layer, 2, False, "relu")
    ref.norm2, ref.norm3 = ref.norm3, ref.norm2  # swap two LayerNorms
    tgt, memory = torch.randn(2, 6, 32), torch.randn(2, 5, 32)
    with torch.no_grad():
        assert (block(tgt, memory).hidden - ref(tgt, memory)).abs().max() > 1e-3


def test_helpers_reject_the_wrong_block():
    cfg = _cfg(False, "relu")
    with pytest.raises(TypeError, match="EncoderBlock"):
        to_torch_encoder_layer(DecoderBlock(cfg))
    with pytest.raises(TypeError, match="DecoderBlock"):
        to_torch_decoder_layer(EncoderBlock(cfg))
