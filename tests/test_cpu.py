import pytest
import torch
from torch import nn

from qa.config import DEFAULT_READER_DIR
from qa.models.cpu import FusedLinear, fuse_linears, fused_linear_works, prepare_model

needs_fused = pytest.mark.skipif(not fused_linear_works(), reason="oneDNN fused linear unavailable on this CPU/torch")


class Block(nn.Module):
    """The shape of a BERT intermediate block: dense then activation."""

    def __init__(self, act):
        super().__init__()
        self.dense = nn.Linear(32, 64)
        self.intermediate_act_fn = act
        self.out = nn.Linear(64, 8, bias=False)

    def forward(self, x):
        return self.out(self.intermediate_act_fn(self.dense(x)))


@needs_fused
@pytest.mark.parametrize("act, gelu_fused", [(nn.GELU(), True), (nn.GELU(approximate="tanh"), False), (nn.ReLU(), False)])
def test_fuse_linears_keeps_outputs_and_fuses_only_exact_gelu(act, gelu_fused):
    torch.manual_seed(0)
    block = Block(act).to(torch.bfloat16).eval()
    x = torch.randn(4, 7, 32).to(torch.bfloat16)
    with torch.inference_mode():
        expected = block(x).float()
        assert fuse_linears(block) == 2
        got = block(x).float()
    assert isinstance(block.dense, FusedLinear) and block.dense.gelu is gelu_fused
    assert isinstance(block.out, FusedLinear)
    assert isinstance(block.intermediate_act_fn, nn.Identity) is gelu_fused
    assert torch.allclose(got, expected, atol=0.05, rtol=0.02)


def test_without_the_fused_op_bfloat16_models_run_aten_linears(monkeypatch):
    """The fallback wherever oneDNN's fused linear is missing (forced here, so it runs on every CPU)."""
    import qa.models.cpu

    monkeypatch.setattr(qa.models.cpu, "fused_linear_works", lambda: False)
    torch.manual_seed(0)
    block = Block(nn.GELU())
    x = torch.randn(4, 7, 32)
    with torch.inference_mode():
        expected = block.to(torch.bfloat16).eval()(x.to(torch.bfloat16)).float()
        prepared = prepare_model(Block(nn.GELU()).requires_grad_(False), torch.bfloat16)
        prepared.load_state_dict(block.state_dict())
        got = prepared(x.to(torch.bfloat16)).float()
    assert not any(isinstance(m, FusedLinear) for m in prepared.modules())
    assert isinstance(prepared.dense, nn.Linear) and isinstance(prepared.intermediate_act_fn, nn.GELU)
    assert torch.equal(got, expected)


def test_float32_models_are_left_alone():
    block = prepare_model(Block(nn.GELU()), torch.float32)
    assert isinstance(block.dense, nn.Linear) and not block.training


@needs_fused
def test_fused_reader_gives_the_same_logits_as_aten():
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    def load():
        return AutoModelForQuestionAnswering.from_pretrained(str(DEFAULT_READER_DIR), dtype=torch.float32)

    tokenizer = AutoTokenizer.from_pretrained(str(DEFAULT_READER_DIR))
    enc = tokenizer(
        ["Who wrote the letter?", "Where was the summit?"],
        ["Kim Jong Un wrote the letter to Trump.", "The first summit was held in Singapore in June."],
        return_tensors="pt", padding=True,
    )
    plain = load().to(torch.bfloat16).eval()
    fused = prepare_model(load(), torch.bfloat16)
    assert any(isinstance(m, FusedLinear) and m.gelu for m in fused.modules())
    with torch.inference_mode():
        a, b = plain(**enc), fused(**enc)
    mask = enc["attention_mask"].bool()
    assert torch.allclose(a.start_logits[mask].float(), b.start_logits[mask].float(), atol=0.5)
    assert torch.equal(a.start_logits.argmax(1), b.start_logits.argmax(1))
    assert torch.equal(a.end_logits.argmax(1), b.end_logits.argmax(1))
