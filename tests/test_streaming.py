"""The GPU prediction path (models/streaming.py), run on the CPU: worker tokenising gives the same
probabilities, in input order, as the in-process path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.models.batching import encode, probabilities
from trainer.models.streaming import stream_probabilities

TEXTS = ["Shares rose.", "The minister said the talks had failed, according to two officials.", "Rain.",
         "Officials could not independently verify the claim made on Tuesday by the group."] * 9


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3).eval()
    return model, AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_probabilities_equal_the_in_process_ones(tiny, workers, monkeypatch):
    from trainer.models import streaming

    monkeypatch.setattr(streaming, "MIN_TEXTS_FOR_WORKERS", 0)  # worker processes even for a few texts
    model, tokenizer = tiny
    texts = TEXTS + ["word " * 80]  # longer than max_length: cut

    def logits(inputs):
        return model(**inputs).logits

    with torch.inference_mode():
        streamed, cut = stream_probabilities(texts, tokenizer, 64, torch.device("cpu"), logits, token_budget=64,
                                             workers=workers, block=8)
        ids, expected_cut = encode(tokenizer, texts, 64)
        expected = probabilities(ids, 4, tokenizer.pad_token_id,
                                 lambda i, m: logits({"input_ids": torch.from_numpy(i),
                                                      "attention_mask": torch.from_numpy(m)}).numpy())
    assert cut == expected_cut and cut[-1] and not any(cut[:-1])
    np.testing.assert_allclose(streamed, expected, atol=1e-5)
    assert streamed.shape == (len(texts), 3)


def test_no_texts_give_no_rows(tiny):
    model, tokenizer = tiny
    out, cut = stream_probabilities([], tokenizer, 64, torch.device("cpu"), lambda inputs: model(**inputs).logits)
    assert out.shape == (0, 3) and cut == []
