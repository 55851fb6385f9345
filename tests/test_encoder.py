import json

import pytest
import torch

from qa.config import DEFAULT_READER_DIR
from qa.embed import default_model_dir
from qa.errors import PrecisionUnavailable
from qa.models.int8 import int8_linear_works
from qa.models.encoder import BertEncoder, is_plain_bert, load_encoder


def batch(tokenizer_dir, pairs=None):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    if pairs:
        return tokenizer([q for q, _ in pairs], [c for _, c in pairs], padding=True, return_tensors="pt")
    texts = ["Sarah Sanders said there is not a second meeting locked in.", "Short one.",
             "The Bank of England held interest rates, " * 12]
    return tokenizer(texts, padding=True, return_tensors="pt")


def test_embedder_forward_matches_transformers_bert():
    from transformers import AutoModel

    model_dir = default_model_dir()
    enc = batch(model_dir)
    ours = load_encoder(model_dir, torch.float32)
    assert isinstance(ours, BertEncoder) and ours.dtype is torch.float32
    reference = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    with torch.inference_mode():
        got = ours(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).last_hidden_state
        want = reference(**enc).last_hidden_state
    real = enc["attention_mask"].bool()
    torch.testing.assert_close(got[real], want[real], atol=2e-4, rtol=1e-4)


