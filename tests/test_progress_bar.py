"""Progress bars for long steps: shown on a terminal, silent anywhere else (a log, CI, a Ray
job), where the step's own start and end lines say what happened."""

from sftmix_ray.progress import Bar, wanted


def test_quiet_when_stderr_is_not_a_terminal(capfd):
    assert not wanted()  # pytest captures stderr: not a terminal
    with Bar("lab base model", total=3, unit="steps") as bar:
        bar.set_total(4)
        for _ in range(4):
            bar.update(1, loss=2.5)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_shown_on_a_terminal_with_counts_and_the_loss(monkeypatch):
    import io

    from rich.console import Console

    shown = io.StringIO()
    monkeypatch.setattr("rich.console.Console", lambda **kw: Console(
        file=shown, force_terminal=True, width=120))
    with Bar("lab base model", total=None, unit="steps", enabled=True) as bar:
        bar.set_total(10)
        for _ in range(10):
            bar.update(1, loss=1.25)
        bar._progress.refresh()
    text = shown.getvalue()
    assert "lab base model" in text and "10/10" in text and "loss 1.250" in text


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("SFTMIX_PROGRESS", "0")
    assert not wanted()
