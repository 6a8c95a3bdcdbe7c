"""Pre-train the small word-level GPT of page 5.3.2 as a language model on SST-2's training sentences.

    WMBOOK_DATA_DIR=/work/shared/data python scripts/pretrain_sst2_gpt.py   # the full recipe
    python scripts/pretrain_sst2_gpt.py --steps 5 --out /tmp/x.pt           # a smoke test

Only the *text* of SST-2's 67,349 training sentences (phrases) is used, never a label, never
the dev set. Texts are tokenised with MiniLM's WordPiece tokenizer and mapped onto a reduced
vocabulary (the special tokens + the most frequent ids; the rest -> [UNK]), see
``wmbook.lab.finetune.ReducedVocab``. 2 % of the sentences are held out to report a validation
loss. The run is seeded and uses a fixed number of CPU threads, so it is repeatable on the
same machine and library versions. It writes the checkpoint (float16 weights + config +
vocabulary + how it was trained) and prints the sha256 to record as ``SST2_GPT_SHA256`` in
wmbook/lab/finetune.py.

What the checkpoint records of the run (its ``meta``) is the final held-out loss and the size
of the training data, not a loss curve: the held-out losses every 500 steps are printed only.
The learning rate decays over ``--steps`` (cosine), so a shorter ``--steps`` is a different
schedule. Options: ``--help`` (the shared command line of scripts/_common.py).
"""
from __future__ import annotations

import math
import platform
import time

import torch
import torch.nn.functional as F
from _common import parse, script_parser  # scripts/_common.py

import wmbook
from wmbook.nn.bert import minilm_tokenizer
from wmbook.data.loaders import load_sst2
from wmbook.lab.finetune import CHECKPOINT_DIR, SST2_GPT_FILE, ReducedVocab, pad_batch, save_gpt_checkpoint
from wmbook.nn.gpt import GPT, GPTConfig

VOCAB_SIZE = 4096
CONFIG = dict(vocab_size=VOCAB_SIZE, n_ctx=64, d_model=96, n_heads=4, n_layers=3, dropout=0.1)
BATCH, LR, WARMUP, WEIGHT_DECAY = 128, 2e-3, 200, 0.01


def length_buckets(lengths: list[int], batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Batches of indices of similar length (little padding), in a shuffled order."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    perm = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in perm]


def lm_loss(model: GPT, seqs: list[list[int]], pad: int) -> torch.Tensor:
    """Mean next-token cross-entropy over the real tokens of ``seqs`` (right-padded)."""
    ids, lengths = pad_batch(seqs, pad)  # (B, T), (B,)
    targets = ids[:, 1:].masked_fill(torch.arange(1, ids.shape[1])[None] >= lengths[:, None], -100)
    logits = model(ids[:, :-1]).logits  # (B, T-1, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


def parser():
    """The command line; its defaults are the committed run's."""
    return script_parser(__doc__, steps=3000, out=CHECKPOINT_DIR / SST2_GPT_FILE,
                         steps_help=f"training steps of {BATCH} sentences; the learning rate decays to 0 at the last one")


def main(argv: list[str] | None = None) -> int:
    args = parse(parser(), argv)
    wmbook.seed_everything(args.seed)

    tok = minilm_tokenizer()
    texts = [s for s, _ in load_sst2()["train"]]
    g = torch.Generator().manual_seed(args.seed)
    perm = torch.randperm(len(texts), generator=g).tolist()
    n_val = len(texts) // 50
    val_texts, train_texts = [texts[i] for i in perm[:n_val]], [texts[i] for i in perm[n_val:]]
    orig = tok(train_texts, truncation=True, max_length=CONFIG["n_ctx"] + 1)["input_ids"]
    specials = [tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id]
    vocab = ReducedVocab.most_frequent(orig, VOCAB_SIZE, specials, unk=tok.unk_token_id)
    pad = vocab.encode([tok.pad_token_id])[0]
    train = [vocab.encode(s) for s in orig]
    val_orig = tok(val_texts, truncation=True, max_length=CONFIG["n_ctx"] + 1)["input_ids"]
    val = [vocab.encode(s) for s in val_orig]
    print(f"{len(train):,} training / {len(val):,} held-out sentences, "
          f"{sum(map(len, train)):,} training tokens; vocabulary {len(vocab)} covers "
          f"{vocab.coverage(orig):.1%} of the training tokens, {vocab.coverage(val_orig):.1%} of held-out")

    model = GPT(GPTConfig(**CONFIG))
    t0 = time.perf_counter()
    print(f"model: {wmbook.count_parameters(model):,} parameters, {CONFIG}")
    lengths = [len(s) for s in train]
    queue: list[list[int]] = []

    def loss_fn(m: GPT, step: int) -> torch.Tensor:
        if not queue:
            queue.extend(length_buckets(lengths, BATCH, g))
        return lm_loss(m, [train[i] for i in queue.pop()], pad)

    def eval_fn(m: GPT) -> dict:
        losses = [lm_loss(m, val[i : i + 256], pad).item() for i in range(0, len(val), 256)]
        val_loss = sum(losses) / len(losses)
        print(f"held-out loss {val_loss:.3f} (perplexity {math.exp(val_loss):.1f}) "
              f"after {time.perf_counter() - t0:.0f} s", flush=True)
        return {"val_loss": val_loss}

    cfg = wmbook.TrainConfig(steps=args.steps, lr=LR, warmup=min(WARMUP, args.steps), cosine=True,
                             weight_decay=WEIGHT_DECAY, eval_every=min(500, args.steps), progress=False)
    history = wmbook.train(model, loss_fn, cfg, eval_fn=eval_fn)
    seconds = time.perf_counter() - t0
    for r in history.records:
        if "val_loss" in r:
            print(f"step {r['step']:5d}  held-out loss {r['val_loss']:.3f} (perplexity {math.exp(r['val_loss']):.1f})")
    meta = {"steps": args.steps, "seed": args.seed, "batch": BATCH, "lr": LR,
            "val_loss": round(history.last("val_loss"), 4), "train_sentences": len(train),
            "train_tokens": sum(map(len, train)),
            "train_seconds": round(seconds, 1), "threads": args.threads, "torch": str(torch.__version__),
            "python": platform.python_version()}
    sha = save_gpt_checkpoint(args.out, model, vocab, meta)
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.2f} MiB) in {seconds:.0f} s of training")
    print(f"sha256 {sha}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
