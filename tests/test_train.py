"""The trainer on real data: resume reproduces an uninterrupted run, Ctrl-C saves, damaged checkpoints are
clear errors while the other one stays usable, and bad settings are one-line errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from gpt_helpers import make_workspace

from llm_playground.errors import InputError, InvalidParameter, ModelLoadError
from llm_playground.model import load_model
from llm_playground.train.checkpoint import load_checkpoint, save_checkpoint
from llm_playground.train.config import build_config
from llm_playground.train.data import Batches, load_prepared
from llm_playground.train.metrics import read_metrics
from llm_playground.train.schedule import learning_rate
from llm_playground.train.trainer import Trainer
from llm_playground.workspace import Workspace

SMALL = ["n_layer=2", "n_head=2", "n_embd=32", "block_size=32", "batch_size=4", "max_iters=12", "eval_interval=6",
         "log_interval=1", "eval_iters=2", "sample_tokens=8", "dropout=0.1", "warmup_iters=3", "threads=1"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    return make_workspace(tmp_path_factory.mktemp("ws"), chars=120_000, vocab_size=400)


def _losses(run) -> list[tuple[str, int, float]]:
    return [(r["kind"], r["step"], r.get("loss", r.get("val_loss"))) for r in read_metrics(run / "metrics.jsonl")]


@pytest.fixture(scope="module")
def straight(workspace):
    """One uninterrupted run, trained once for the tests that read it (in any order)."""
    result = Trainer(build_config("tiny", overrides=SMALL), workspace, workspace.run_dir("straight")).run()
    assert result.step == 12 and not result.interrupted
    return result


def test_resume_after_ctrl_c_reproduces_the_uninterrupted_run(workspace, straight):
    config = build_config("tiny", overrides=SMALL)

    def interrupt(step: int) -> None:
        if step == 5:
            raise KeyboardInterrupt

    run = workspace.run_dir("resumed")
    first = Trainer(config, workspace, run, on_step=interrupt).run()
    assert first.interrupted and first.step == 5
    _, state = load_checkpoint(run / "checkpoints" / "last")
    assert state["step"] == 5 and state["data_position"]["step"] == 5
    second = Trainer(config, workspace, run, resume=True).run()
    assert second.step == 12 and not second.interrupted
    assert _losses(run) == _losses(workspace.run_dir("straight"))  # every train and eval loss, exactly
    assert second.samples[-1] == straight.samples[-1]
    a, _ = load_checkpoint(workspace.run_dir("straight") / "checkpoints" / "last")
    b, _ = load_checkpoint(run / "checkpoints" / "last")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    losses = [r["loss"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "train"]
    assert losses[-1] < losses[0]  # it learns
    assert (run / "loss.png").stat().st_size > 1000 or (run / "loss.html").is_file()
    # The run is a model everywhere a pretrained one is.
    model = load_model(str(run), threads=1)
    assert model.info.location.endswith(("best", "last")) and model.forward([5, 6], model.new_cache()).shape == (400,)


def test_damaged_checkpoints(workspace, straight):
    run = workspace.run_dir("damaged")  # a copy: the straight run stays intact for the other tests
    shutil.copytree(workspace.run_dir("straight"), run)
    last = run / "checkpoints" / "last"
    net, state = load_checkpoint(last)
    optimizer = torch.optim.AdamW(net.parameters())
    # A save that fails half-way (here: an unpicklable value) leaves the previous checkpoint as it was.
    before = (last / "model.safetensors").read_bytes()
    with pytest.raises(Exception):  # noqa: B017 (whatever pickling raises)
        save_checkpoint(last, net, run / "tokenizer.model", optimizer, {**state, "bad": lambda: 0})
    assert (last / "model.safetensors").read_bytes() == before
    load_checkpoint(last)
    # A truncated trainer state: resuming says which file, and the run still loads through `best`.
    trainer_state = last / "trainer.pt"
    trainer_state.write_bytes(trainer_state.read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="trainer.pt is truncated or corrupt"):
        Trainer(build_config("tiny", overrides=SMALL), workspace, run, resume=True).run()
    assert load_model(str(run), threads=1).info.location.endswith("best")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"preset": "huge"}, "unknown preset 'huge'"),
    ({"overrides": ["foo=1"]}, "foo: unknown setting"),
    ({"overrides": ["n_layer=abc"]}, "n_layer: Input should be a valid integer"),
    ({"overrides": ["n_embd=100", "n_head=3"]}, "multiple of n_head"),
    ({"overrides": ["max_iters"]}, "not key=value"),
])
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(InvalidParameter, match=message) as caught:
        build_config(**kwargs)
    assert "\n" not in str(caught.value)


def test_yaml_config_and_precedence(tmp_path):
    (tmp_path / "c.yaml").write_text("n_layer: 3\nlearning_rate: 0.002\n", encoding="utf-8")
    config = build_config("small", tmp_path / "c.yaml", ["learning_rate=3e-4"])
    assert (config.n_layer, config.n_embd, config.learning_rate) == (3, 384, 3e-4)
    assert build_config("gpt2-124m").n_embd == 768


def test_schedule_warms_up_then_decays():
    config = build_config("tiny", overrides=["max_iters=100", "warmup_iters=10"])
    rates = [learning_rate(s, config) for s in range(101)]
    assert 0 < rates[0] < rates[9] < rates[10] and rates[10] == pytest.approx(config.learning_rate, rel=0.01)
    assert rates[100] == pytest.approx(config.min_lr)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))


def test_batches_differ_by_rank_and_repeat_by_step(workspace):
    prepared = load_prepared(workspace)
    rank0, rank1 = (Batches(prepared, 32, 4, seed=1, rank=r) for r in (0, 1))
    x0, y0 = rank0.get("train", 7, 0)
    assert torch.equal(x0, rank0.get("train", 7, 0)[0]) and not torch.equal(x0, rank1.get("train", 7, 0)[0])
    assert torch.equal(x0[:, 1:], y0[:, :-1])
    train = np.asarray(prepared.train)
    start = int(np.flatnonzero((np.lib.stride_tricks.sliding_window_view(train, 33) == x0[0].numpy()
                                .tolist() + [int(y0[0, -1])]).all(1))[0])
    assert train[start:start + 32].tolist() == x0[0].tolist()


def test_missing_stages_and_small_data(tmp_path, workspace):
    empty = Workspace(tmp_path)
    with pytest.raises(InputError, match=r"stage: collect.*") as caught:
        Trainer(build_config("tiny"), empty, empty.run_dir("x")).run()
    assert "llmp data collect" in caught.value.fix
    empty.raw_dir.mkdir(parents=True)
    empty.corpus_path.write_text("some text", encoding="utf-8")
    with pytest.raises(InputError, match="stage: tokenizer"):
        Trainer(build_config("tiny"), empty, empty.run_dir("x")).run()
    with pytest.raises(InvalidParameter, match="block_size 100000 is larger than the train data"):
        Trainer(build_config("tiny", overrides=["block_size=100000"]), workspace, workspace.run_dir("big")).run()


def test_metrics_lines_are_json(workspace, straight):
    lines = (workspace.run_dir("straight") / "metrics.jsonl").read_text().splitlines()
    kinds = [json.loads(line)["kind"] for line in lines]
    assert set(kinds) == {"train", "eval"}  # both kinds, and nothing else
    assert kinds.count("eval") >= 2 and kinds.count("train") >= 12 // 2  # SMALL: 12 steps, evals at 0, 6, 12


def test_device_and_autocast_choices():
    from llm_playground.model.runtime import native_bf16
    from llm_playground.train.trainer import autocast_for, resolve_device

    cpu = torch.device("cpu")
    auto = build_config("tiny")
    assert resolve_device(build_config("tiny", overrides=["device=cpu"])) == cpu
    # auto: bf16 only where this CPU computes it natively (AVX512-BF16/AMX), else float32
    assert isinstance(autocast_for(auto, cpu), torch.autocast) == native_bf16(cpu)
    assert not isinstance(autocast_for(build_config("tiny", overrides=["dtype=float32"]), cpu), torch.autocast)
    bf16 = autocast_for(build_config("tiny", overrides=["dtype=bfloat16"]), cpu)
    assert isinstance(bf16, torch.autocast) and bf16.fast_dtype == torch.bfloat16
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            resolve_device(build_config("tiny", overrides=["device=cuda"]))


def test_bf16_autocast_trains_on_cpu(workspace):
    result = Trainer(build_config("tiny", overrides=[*SMALL, "max_iters=3", "eval_interval=3", "dtype=bfloat16"]),
                     workspace, workspace.run_dir("bf16")).run()
    assert result.step == 3 and 4 < result.val_loss < 7


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA only: bf16 autocast, fused AdamW, torch.compile")
def test_cuda_bf16_fused_compiled(workspace):
    config = build_config("tiny", overrides=[*SMALL, "max_iters=20", "eval_interval=10", "compile=true"])
    trainer = Trainer(config, workspace, workspace.run_dir("cuda"))
    result = trainer.run()
    assert trainer.device.type == "cuda" and trainer.optimizer.defaults["fused"]
    losses = [r["loss"] for r in read_metrics(workspace.run_dir("cuda") / "metrics.jsonl") if r["kind"] == "train"]
    assert result.step == 20 and losses[-1] < losses[0]
