"""The guide's snippets 5.1.1-5.3.2 (pages 5.1, 5.3): verbatim, and what really happens when they run."""
import hashlib
import re
from pathlib import Path

import pytest
import torch

from wmbook.book.guide_snippets import SNIPPETS, load_snippets, run_snippet, source

GUIDE = Path(__file__).resolve().parent / "data" / "guide.txt"  # the guide's text (a copy of shared/seed/)
SHA256 = {  # of each snippet as printed in the guide (catches an editor stripping trailing spaces)
    "5.1.1": "7611601da7744cd33b860a2a17cd816da34e9ca3488d983f83e8f7275384f137",
    "5.1.2": "8a6c9c89b36d5832148a286a1be6b97d22b89afd947cb3084a7602af86af4db5",
    "5.2.1": "0f63dc653c874eefe792db8d8b419c8b9088a1e96e5c6ca17ca66515840f6e2d",
    "5.2.2": "95143ee00a2d9c9eeb9aa9b20c1307d4d582d734b951ace37d9de1abfdceec0f",
    "5.3.1": "2d9c9b50a1368273d789122a0b95e8e74a9cd965331f47253969758b789ea5c1",
    "5.3.2": "afc5a73be0ed29951aea392cad5024fa1c456cc3a7ca2740f5949d7748df4fa7",
}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_snippets_are_verbatim():
    assert {k: hashlib.sha256(v.encode()).hexdigest() for k, v in SNIPPETS.items()} == SHA256
    assert source("5.1.1").endswith(SNIPPETS["5.1.1"])
    text = GUIDE.read_text(encoding="utf-8")
    for section, code in SNIPPETS.items():
        m = re.search(rf"#### {re.escape(section)} [^\n]*\n```python\n(.*?)```", text, re.S)
        assert m and m.group(1) == code, section
    with pytest.raises(KeyError, match="choose from"):
        source("9.9")


def test_511_encoder_mixes_a_batch_first_batch_and_ignores_word_order():
    enc = load_snippets("5.1.1")["TransformerEncoder"](16, 2, 2).eval()
    x = torch.randn(3, 5, 16)  # (B, T, d_model), as a batch-first reader would pass it
    changed = x.clone()
    changed[1] += 1.0  # change only sequence 1
    with torch.no_grad():
        assert (enc(changed)[0] - enc(x)[0]).abs().max() > 1e-3  # ... and sequence 0's output moves
        seq = torch.randn(5, 1, 16)  # (T, B, d_model), the layout it expects
        perm = torch.tensor([4, 2, 0, 1, 3])
        assert torch.allclose(enc(seq[perm]), enc(seq)[perm], atol=1e-5)  # no positions: order invisible


def test_512_decoder_sees_the_future():
    dec = load_snippets("5.1.2")["TransformerDecoder"](16, 2, 2).eval()
    memory, tgt = torch.randn(4, 1, 16), torch.randn(6, 1, 16)  # (T, B, d_model)
    later = tgt.clone()
    later[-1] += 1.0  # change only the last target position
    with torch.no_grad():
        assert (dec(later, memory)[0] - dec(tgt, memory)[0]).abs().max() > 1e-3


def test_521_522_teacher_and_student_are_the_same_class():
    assert SNIPPETS["5.2.1"].replace("BertTeacher", "BertStudent") == SNIPPETS["5.2.2"]
    import transformers
    ns = load_snippets("5.2.1", "5.2.2")
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=20)
    teacher, student = ns["BertTeacher"](cfg).eval(), ns["BertStudent"](cfg).eval()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(teacher) == count(student)  # nothing makes the student smaller
    ids = torch.randint(0, 50, (2, 7))
    mlm, nsp = teacher(ids, torch.ones_like(ids), torch.zeros_like(ids))
    assert mlm.shape == (2, 7, 50) and nsp.shape == (2, 2)
    # a plain nn.Module never ties the MLM decoder to the word embeddings
    assert teacher.cls.predictions.decoder.weight is not teacher.bert.embeddings.word_embeddings.weight


def test_531_gpt_crashes_on_memory_none():
    gpt = load_snippets("5.3.1")["GPT"](50, 16, 2, 2)
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'is_nested'"):
        gpt(torch.randint(0, 50, (3, 7)))


def _names(**extra):
    loader = [(torch.randint(0, 50, (2, 6)), torch.randint(0, 50, (2, 6)))]
    sizes = dict(vocab_size=50, d_model=16, nhead=2, num_layers=1, num_epochs=1, num_classes=3)
    return sizes | {"dataloader": loader} | extra


def test_532_as_written_crashes_in_pretraining():
    with pytest.raises(NameError, match="vocab_size"):
        load_snippets("5.3.2")  # the guide never defines its sizes or data
    ns = load_snippets("5.3.1", namespace=_names())
    with pytest.raises(AttributeError, match="is_nested"):
        run_snippet("5.3.2", ns)


def test_532_with_a_working_gpt_never_saves_and_then_mismatches_the_loss(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = load_snippets("5.3.1", namespace=_names())

    def forward(self, x):  # one fix only: give the decoder a memory (still no causal mask)
        x = self.embedding(x)
        return self.fc(self.transformer(x, x))

    # patch the class itself: a subclass would break the guide's super(GPT, self).__init__()
    ns["GPT"].forward = forward
    run_snippet("5.3.2/pretrain", ns)  # pre-training now runs...
    assert torch.isfinite(ns["loss"])
    with pytest.raises(FileNotFoundError, match="pretrained_model.pt"):
        run_snippet("5.3.2/finetune", ns)  # ...but nothing saved the model it loads
    torch.save(ns["model"].state_dict(), tmp_path / "pretrained_model.pt")  # the missing line
    ns["dataloader"] = [(torch.randint(0, 50, (4, 6)), torch.randint(0, 3, (4,)))]  # one label per text
    with pytest.raises(RuntimeError, match=r"Expected target size \[4, 3\], got \[4\]"):
        run_snippet("5.3.2/finetune", ns)  # logits (4, 6, 3) per position vs labels (4,)
