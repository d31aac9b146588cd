"""The local model: cache detection and rebuild, clear errors, deterministic chat, adapters."""

from __future__ import annotations

import functools
import json
import operator
import shutil
from pathlib import Path

import pytest

from lessonlib import models
from lessonlib.errors import LessonError


def _fake_cache(folder: Path) -> Path:
    """A tiny folder with one real safetensors file and a manifest, as prepare() writes it."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    save_file({"w": torch.arange(64, dtype=torch.float32)}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text("{}")
    models.write_manifest(folder, Path(models.GGUF_NAME))
    return folder


def test_cache_state_missing(tmp_path):
    state = models.cache_state(tmp_path / "nothing")
    assert state.status == "missing" and not state.ready


def test_cache_state_ready_then_truncated_then_tampered(tmp_path):
    folder = _fake_cache(tmp_path / "m")
    assert models.cache_state(folder, verify=True).ready
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-10])
    state = models.cache_state(folder)
    assert state.status == "corrupt" and "model.safetensors" in state.problem
    weights.write_bytes(data[:-1] + b"\x01")  # same size, different bytes
    assert models.cache_state(folder).ready  # the quick check cannot see it...
    assert models.cache_state(folder, verify=True).status == "corrupt"  # ...the checksum does


def test_cache_state_unfinished_conversion(tmp_path):
    folder = _fake_cache(tmp_path / "m")
    (folder / models.MANIFEST).unlink()
    assert "no manifest" in models.cache_state(folder).problem


def test_the_bf16_copy_holds_the_weights_rounded_and_loads_by_resolve(monkeypatch, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    monkeypatch.setenv("LESSONLIB_CACHE", str(tmp_path / "cache"))
    folder = models.default_cache_path()
    folder.mkdir(parents=True)
    weights = torch.linspace(-3, 3, 64, dtype=torch.float32) / 7  # values that bf16 rounds
    save_file({"w": weights, "b": torch.ones(2, 3)}, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text("{}")
    models.write_manifest(folder, Path(models.GGUF_NAME))
    assert models.resolve("smollm2") == str(folder)
    copy = Path(models.resolve("smollm2", dtype="bfloat16"))
    assert copy == folder / models.BF16_FOLDER and models.cache_state(copy, verify=True).ready
    stored = load_file(str(copy / "model.safetensors"))
    assert stored["w"].dtype == torch.bfloat16 and torch.equal(stored["w"], weights.to(torch.bfloat16))
    assert stored["b"].shape == (2, 3)
    assert json.loads((copy / "config.json").read_text())["dtype"] == "bfloat16"
    made = (copy / "model.safetensors").stat().st_mtime_ns
    assert models.prepare_bf16() == copy and (copy / "model.safetensors").stat().st_mtime_ns == made  # once
    assert models.cache_state(folder, verify=True).ready  # the fp32 cache is untouched


def test_missing_wheel_gives_the_install_command(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LessonError) as info:
        models.gguf_path()
    assert models.INSTALL_WHEEL in info.value.fix


def test_unwritable_cache_is_a_clear_error(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LESSONLIB_CACHE", str(blocker / "cache"))
    with pytest.raises(LessonError) as info:
        models.prepare()
    assert "LESSONLIB_CACHE" in info.value.fix


@pytest.mark.parametrize("name", ["gpt-7-ultra", "not a model", "../x/y/z"])
def test_unknown_model_name(name):
    with pytest.raises(LessonError, match="unknown model"):
        models.resolve(name)


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(LessonError, match="not a transformers model"):
        models.resolve(str(tmp_path))


def test_hub_id_offline_is_a_clear_error(model_dir):
    with pytest.raises(LessonError, match="not cached locally"):
        models.load("no-such-owner/no-such-model-xyz")


def test_missing_adapter_folder(tmp_path, model_dir):
    with pytest.raises(LessonError, match="does not exist"):
        models.load(adapter=tmp_path / "nope")
    with pytest.raises(LessonError, match="not a LoRA adapter"):
        models.load(adapter=tmp_path)


def test_info_reads_config_without_weights(model_dir):
    info = models.info()
    assert info["cache"]["status"] == "ready"
    assert info["architecture"] == "LlamaForCausalLM"
    assert info["parameters_millions"] == pytest.approx(134.5, abs=0.1)
    assert info["vocab_size"] == 49152


def test_chat_is_deterministic(model_dir, monkeypatch):
    monkeypatch.setenv("LESSONLIB_GENERATION_CACHE", "0")  # generate twice for real
    first = models.chat("Name one fruit.", max_new_tokens=12)
    second = models.chat("Name one fruit.", max_new_tokens=12)
    assert isinstance(first, str) and first
    assert first == second


def test_chat_rejects_zero_tokens(model_dir):
    with pytest.raises(LessonError, match="max_new_tokens"):
        models.chat("hi", max_new_tokens=0)


def test_chat_with_a_lora_adapter(model_dir, tmp_path):
    """A real (untrained, randomly initialised) LoRA adapter saved by peft loads and changes replies."""
    import torch
    from peft import LoraConfig, get_peft_model

    base = models.load().model
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(base, config)
    peft_model.save_pretrained(tmp_path / "adapter")
    peft_model.unload()  # give the shared base model back untouched
    models.unload()

    plain = models.chat("Name one fruit.", max_new_tokens=12)
    tuned = models.chat("Name one fruit.", adapter=tmp_path / "adapter", max_new_tokens=12)
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["r"] == 4
    assert isinstance(tuned, str)
    assert tuned != plain

    # a kernel that holds the tuned model already: its adapter switched off gives the base model's replies
    from lessonlib import corpora, data
    from lessonlib.train.compare import before_after

    examples = data.read_examples(corpora.split_path("recipes", "test"))[:2]
    loaded = models.load(adapter=tmp_path / "adapter")
    rows = before_after(examples, tuned=loaded.model, tokenizer=loaded.tokenizer, max_new_tokens=12)
    assert rows == before_after(examples, adapter=str(tmp_path / "adapter"), max_new_tokens=12)
    assert [r["base"] != r["tuned"] for r in rows] == [True, True]


@pytest.mark.slow
def test_truncated_default_cache_is_rebuilt(monkeypatch, tmp_path, model_dir):
    """End to end: a real cache, truncated, is detected and rebuilt by prepare()."""
    cache = tmp_path / "cache"
    shutil.copytree(model_dir, cache / "models" / models.CACHE_NAME)
    monkeypatch.setenv("LESSONLIB_CACHE", str(cache))
    weights = models.default_cache_path() / "model.safetensors"
    with open(weights, "r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)
    assert models.cache_state().status == "corrupt"
    messages: list[str] = []
    models.prepare(log=messages.append)
    assert models.cache_state(verify=True).ready
    assert any("rebuilding" in m for m in messages)


def test_greedy_replies_are_reused_without_loading_the_model(model_dir, tmp_path, monkeypatch):
    from lessonlib import generation_cache

    monkeypatch.setattr(generation_cache, "folder", lambda: tmp_path / "generations")
    conversations = [[{"role": "user", "content": "Name one fruit."}], [{"role": "user", "content": "Name one colour."}]]
    first, seconds = models.generate_many_timed(conversations, max_new_tokens=8)
    assert len(list((tmp_path / "generations").rglob("*.json"))) == 1  # one batch, one entry
    models.unload()
    again, cached_seconds = models.generate_many_timed(conversations, max_new_tokens=8)
    assert again == first and cached_seconds == pytest.approx(seconds, abs=1e-3)
    assert models.loading._LOADED == {}  # answered from the cache: nothing was loaded
    assert models.generate_many(conversations, max_new_tokens=9) != [] and models.loading._LOADED  # other settings: generated
    models.chat("Name one fruit.", max_new_tokens=8, temperature=0.7)  # sampling is never cached
    assert len(list((tmp_path / "generations").rglob("*.json"))) == 2


def test_a_damaged_cache_entry_is_regenerated(model_dir, tmp_path, monkeypatch):
    from lessonlib import generation_cache

    monkeypatch.setattr(generation_cache, "folder", lambda: tmp_path / "generations")
    reply = models.chat("Name one fruit.", max_new_tokens=8)
    (entry,) = (tmp_path / "generations").rglob("*.json")
    entry.write_text("{not json")
    assert models.chat("Name one fruit.", max_new_tokens=8) == reply
    assert json.loads(entry.read_text())["replies"] == [reply]


def test_adapter_fingerprint_follows_content_not_folder(tmp_path):
    from lessonlib import generation_cache

    for name, weights in (("a", b"one"), ("b", b"one"), ("c", b"two")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text("{}")
        (tmp_path / name / "adapter_model.safetensors").write_bytes(weights)
    a, b, c = (generation_cache.adapter_fingerprint(tmp_path / n) for n in "abc")
    assert a == b != c


def test_unload_gives_back_the_token_encodings_too():
    """A notebook's last cell (models.unload) leaves its kernel no tiktoken encoding (o200k_base: ~65 MB)."""
    from lessonlib import models, tokens

    assert tokens.encoding_for("gpt-4o-mini").encode("hi")
    models.unload()
    assert tokens.forget_encodings() == 0  # nothing left to forget
    assert tokens.encoding_for("gpt-4o-mini").encode("hi")  # loaded again on its next use