def test_reader_forward_matches_transformers_question_answering():
    from transformers import AutoModelForQuestionAnswering

    enc = batch(DEFAULT_READER_DIR, [
        ("Who wrote the letter?", "Kim Jong Un wrote the letter to Trump, Sanders said."),
        ("Where was the first summit?", "The first summit was held in Singapore in June, and a second one is not set."),
    ])
    ours = load_encoder(DEFAULT_READER_DIR, torch.float32, qa_head=True)
    reference = AutoModelForQuestionAnswering.from_pretrained(str(DEFAULT_READER_DIR), dtype=torch.float32).eval()
    with torch.inference_mode():
        got, want = ours(**enc), reference(**enc)
    real = enc["attention_mask"].bool()
    torch.testing.assert_close(got.start_logits[real], want.start_logits[real], atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(got.end_logits[real], want.end_logits[real], atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("change", [
    {"model_type": "roberta"}, {"hidden_act": "gelu_new"}, {"position_embedding_type": "relative_key"},
    {"is_decoder": True},
])
def test_other_architectures_are_left_to_transformers(tmp_path, change):
    config = json.loads((DEFAULT_READER_DIR / "config.json").read_text())
    assert is_plain_bert(config)
    config.update(change)
    assert not is_plain_bert(config)
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "model.safetensors").write_bytes((DEFAULT_READER_DIR / "model.safetensors").read_bytes())
    assert load_encoder(tmp_path, torch.float32) is None


def test_missing_or_broken_files_fall_back(tmp_path):
    assert load_encoder(tmp_path, torch.float32) is None
    (tmp_path / "config.json").write_text("{not json")
    assert load_encoder(tmp_path, torch.float32) is None


@pytest.mark.skipif(not int8_linear_works(), reason="no int8 kernels on this CPU/torch")
def test_int8_reader_finds_the_same_spans_as_float32():
    from qa.models.encoder import load_model

    pairs = [
        ("Who wrote the letter?", "Kim Jong Un wrote the letter to Trump, Sanders said on Thursday."),
        ("Where was the first summit?", "The first summit was held in Singapore in June, and a second one is not set."),
        ("How much will the bridge cost?", "The council approved the bridge, which will cost 40 million pounds, on Tuesday."),
    ]
    enc = batch(DEFAULT_READER_DIR, pairs)
    float32, int8 = load_model(DEFAULT_READER_DIR, "float32", qa_head=True), load_model(DEFAULT_READER_DIR, "int8", qa_head=True)
    assert (float32.precision, int8.precision) == ("float32", "int8")
    # int8 keeps the word-embedding table in float16 (lossless here: the shipped weights are float16).
    tables = {name: t.dtype for name, t in int8.named_buffers() if name.endswith("word_embeddings.weight")}
    assert list(tables.values()) == [torch.float16], tables
    with torch.inference_mode():
        want, got = float32(**enc), int8(**enc)
    real = enc["attention_mask"].bool()
    for a, b in [(want.start_logits, got.start_logits), (want.end_logits, got.end_logits)]:
        assert torch.equal(a.masked_fill(~real, -1e4).argmax(1), b.masked_fill(~real, -1e4).argmax(1))
        assert (a[real] - b[real]).abs().max() < 1.0


@pytest.mark.parametrize("qa_head", [False, True])
def test_other_architectures_load_through_transformers(tmp_path, qa_head):
    from transformers import DistilBertConfig, DistilBertForQuestionAnswering, DistilBertModel

    from qa.models.encoder import load_model

    config = DistilBertConfig(vocab_size=100, dim=32, n_layers=1, n_heads=2, hidden_dim=64, max_position_embeddings=64)
    (DistilBertForQuestionAnswering if qa_head else DistilBertModel)(config).save_pretrained(tmp_path)
    model = load_model(tmp_path, "float32", qa_head=qa_head)
    assert not isinstance(model, BertEncoder) and model.hidden_size == 32 and not model.training
    if int8_linear_works():  # int8 runs BertEncoder only: auto means float32 here, an explicit int8 is refused
        with pytest.raises(PrecisionUnavailable, match="plain BERT"):
            load_model(tmp_path, "int8", qa_head=qa_head)
    assert load_model(tmp_path, "auto", qa_head=qa_head).precision in ("float32", "bfloat16")
    ids = torch.tensor([[1, 5, 7, 2]])
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert (out.start_logits.shape if qa_head else out.last_hidden_state.shape) == ((1, 4) if qa_head else (1, 4, 32))


def test_tokenizers_equal_transformers_windows_included():
    # load_tokenizer reads tokenizer.json without transformers; the reference is transformers' tokenizer.
    from transformers import AutoTokenizer

    from qa.models.encoder import load_tokenizer

    question = "Who chairs the committee?"
    passage = "The committee, chaired by Ms Émilie Dubois, met on Tuesday. " * 40  # several windows
    reference = AutoTokenizer.from_pretrained(str(DEFAULT_READER_DIR))(
        question, passage, truncation="only_second", max_length=128, stride=32,
        return_overflowing_tokens=True, return_offsets_mapping=True,
    )
    tokenizer = load_tokenizer(DEFAULT_READER_DIR)
    tokenizer.enable_truncation(128, stride=32, strategy="only_second")
    first = tokenizer.encode(question, passage)
    windows = [first, *first.overflowing]
    assert len(windows) == len(reference["input_ids"]) > 3
    assert [w.ids for w in windows] == reference["input_ids"]
    assert [w.type_ids for w in windows] == reference["token_type_ids"]
    assert [[tuple(o) for o in w.offsets] for w in windows] == [[tuple(o) for o in m] for m in reference["offset_mapping"]]
    embedder = load_tokenizer(default_model_dir())
    assert embedder.truncation is None and embedder.padding is None  # tokenizer.json's own (128, padded) are dropped
    text = "Sarah Sanders said there is NOT a second meeting locked in. " * 50
    assert embedder.encode(text).ids == AutoTokenizer.from_pretrained(str(default_model_dir()))(text)["input_ids"]


def test_product_path_does_not_import_transformers():
    # Importing transformers costs ~1.3 s and ~25 MB in every process; embedding and reading run without it.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from qa.config import DEFAULT_READER_DIR\n"
        "from qa.embed import Embedder\n"
        "from qa.read import Reader\n"
        "from qa.records import Chunk, Passage\n"
        "from qa.ingest import make_article\n"
        "vectors = Embedder().encode(['Kim sent a letter.', 'Trump answered it.'])\n"
        "article = make_article('T', 'Kim sent a letter to Trump.', explicit_id='a')\n"
        "chunk = Chunk(0, 'a', article.text, 0, len(article.text))\n"
        "out = Reader(DEFAULT_READER_DIR).read('Who sent a letter?', [Passage(chunk, article, 1.0, 0)])\n"
        "assert vectors.shape == (2, 384) and out.spans, out\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'transformers'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
