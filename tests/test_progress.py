"""Progress bars as a person at a terminal sees them, and never in a log or pipe."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

SCRIPT = """
import time
from sweep._progress import tracked_slices
done = 0
for part in tracked_slices(2500, 1000, "scoring the test split"):
    done += part.stop - part.start
    time.sleep(0.3)
print("done", done)
"""


def _run(script: str, *, terminal: bool) -> str:
    """Run ``script`` with stderr at a pseudo-terminal (or a pipe); returns what stdout and stderr showed."""
    env = dict(os.environ, COLUMNS="100", TERM="xterm")
    if not terminal:
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout + result.stderr
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=follower, env=env)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the follower end closed: the process exited
            break
        if not chunk:
            break
        shown += chunk
    stdout = process.communicate(timeout=120)[0]
    os.close(leader)
    assert process.returncode == 0, shown.decode(errors="replace")
    return stdout.decode() + shown.decode(errors="replace")


def test_a_long_loop_shows_its_count_eta_and_rate_at_a_terminal():
    shown = _run(SCRIPT, terminal=True)
    assert "done 2500" in shown
    assert "scoring the test split" in shown
    assert "2500/2500" in shown and "eta" in shown and "img/s" in shown


def test_a_short_loop_draws_nothing_into_a_pipe():
    shown = _run(SCRIPT, terminal=False)
    assert shown.strip() == "done 2500"


def test_a_long_stage_in_a_pipe_says_now_and_then_where_it_is_in_plain_lines():
    """Under nohup or ``| tee log``, banking 112k images printed nothing for minutes."""
    script = "import sweep._progress as p; p.FIRST_LINE_AFTER_S = 0.5; p.LINE_EVERY_S = 0.5\n" + SCRIPT
    lines = _run(script, terminal=False).strip().splitlines()  # stdout, then stderr
    assert lines[0] == "done 2500"
    progress = lines[1:]
    assert progress and "\x1b" not in "".join(progress)  # plain text, no escape codes
    assert all(line.startswith("scoring the test split: ") and "elapsed" in line and "img/s" in line for line in progress)
    assert any("/2,500 · eta 0:00:0" in line for line in progress[:-1])  # a count and an ETA while it runs
    assert progress[-1].startswith("scoring the test split: 2,500/2,500 · 0:00:0")  # and where it ended


EPOCHS = """
import time
from sweep._progress import epoch_progress
with epoch_progress("retraining trial 7", 10) as on_epoch:
    for epoch in range(4):
        time.sleep(0.3)
        on_epoch(epoch, 0.6 + epoch / 100, epoch == 3)  # patience runs out after the fourth epoch
print("trained")
"""


def test_a_retrain_shows_its_epochs_and_validation_auroc_and_an_early_stop_fills_the_bar():
    shown = _run(EPOCHS, terminal=True)
    assert "retraining trial 7" in shown and "eta" in shown
    assert "val AUROC 0.630" in shown
    assert "10/10" in shown  # stopped early: done, not stuck at 4/10
    assert _run(EPOCHS, terminal=False).strip() == "trained"


def test_a_slow_stage_shows_its_rate_not_zero():
    from sweep._progress import rate_text

    assert rate_text(37, 230.0, "layer") == "0.16 layer/s"  # dictionary build at 112k images read "0 layer/s"
    assert rate_text(1530, 10.0, "img") == "153 img/s" and rate_text(0, 5.0, "img") == "- img/s"
