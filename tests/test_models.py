import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from nichetune.errors import ModelNotAvailableError, UnsafeModelError
from nichetune.hashing import MANIFEST_NAME, sha256_file, verify_manifest, write_manifest
from nichetune.models.prepare import prepare_folder
from nichetune.models.resolve import resolve_model
from nichetune.models.safety import check_model_folder, count_parameters


def test_local_folder_resolves_and_is_checked(tiny_llama_dir):
    resolved = resolve_model(tiny_llama_dir)
    assert resolved.source == "local"
    assert resolved.is_causal_lm and not resolved.is_sequence_classifier
    assert resolved.path == Path(tiny_llama_dir).resolve()


def test_parameter_count_from_headers_matches_torch(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    assert count_parameters(Path(tiny_llama_dir)) == sum(p.numel() for p in model.parameters())


@pytest.fixture
def pickle_only_dir(tiny_llama_dir, tmp_path) -> Path:
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_llama_dir, folder)
    from safetensors.torch import load_file

    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    return folder


def test_pickle_only_folder_is_refused_with_explanation(pickle_only_dir):
    with pytest.raises(UnsafeModelError) as err:
        resolve_model(pickle_only_dir)
    assert "pytorch_model.bin" in err.value.message and "arbitrary code" in err.value.message
    assert "--allow-pickle" in err.value.hint


def test_allow_pickle_overrides_and_gives_the_same_model(pickle_only_dir, tiny_llama_dir):
    from nichetune.models.loading import load_causal_lm

    assert check_model_folder(pickle_only_dir, allow_pickle=True) == "pickle"
    safe_model, tok = load_causal_lm(tiny_llama_dir, dtype="fp32")
    pickled_model, _ = load_causal_lm(pickle_only_dir, dtype="fp32", allow_pickle=True)
    ids = tok("the compiler translates", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(safe_model(ids).logits, pickled_model(ids).logits)


def test_remote_code_is_refused_by_default(tiny_llama_dir, tmp_path):
    folder = tmp_path / "custom"
    shutil.copytree(tiny_llama_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsafeModelError, match="custom Python code"):
        resolve_model(folder)
    assert resolve_model(folder, trust_remote_code=True).path == folder.resolve()


def test_folder_without_config_or_weights(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="config.json"):
        check_model_folder(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotAvailableError, match="no weight files"):
        check_model_folder(tmp_path)


def test_hub_id_offline_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotAvailableError) as err:
        resolve_model("someorg/some-model")
    assert "offline" in err.value.message
    assert "--online" in err.value.hint and "smollm2-135m-instruct" in err.value.hint


def test_unknown_reference_lists_embedded_models():
    with pytest.raises(ModelNotAvailableError) as err:
        resolve_model("./no/such/folder")
    assert "minilm-l6" in err.value.hint


def test_run_directory_resolves_to_its_model_folder(tiny_classifier_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_classifier_dir, run / "model")
    resolved = resolve_model(run)
    assert resolved.source == "run" and resolved.path == (run / "model").resolve()
    assert resolved.is_sequence_classifier


# --- hashing and manifests ---------------------------------------------------------------

def test_sha256_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_manifest_detects_changed_missing_and_extra_files(tmp_path):
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("beta")
    write_manifest(tmp_path)
    assert verify_manifest(tmp_path) == [] and verify_manifest(tmp_path, deep=False) == []
    (tmp_path / "a.txt").write_text("alphA")  # same size: only the deep check sees it
    assert verify_manifest(tmp_path, deep=False) == []
    assert verify_manifest(tmp_path) == ["sha256 mismatch for a.txt"]
    (tmp_path / "sub" / "b.txt").unlink()
    (tmp_path / "c.txt").write_text("x")
    assert verify_manifest(tmp_path) == ["missing file sub/b.txt", "unexpected file c.txt",
                                         "sha256 mismatch for a.txt"]


def _builder(log: Path):
    def build(tmp: Path) -> dict:
        with open(log, "a") as fh:
            fh.write("built\n")
        (tmp / "weights.bin").write_bytes(b"w" * 100)
        return {"note": "test"}
    return build


def test_prepare_builds_once_and_rebuilds_when_tampered(tmp_path):
    log, target = tmp_path / "log", tmp_path / "cache" / "m"
    prepare_folder(target, _builder(log))
    prepare_folder(target, _builder(log))
    assert log.read_text().count("built") == 1
    assert json.loads((target / MANIFEST_NAME).read_text())["note"] == "test"
    (target / "weights.bin").write_bytes(b"x" * 100)
    prepare_folder(target, _builder(log))
    assert log.read_text().count("built") == 2
    assert (target / "weights.bin").read_bytes() == b"w" * 100


def test_failed_build_leaves_nothing_that_looks_complete(tmp_path):
    target = tmp_path / "cache" / "m"

    def broken(tmp: Path) -> dict:
        (tmp / "half.bin").write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        prepare_folder(target, broken)
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir() if not p.name.endswith(".lock")] == []


def test_two_processes_preparing_at_once_build_once(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from nichetune.models.prepare import prepare_folder
        def build(tmp):
            with open({str(tmp_path / 'log')!r}, 'a') as fh:
                fh.write('built\\n')
            time.sleep(1.5)
            (tmp / 'weights.bin').write_bytes(b'w' * 1000)
            return {{}}
        path = prepare_folder(Path({str(tmp_path / 'cache' / 'm')!r}), build)
        print((path / 'weights.bin').stat().st_size)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == ["1000", "1000"]
    assert (tmp_path / "log").read_text().count("built") == 1