def test_replies_are_computed_in_bf16_only_where_the_cpu_computes_it(monkeypatch):
    """bf16 halves the memory of a reply worker where the CPU has native bf16; elsewhere it would be slow."""
    from lessonlib import models, system

    monkeypatch.delenv("LESSONLIB_GENERATION_DTYPE", raising=False)
    base = {"cores": 2, "logical_cpus": 2, "model": "test", "avx2": True, "avx512": True}
    monkeypatch.setattr(system, "cpu_info", lambda: {**base, "avx512_bf16": False, "amx": False})
    assert models.generation_dtype("cpu") == "float32" and models.generation_dtype("cuda") == "bfloat16"
    monkeypatch.setattr(system, "cpu_info", lambda: {**base, "avx512_bf16": True, "amx": False})
    assert models.generation_dtype("cpu") == "bfloat16"
    monkeypatch.setenv("LESSONLIB_GENERATION_DTYPE", "float32")
    assert models.generation_dtype("cpu") == "float32"


def test_a_cpu_without_bf16_can_be_played(monkeypatch):
    from lessonlib import system

    monkeypatch.setenv("LESSONLIB_CPU_WITHOUT", "avx512_bf16, amx,unknown")
    info = system.cpu_info()
    assert info["avx512_bf16"] is False and info["amx"] is False and info["cores"] >= 1


