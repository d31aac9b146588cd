"""Machine facts, the doctor as a function, and the chat widget driven like ipywidgets' tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from lessonlib import doctor, system
from lessonlib.widgets import ChatBox


def test_cpu_info_has_the_features_the_trainer_needs():
    cpu = system.cpu_info()
    assert cpu["cores"] >= 1
    assert all(isinstance(cpu[k], bool) for k in ("avx2", "avx512", "avx512_bf16", "amx"))


def test_memory_is_positive():
    mem = system.memory_gb()
    assert mem["total"] > 0 and 0 <= mem["available"] <= mem["total"]


def test_network_probe_respects_offline_mode():
    assert system.network_reachable() is None


def test_doctor_report_is_ok_with_prepared_model(model_dir):
    report = doctor.doctor(probe_network=False)
    assert report.ok
    names = [c.name for c in report.checks]
    assert names[:4] == ["python", "packages", "model weights", "model cache"]
    assert report.to_dict()["ok"] is True


def test_doctor_report_fails_on_missing_package(monkeypatch, model_dir):
    real = system.package_version
    monkeypatch.setattr(system, "package_version", lambda n: None if n == "trl" else real(n))
    report = doctor.doctor(probe_network=False, probe_gpu=False)
    assert not report.ok
    failed = [c for c in report.checks if c.status == "fail"]
    assert failed[0].name == "packages" and "trl" in failed[0].detail and "make setup" in failed[0].fix


def test_chat_box_answers_on_click(model_dir):
    box = ChatBox(max_new_tokens=8)
    box.prompt.value = "Name one fruit."
    box.send.click()
    assert box.reply.value
    assert "answered in" in box.status.value
    assert box.send.disabled is False


def test_chat_box_shows_problem_and_fix(model_dir):
    box = ChatBox(adapter="/no/such/adapter")
    box.send.click()
    assert box.reply.value == ""
    assert "Problem:" in box.status.value and "Fix:" in box.status.value


def test_chat_box_empty_prompt():
    box = ChatBox()
    box.prompt.value = "   "
    box.send.click()
    assert "Type a question" in box.status.value


def _cgroup_v2(root, cpu="max 100000", limit="max", current="500000000", inactive=0):
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(cpu + "\n")
    (root / "memory.max").write_text(limit + "\n")
    (root / "memory.current").write_text(current + "\n")
    (root / "memory.stat").write_text(f"anon 1\ninactive_file {inactive}\nactive_file 2\n")
    return root


def _cgroup_v1(root, quota="-1", period="100000", limit=str((1 << 63) - 4096), usage="500000000", inactive=0):
    (root / "cpu").mkdir(parents=True, exist_ok=True)
    (root / "memory").mkdir(parents=True, exist_ok=True)
    (root / "cpu" / "cpu.cfs_quota_us").write_text(quota + "\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text(period + "\n")
    (root / "memory" / "memory.limit_in_bytes").write_text(limit + "\n")
    (root / "memory" / "memory.usage_in_bytes").write_text(usage + "\n")
    (root / "memory" / "memory.stat").write_text(f"cache 5\ntotal_inactive_file {inactive}\n")
    return root


def test_cgroup_limits_v2_and_v1(tmp_path):
    binder = system.cgroup_limits(_cgroup_v2(tmp_path / "v2", cpu="50000 100000", limit="2000000000",
                                             current="1500000000", inactive=300_000_000))
    assert (binder.version, binder.cpu_quota, binder.memory_limit_gb) == (2, 0.5, 2.0)
    assert binder.memory_used_gb == 1.2 and binder.memory_free_gb == pytest.approx(0.8)  # reclaimable cache left out
    free = system.cgroup_limits(_cgroup_v2(tmp_path / "v2free"))
    assert free.cpu_quota is None and free.memory_limit_gb is None and free.memory_free_gb is None
    old = system.cgroup_limits(_cgroup_v1(tmp_path / "v1", quota="150000", limit="1000000000", usage="400000000"))
    assert (old.version, old.cpu_quota, old.memory_limit_gb, old.memory_used_gb) == (1, 1.5, 1.0, 0.4)
    unlimited = system.cgroup_limits(_cgroup_v1(tmp_path / "v1free"))
    assert unlimited.version == 1 and unlimited.cpu_quota is None and unlimited.memory_limit_gb is None
    assert system.cgroup_limits(tmp_path / "nothing").version is None


RECORDED = Path(__file__).parent / "cgroup"  # memory.stat of the real walk's cgroup (see its README)
#: cgroup v2's names for the v1 counters these files hold
V2_NAMES = {"total_rss": "anon", "total_cache": "file", "total_shmem": "shmem", "total_mapped_file": "file_mapped",
            "total_dirty": "file_dirty", "total_writeback": "file_writeback", "total_active_file": "active_file",
            "total_inactive_file": "inactive_file", "total_active_anon": "active_anon",
            "total_inactive_anon": "inactive_anon", "total_unevictable": "unevictable"}


def _recorded_usage(name, folder=RECORDED):
    """The cgroup's usage recorded with ``name``'s memory.stat (its last line, a comment)."""
    return int((folder / f"{name}.memory.stat").read_text().rsplit("memory.usage_in_bytes ", 1)[1])


def _recorded(name, root, version=1, limit=2 * 2**30, folder=RECORDED):
    """A cgroup tree (v1 or v2) holding the recorded ``memory.stat`` and usage ``name``, under a 2 GiB limit."""
    text, usage = (folder / f"{name}.memory.stat").read_text(), str(_recorded_usage(name, folder))
    if version == 1:
        _cgroup_v1(root, limit=str(limit), usage=usage)
        (root / "memory" / "memory.stat").write_text(text)
        return root
    stat = system.read_memory_stat(folder / f"{name}.memory.stat")
    _cgroup_v2(root, limit=str(limit), current=usage)
    (root / "memory.stat").write_text("".join(f"{v2} {stat[v1]}\n" for v1, v2 in V2_NAMES.items()))
    return root


@pytest.mark.parametrize("version", [1, 2])
def test_room_is_what_the_kernel_can_give_back_on_recorded_files(tmp_path, version):
    """The real walk's cgroup sat at its 2 GiB limit, page cache filling what was free. In use: anonymous memory,
    kernel memory and the mapped file pages on the active list; room: the rest of the file cache."""
    stat = system.read_memory_stat(RECORDED / "v1-after-04.memory.stat")
    limits = system.cgroup_limits(_recorded("v1-after-04", tmp_path, version))
    anon, mapped, _active = stat["total_rss"], stat["total_mapped_file"], stat["total_active_file"]
    assert anon / 1e9 <= limits.memory_used_gb <= (anon + 0.05e9 + mapped) / 1e9  # + some kernel memory
    # after notebook 04 (its kernel ended), 0.7 GiB of cache on the active list, nearly none of it mapped:
    # reclaimable. Counting it as used, as "usage less inactive file" does, left 1.0 GB of 2.1 where the
    # walk then trained notebook 05's run (1.0 GiB) beside the open kernels without an OOM kill.
    usage = _recorded_usage("v1-after-04")
    assert (usage - stat["total_inactive_file"]) / 1e9 > limits.memory_used_gb + 0.6
    assert system.memory_shortfall(1.1, limits) is None
    # after notebook 06: 0.6 GiB of mapped pages, 0.46 GiB of them still active (libraries and weights in use)
    busy = system.cgroup_limits(_recorded("v1-after-06", tmp_path / "06", version))
    stat6 = system.read_memory_stat(RECORDED / "v1-after-06.memory.stat")
    hot = min(stat6["total_mapped_file"], stat6["total_active_file"])
    assert busy.memory_used_gb >= (stat6["total_rss"] + hot) / 1e9


@pytest.mark.parametrize("version", [1, 2])
def test_the_guard_refuses_only_what_really_does_not_fit(tmp_path, version):
    """After notebook 03 (four kernels, the service and its reply worker), notebook 04's training fits (the walk
    trained it); with 1.0 GiB more anonymous memory held (a kernel with a model of its own), it cannot: without
    swap, anonymous memory stays, and the limit less it is less than the run needs."""
    after_03 = system.cgroup_limits(_recorded("v1-after-03", tmp_path, version))
    assert system.memory_shortfall(1.0, after_03) is None
    # the same cgroup with 1 GiB more anonymous memory: the kernel made room by dropping inactive file cache
    stat, usage, more = system.read_memory_stat(RECORDED / "v1-after-03.memory.stat"), _recorded_usage("v1-after-03"), 2**30
    dropped = usage + more - 2 * 2**30
    changed = {**stat, "total_rss": stat["total_rss"] + more, "total_cache": stat["total_cache"] - dropped,
               "total_inactive_file": stat["total_inactive_file"] - dropped}
    (tmp_path / "full.memory.stat").write_text("".join(f"{k} {v}\n" for k, v in changed.items())
                                               + f"# memory.usage_in_bytes {2 * 2**30}\n")
    full = system.cgroup_limits(_recorded("full", tmp_path / "full", version, folder=tmp_path))
    assert full.memory_used_gb >= (stat["total_rss"] + more) / 1e9
    assert system.memory_shortfall(1.0, full) is not None
    assert 2 * 2**30 - changed["total_rss"] < 1.0e9 + 0.1e9  # really: the limit less anonymous memory barely holds it


def test_threads_follow_the_cpu_quota_not_the_host(tmp_path, monkeypatch):
    monkeypatch.setattr(system.os, "sched_getaffinity", lambda pid: set(range(16)))  # a 16-core host
    assert system.usable_cores(system.cgroup_limits(_cgroup_v2(tmp_path / "a", cpu="50000 100000"))) == 1
    assert system.usable_cores(system.cgroup_limits(_cgroup_v1(tmp_path / "b", quota="200000"))) == 2
    assert system.usable_cores(system.cgroup_limits(_cgroup_v2(tmp_path / "c"))) == 16
    tight = system.cgroup_limits(_cgroup_v2(tmp_path / "d", cpu="100000 100000"))
    monkeypatch.setattr(system, "cgroup_limits", lambda root="/sys/fs/cgroup": tight)
    assert system.cpu_info()["cores"] == 1  # what the training plan's thread count reads


def test_a_run_that_would_not_fit_is_refused_with_the_numbers(tmp_path, monkeypatch):
    """Binder's 2 GB with 1.6 GB in use: the run says so before any model loads, and how to make room."""
    from lessonlib.errors import LessonError
    from lessonlib.train import RunConfig, machine, run, runner

    binder = system.cgroup_limits(_cgroup_v2(tmp_path / "cg", limit="2000000000", current="1600000000"))
    monkeypatch.setattr(system, "cgroup_limits", lambda root="/sys/fs/cgroup": binder)
    monkeypatch.setattr(system, "heap_free_gb", lambda: 0.0)  # a fresh process (this one's heap holds the other tests')
    monkeypatch.setattr(machine, "_TRAINED_HERE", None)  # ... where no run has trained (other tests' runs have, here)
    monkeypatch.setattr(runner, "sft_trainer", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(LessonError) as info:
        run(RunConfig(output_dir=str(tmp_path / "run"), valid_file=None))
    message = str(info.value)
    assert "0.4 GB is free" in message and "may use 2.0 GB" in message and "Shut Down All Kernels" in message


def test_a_kernel_that_trained_before_counts_its_free_heap_as_room(tmp_path, monkeypatch):
    """Notebook 04 trains twice in its kernel: the first run leaves free heap blocks that the second reuses."""
    from lessonlib.errors import MemoryShortfall
    from lessonlib.train import MachinePlan, events, machine, runner

    binder = system.cgroup_limits(_cgroup_v2(tmp_path / "cg", limit="2000000000", current="1300000000"))
    monkeypatch.setattr(system, "cgroup_limits", lambda root="/sys/fs/cgroup": binder)
    monkeypatch.setattr(events, "rss_gb", lambda: 0.9)  # the libraries (0.45), and heap the first run grew
    monkeypatch.setattr(machine, "_TRAINED_HERE", None)  # the free heap alone (the peak it reached: the next test)
    plan = MachinePlan("cpu", 2, False, True, 1.25)
    monkeypatch.setattr(system, "heap_free_gb", lambda: 0.0)
    with pytest.raises(MemoryShortfall, match="needs about 0.8 GB more memory, and 0.7 GB is free"):
        runner._check_memory(plan)
    monkeypatch.setattr(system, "heap_free_gb", lambda: 0.4)  # 0.4 GB of it free: the run will reuse it
    runner._check_memory(plan)


def test_a_model_load_short_of_memory_collects_this_process_first_then_asks_the_service(monkeypatch):
    """A kernel that trained in-process holds the finished run's garbage until a collection: the guard collects
    (and trims the heap) before it asks the local service for its model, and before it refuses."""
    from lessonlib import local_service, models
    from lessonlib.errors import MemoryShortfall

    calls = []
    monkeypatch.setattr(system, "memory_shortfall", lambda needed: "needs about 0.5 GB more memory, and 0.4 GB is free")
    monkeypatch.setattr(system, "give_back_memory", lambda: calls.append("collect"))
    monkeypatch.setattr(local_service, "release_model", lambda: calls.append("service") or False)
    monkeypatch.setattr(models.loading, "_LOADED", {})
    with pytest.raises(MemoryShortfall, match="loading the model needs about 0.5 GB"):
        models.load(device="cpu")
    assert calls == ["collect", "service"]


def test_a_kernel_that_trained_before_counts_on_what_that_run_measured(tmp_path, monkeypatch):
    """A second run in a kernel needs no more than the first one's measured peak above today's memory."""
    from lessonlib.errors import MemoryShortfall
    from lessonlib.train import MachinePlan, events, machine, runner

    binder = system.cgroup_limits(_cgroup_v2(tmp_path / "cg", limit="2000000000", current="1300000000"))
    monkeypatch.setattr(system, "cgroup_limits", lambda root="/sys/fs/cgroup": binder)
    monkeypatch.setattr(events, "rss_gb", lambda: 0.9)
    monkeypatch.setattr(system, "heap_free_gb", lambda: 0.0)
    monkeypatch.setattr(machine, "_TRAINED_HERE", None)
    with pytest.raises(MemoryShortfall, match="needs about 0.8 GB more memory"):
        runner._check_memory(MachinePlan("cpu", 2, True, True, 1.25))
    monkeypatch.setattr(events, "peak_rss_gb", lambda: 1.45)
    machine.record_trained_here(1.3)  # a run estimated at 1.3 GB, with the process at 1.45 GB at its peak
    assert machine.needed_gb(MachinePlan("cpu", 2, True, True, 1.25)) == pytest.approx(0.55)
    runner._check_memory(MachinePlan("cpu", 2, True, True, 1.25))
    with pytest.raises(MemoryShortfall):  # a bigger run than the one measured: the estimate decides
        runner._check_memory(MachinePlan("cpu", 2, True, True, 1.35))


def test_doctor_shows_the_container_limits(tmp_path, monkeypatch, model_dir):
    binder = system.cgroup_limits(_cgroup_v2(tmp_path / "cg", cpu="100000 100000", limit="2000000000", current="900000000"))
    monkeypatch.setattr(system, "cgroup_limits", lambda root="/sys/fs/cgroup": binder)
    line = next(c for c in doctor.doctor(probe_network=False, probe_gpu=False).checks if c.name == "container")
    assert "CPU quota 1 CPU(s), so 1 torch thread(s)" in line.detail and "memory limit 2.0 GB, 0.9 GB in use" in line.detail


@pytest.mark.parametrize("dtype, needed", [("float32", "0.6"), ("bfloat16", "0.4")])
def test_loading_a_model_that_would_not_fit_is_refused(tmp_path, monkeypatch, model_dir, dtype, needed):
    from lessonlib import models
    from lessonlib.errors import LessonError

    full = system.cgroup_limits(_cgroup_v2(tmp_path / "cg", limit="2000000000", current="1700000000"))
    monkeypatch.setattr(system, "cgroup_limits", lambda root="/sys/fs/cgroup": full)
    monkeypatch.setattr(models.loading, "_LOADED", {})
    monkeypatch.setenv("LESSONLIB_GENERATION_DTYPE", dtype)  # the weights' size: 4 or 2 bytes a parameter
    monkeypatch.setattr(system, "heap_free_gb", lambda: 0.0)
    with pytest.raises(LessonError, match=rf"loading the model needs about {needed} GB more memory, and 0\.3 GB is free"):
        models.load()
    if dtype == "bfloat16":  # 0.27 GB of weights and 0.1 GB more, which free blocks of the heap can hold
        monkeypatch.setattr(system, "heap_free_gb", lambda: 0.25)
        assert models.load().model.dtype.is_floating_point


def test_kernel_cleaner_lists_and_shuts_down_only_idle_kernels():
    from lessonlib.jupyter import Kernel
    from lessonlib.widgets import KernelCleaner

    kernels = [Kernel("a", "notebooks/01.ipynb", "idle", 0.3), Kernel("b", "notebooks/04.ipynb", "busy", 1.1)]
    asked = []

    def shut_down(chosen):
        asked.extend(chosen)
        kernels[:] = [k for k in kernels if k not in chosen]
        return [k.name for k in chosen]

    cleaner = KernelCleaner(list_kernels=lambda: list(kernels), shut_down=shut_down)
    assert "notebooks/01.ipynb (idle, 0.30 GB)" in cleaner.listing.value and "busy" in cleaner.listing.value
    assert cleaner.button.description == "Shut down 1 idle kernel" and not cleaner.button.disabled
    cleaner.button.click()
    assert [k.id for k in asked] == ["a"] and "Shut down: notebooks/01.ipynb" in cleaner.status.value
    assert cleaner.button.disabled  # only the busy one is left


def test_a_memory_refusal_in_jupyter_shows_its_numbers_and_a_button_that_frees_the_idle_kernels(tmp_path, model_dir):
    """A test's tight container (a fake cgroup tree: 2 GB, 1.9 GB used) and a real Jupyter server with two kernels;
    then the kernel left asks its server to shut it down."""
    import json
    import os
    import sys
    import time
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from jupyter_helpers import Server

    fake = tmp_path / "cgroup"
    fake.mkdir()
    for name, value in {"memory.max": "2000000000", "memory.current": "1900000000", "cpu.max": "max 100000"}.items():
        (fake / name).write_text(value)
    for name in ("finished.ipynb", "current.ipynb"):
        (tmp_path / name).write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    server = Server({**os.environ, "LESSONLIB_CGROUP_ROOT": str(fake), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")},
                    root=tmp_path)
    try:
        finished = server.open("finished.ipynb")
        assert finished.run("x = 1").error is None
        current = server.open("current.ipynb")
        refused = current.run("import lessonlib.widgets\nfrom lessonlib import models\nmodels.load()")
        assert refused.error.startswith("MemoryShortfall: loading the model needs about") and "0.1 GB is free" in refused.error
        assert any("application/vnd.jupyter.widget-view+json" in shown for shown in refused.displayed())  # the button, not a traceback
        cleaned = current.run("cleaner = lessonlib.widgets.KernelCleaner()\nprint([k.name for k in cleaner.kernels])\n"
                              "cleaner.button.click()\nprint(cleaner.status.value)")
        assert cleaned.error is None and "['finished.ipynb']" in cleaned.text and "Shut down: finished.ipynb" in cleaned.text
        assert [k["id"] for k in server.api("GET", "/api/kernels")] == [current.id]
        finished.close()
        # A notebook that trained in its kernel ends by shutting it down: the libraries' memory goes back.
        asked = current.run("from lessonlib import jupyter\nprint(jupyter.shut_down_this_kernel(after=0.2))")
        assert asked.error is None and asked.text.strip() == "True", asked.text
        current.close()
        deadline = time.monotonic() + 30
        while server.api("GET", "/api/kernels") and time.monotonic() < deadline:
            time.sleep(0.3)
        assert server.api("GET", "/api/kernels") == []
    finally:
        server.stop()


def test_widgets_leave_a_static_summary_for_readers_without_a_kernel():
    """GitHub and nbviewer show text/html where they cannot draw a widget: the result, not `VBox(children=…`."""
    from lessonlib import corpora
    from lessonlib.widgets import BeforeAfter, BreakEvenExplorer, DataDoctor

    explorer = BreakEvenExplorer(example_tokens=98, prompt_tokens=123, completion_tokens=27, training_tokens=28_000, shots=10)
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # JupyterLab still draws the live widget
    assert "10 examples per prompt" in bundle["text/html"] and "children=" not in bundle["text/plain"]
    doctor = DataDoctor(corpora.split_path("examples", "broken-recipes-2"))._repr_mimebundle_()
    assert "errors to fix first" in doctor["text/plain"] and "unrecognized_role" in doctor["text/plain"]
    unrun = BeforeAfter([], adapter="runs/none")._repr_mimebundle_()
    assert "text/html" not in unrun  # nothing to summarise before it ran
    from lessonlib.widgets import ChatBox

    chat = ChatBox()
    assert "press Send" in chat._repr_mimebundle_()["text/plain"]
    chat.reply.value = "Flour, eggs, milk."
    assert "Model: Flour, eggs, milk." in chat._repr_mimebundle_()["text/plain"]


def test_widgets_update_their_saved_output_when_their_result_comes():
    """A checklist decided, or a training run ended, after the cell that showed the widget: the output is
    updated in place (same display id), so the saved notebook shows the result, not the empty form."""
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    from lessonlib.decide import Answers
    from lessonlib.train import ProgressEvent
    from lessonlib.widgets import Checklist, TrainingMonitor

    shell = InteractiveShell.instance()
    publisher, shell.display_pub = shell.display_pub, CapturingDisplayPublisher()
    try:
        checklist = Checklist(Answers(tried_prompting=True, tried_retrieval=True, examples=200), {"zero-shot": 0.1, "rag": 0.3})
        checklist._ipython_display_()
        shown = shell.display_pub.outputs[-1]
        assert "application/vnd.jupyter.widget-view+json" in shown["data"]  # JupyterLab draws the live widget
        assert "rag score | 0.300" in shown["data"]["text/plain"] and "Recommendation" not in shown["data"]["text/plain"]
        checklist.run()
        updated = shell.display_pub.outputs[-1]
        assert updated["update"] and updated["transient"]["display_id"] == shown["transient"]["display_id"]
        assert f"Recommendation: {checklist.decision.recommendation}" in updated["data"]["text/plain"]

        monitor = TrainingMonitor()
        monitor._ipython_display_()
        assert "no run yet" in shell.display_pub.outputs[-1]["data"]["text/plain"]
        monitor.callback()
        for event in (ProgressEvent("start", 0, 2), ProgressEvent("step", 1, 2, loss=2.0, tokens_per_s=100.0, rss_gb=1.0),
                      ProgressEvent("step", 2, 2, loss=1.0, tokens_per_s=110.0, rss_gb=1.0)):
            monitor.on_event(event)
        final = shell.display_pub.outputs[-1]
        assert final["update"] and "Done: 2 steps" in final["data"]["text/plain"] and "last loss 1.000" in final["data"]["text/plain"]
        assert "data:image/png;base64," in final["data"]["text/html"]  # the loss curve, for readers without a kernel
    finally:
        shell.display_pub = publisher
        InteractiveShell.clear_instance()


def test_the_data_size_study_runs_in_the_background_and_shows_each_run_as_it_ends(monkeypatch):
    """The study's cell returns at once; the table, the curves and the saved output fill in as each size
    ends, and wait_for_background (what tools run after Run All) waits for the end."""
    import threading
    import time

    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    from lessonlib import limits
    from lessonlib.train import ProgressEvent
    from lessonlib.widgets import DataSizeStudy, wait_for_background

    go = threading.Event()

    def study(sizes, *, on_event, on_result, stop, **options):  # a fake study: no model
        assert options == {"folder": "runs/test", "f1_limit": 2}
        results = []
        for n, loss in zip(sizes, (0.75, 0.45)):
            on_event(ProgressEvent("step", 8, 32, eta_s=40.0))
            go.wait(10)
            if stop.is_set():
                break
            results.append(limits.SizeResult(n, f"runs/test/size-{n}", 32, 1.0, 24, loss, 0.3, False, f1=0.5,
                                             history=[{"kind": "eval", "step": 24, "eval_loss": loss}]))
            on_result(results[-1])
        return results

    shell = InteractiveShell.instance()
    publisher, shell.display_pub = shell.display_pub, CapturingDisplayPublisher()
    try:
        view = DataSizeStudy([10, 50], study=study, folder="runs/test", f1_limit=2)
        view.start()
        view._ipython_display_()
        assert view.running() and not view.results
        assert view.join(timeout=0.3) == [] and "Training on 10 examples: step 8 of 32" in view.status.value
        go.set()
        from lessonlib import memory_shares as binder

        exec(binder.AFTER_RUN_ALL, {})  # noqa: S102 - what tools run in a kernel after its last cell: it waits for the study
        assert not view.running()
        assert wait_for_background(timeout=10) == 0  # nothing left to wait for
        assert [r.examples for r in view.results] == [10, 50]
        final = shell.display_pub.outputs[-1]["data"]
        assert "Done: 2 of 2 sizes" in final["text/plain"] and "Lowest validation loss: 50 examples (0.450)" in final["text/plain"]
        assert "data:image/png;base64," in final["text/html"] and "0.450" in view.table.value

        go.clear()
        view.start()  # again, stopped in its first run
        view.stop.click()
        go.set()
        assert view.join(timeout=10) == [] and "<b>Stopped:</b> 0 of 2 sizes finished" in view.status.value

        from lessonlib.widgets.static import stop_background

        def slow_study(sizes, *, on_event, on_result, stop, **options):  # the first size at once, the next one slow
            results = [limits.SizeResult(10, "runs/test/size-10", 32, 1.0, 24, 0.75, 0.3, False, f1=0.5)]
            on_result(results[0])
            for _ in range(100):
                if stop.is_set():
                    return results
                time.sleep(0.1)
            raise AssertionError("not stopped")

        view = DataSizeStudy([10, 50], study=slow_study)
        view.start()
        view._ipython_display_()  # what the test run's memory check does: the first size, then a stop, in seconds
        assert stop_background(after_results=1, timeout=10) == []
        assert [r.examples for r in view.results] == [10] and "<b>Stopped:</b> 1 of 2 sizes finished" in view.status.value
        assert "Lowest validation loss" in shell.display_pub.outputs[-1]["data"]["text/plain"]

        from lessonlib import jupyter
        from lessonlib.errors import MemoryShortfall
        from lessonlib.widgets import KernelCleaner

        def refused(sizes, **options):
            raise MemoryShortfall("this training run needs about 0.8 GB more memory, and 0.2 GB is free", fix="shut down idle kernels")

        monkeypatch.setattr(jupyter, "find_server", lambda: object())  # inside JupyterLab: the button comes too
        monkeypatch.setattr(KernelCleaner, "refresh", lambda self: None)
        view = DataSizeStudy([10], study=refused)
        view.start()
        view.join(timeout=10)
        assert "<b>Problem:</b>" in view.status.value and "0.2 GB is free" in view.status.value
        assert isinstance(view.children[-1], KernelCleaner)
    finally:
        shell.display_pub = publisher
        InteractiveShell.clear_instance()


def test_the_binder_walk_gives_its_server_the_settings_binder_s_image_has(tmp_path):
    """``benchmarks/binder_walk.py --cgroup`` runs JupyterLab with the settings ``binder/postBuild`` writes."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("binder_walk", Path(__file__).parent.parent / "benchmarks" / "binder_walk.py")
    walk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(walk)
    walk.binder_server_config(tmp_path)
    config = (tmp_path / "jupyter_server_config.py").read_text()
    compile(config, "jupyter_server_config.py", "exec")
    assert "c.MappingKernelManager.cull_idle_timeout = 900" in config and "PY" not in config.splitlines()
    assert walk._field("oom_kill 2\nunder_oom 0\n", "oom_kill") == 2
