"""`backprop check`: what authors see, and its exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_check(
    *args: str, cwd: Path = ROOT, data_dir: Path | None = None
) -> subprocess.CompletedProcess:
    # checking the served folder renders into DATA_DIR's render cache: keep it out of the repo
    data = {"DATA_DIR": str(data_dir)} if data_dir else {}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "check", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **data},
    )


def test_check_passes_the_bundled_course_with_no_error_and_no_warning(tmp_path):
    lessons = len(list((ROOT / "content").glob("*.md")))
    assert lessons >= 8  # the seed and the seven lessons after it
    result = run_check("content", data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"{lessons} lesson(s) OK, 0 error(s), 0 warning(s) in content"
    ]
    assert result.stderr == ""


def test_check_prints_every_error_as_path_line_message_and_exits_1(tmp_path):
    folder = tmp_path / "lessons"
    folder.mkdir()
    (folder / "bad.md").write_text("---\nid: x\ntitle: T\nduration: whenever\nsection: s\n---\n")
    (folder / "worse.md").write_bytes(b"\xff\xfe\x00binary")
    (folder / "fine.md").write_text("---\nid: fine\ntitle: T\nduration: 5 min\nsection: s\n---\n")
    result = run_check(str(folder))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{folder.as_posix()}/bad.md:4: error: cannot read duration")
    assert lines[1].startswith(f"{folder.as_posix()}/worse.md: error: file looks binary")
    assert lines[-1] == f"1 lesson(s) OK, 2 error(s), 0 warning(s) in {folder.as_posix()}"
    assert "Traceback" not in result.stdout + result.stderr


def test_check_of_a_missing_folder_fails_cleanly(tmp_path):
    result = run_check(str(tmp_path / "absent"))
    assert result.returncode == 1
    assert "content folder does not exist" in result.stdout
    assert "Traceback" not in result.stderr


def test_check_reads_content_dir_from_a_dot_env_in_the_working_directory(tmp_path):
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    (lessons / "bad.md").write_text("---\nid: x\ntitle: T\nduration: whenever\nsection: s\n---\n")
    (tmp_path / ".env").write_text("CONTENT_DIR=lessons\n")
    result = run_check(cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].startswith("lessons/bad.md:4: error: cannot read duration")
    assert result.stdout.splitlines()[-1] == "0 lesson(s) OK, 1 error(s), 0 warning(s) in lessons"


def test_a_bad_setting_is_named_without_a_traceback(tmp_path):
    (tmp_path / ".env").write_text("LOG_LEVEL=loud\n")
    result = run_check(cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("backprop: setting LOG_LEVEL: String should match pattern")
    assert "Traceback" not in result.stderr