def test_long_prompts_are_generated_in_smaller_batches():
    from lessonlib import models

    short, long = [{"role": "user", "content": "x" * 100}], [{"role": "user", "content": "x" * 1500}]
    assert [len(b) for b in models.batches([short] * 10)] == [8, 2]
    assert [len(b) for b in models.batches([long] * 10)] == [4, 4, 2]  # 4 x 1,500 characters fill the budget
    assert functools.reduce(operator.iadd, models.batches([short, long, short] * 3), []) == [short, long, short] * 3  # the order is kept


def test_the_reply_cache_keeps_to_its_size_and_drops_the_entries_used_longest_ago(tmp_path, monkeypatch):
    import os

    from lessonlib import generation_cache as cache

    monkeypatch.setenv("LESSONLIB_CACHE", str(tmp_path))
    keys = [cache.entry_key({"batch": i}) for i in range(4)]
    for age, key in enumerate(keys[:3]):
        cache.store(key, ["x" * 100], 0.1)
        then = 1_000_000_000_000_000_000 + age * 1_000_000_000  # stored a second apart, oldest first
        os.utime(cache._path(key), ns=(then, then))
    assert cache.lookup(keys[0]) is not None  # used now: the newest
    size = cache._path(keys[0]).stat().st_size
    monkeypatch.setattr(cache, "MAX_BYTES", 3 * size)
    cache.store(keys[3], ["x" * 100], 0.1)  # a fourth entry: one must go, the one used longest ago
    assert [cache.lookup(key) is not None for key in keys] == [True, False, True, True]
    assert cache.prune(0) == 3 and not list(cache.folder().glob("*/*.json"))
